"""Scraped ``.txt`` is plain text, never configuration; an explicit id cannot be taken.

A scraped article that starts with ``---`` or ``+++`` used to be read as front
matter, so it could set its own id (ids minted from paths are predictable),
date, draft flag, slug and topics, and take over another article's URL and
guid.  Front matter belongs to ``.md``.  And an ``.md`` whose front matter
claims an id another article already holds is refused, naming both files,
whatever the order of their paths.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from feedserver.build.run import run_build
from feedserver.config import Settings
from tests.conftest import NOW, SEED, parse_feed, write

VICTIM = "Relations between Kazakhstan and Russia"


def _entries(settings: Settings) -> list[Any]:
    return parse_feed(Path(settings.output_dir) / "feed.atom").entries


def _victim(settings: Settings) -> Any:
    return next(e for e in _entries(settings) if e.title.startswith(VICTIM))


@pytest.mark.parametrize("fence,fields", [
    ("---", 'id: "{id}"\ntitle: Hijacked\ndate: 2030-01-01\ndraft: false\nslug: victim\n'
            "topics: [Planted]\n"),
    ("+++", 'id = "{id}"\ntitle = "Hijacked"\ndate = 2030-01-01T00:00:00Z\nslug = "victim"\n'
            'topics = ["Planted"]\n'),
])
def test_a_txt_file_starting_with_a_fence_is_plain_text(settings: Settings, fence: str,
                                                        fields: str) -> None:
    run_build(settings, now=NOW)
    victim = _victim(settings)
    seeds = Path(settings.seeds_dir)
    text = f"{fence}\n{fields.format(id=victim.id)}{fence}\nScraped body text.\n"
    write(seeds / "000-scraped.txt", text)
    report = run_build(settings, now=NOW + timedelta(minutes=1))
    assert report.published and not report.errors
    entries = _entries(settings)
    assert _victim(settings).id == victim.id and _victim(settings).link == victim.link
    scraped = [e for e in entries if e.title == fence]  # the first line is the title
    assert len(scraped) == 1 and scraped[0].id != victim.id
    assert "Hijacked" in scraped[0].content[0].value  # the fields are text of the article
    assert "Planted" not in {t.term for e in entries for t in e.get("tags", [])}
    assert not (Path(settings.output_dir) / "topics/planted").exists()


@pytest.mark.parametrize("claimant", ["000-claim.md", "zzz-claim.md"])
def test_an_explicit_id_already_held_is_refused_naming_both_files(settings: Settings,
                                                                  claimant: str) -> None:
    run_build(settings, now=NOW)
    victim = _victim(settings)
    write(Path(settings.seeds_dir) / claimant,
          f'---\nid: "{victim.id}"\ntitle: Claimant\n---\nI claim the id.\n')
    for minutes in (1, 2):  # and again: the ledger must not have moved the id
        report = run_build(settings, now=NOW + timedelta(minutes=minutes))
        refused = [p for p in report.problems if p.where == claimant]
        assert len(refused) == 1 and SEED in refused[0].reason and victim.id in refused[0].reason
        assert _victim(settings).id == victim.id and _victim(settings).link == victim.link
        assert "Claimant" not in {e.title for e in _entries(settings)}

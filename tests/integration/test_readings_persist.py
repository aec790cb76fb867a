"""A build in a new process does not have feedparser read again the items no byte of
which changed: the readings of earlier builds are kept in the state folder
(feedserver/publish/readings_store.py).  What it publishes is the same, byte for byte, as
a build that reads every item again; and a changed item is still read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from feedserver.build.run import run_build
from feedserver.config import Settings, load_settings
from feedserver.publish import readings_store
from tests.conftest import NOW

EDITED = "2026-10-14-rail-freight.md"


def _settings(site: Path) -> Settings:
    # One process: the counts are of this process's feedparser reads, and with workers
    # they depended on which channels the parent rendered itself (3 runs in 8 failed
    # under load with every = 5).
    return load_settings(site / "config.toml", env={"FEEDSERVER_POLL_BUDGET": "0",
                                                     "FEEDSERVER_BUILD_PROCESSES": "1"})


def _edit(site: Path) -> None:
    path = site / "seeds" / EDITED
    path.write_text(path.read_text(encoding="utf-8") + "\nOne sentence more.\n",
                    encoding="utf-8")


def _feeds(site: Path) -> dict[str, bytes]:
    public = site / "public"
    return {str(p.relative_to(public)): p.read_bytes() for p in public.rglob("*")
            if p.is_file() and p.suffix in (".rss", ".atom", ".xml", ".json")
            and ".feedserver" not in p.parts}


def test_a_new_process_reads_only_what_changed(
        site_dir: Path, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch, entries_read: list[int]) -> None:
    run_build(_settings(site_dir), NOW)  # cold, in a fresh memory: every reading is kept
    cold = entries_read[0]
    assert cold > 0
    assert (site_dir / "state" / readings_store.FILENAME).is_file()
    without = tmp_path_factory.mktemp("without") / "site"
    shutil.copytree(site_dir, without)
    for site in (site_dir, without):
        _edit(site)

    entries_read[0] = 0
    run_build(_settings(site_dir), NOW)  # a new process's memory, the store behind it
    with_store = entries_read[0]

    monkeypatch.setattr(readings_store.ReadingsStore, "get", lambda self, key: None)
    entries_read[0] = 0
    run_build(_settings(without), NOW)
    every = entries_read[0]

    print(f"\nitems read by feedparser: cold {cold}, one edit {every} without the store, "
          f"{with_store} with it")
    assert 0 < with_store < every / 3  # the edited item, in each context it is served in
    assert _feeds(site_dir) == _feeds(without)
    assert any(b"One sentence more." in body for body in _feeds(site_dir).values())

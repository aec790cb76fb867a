"""A staged file's temp names say the path each goes live as, and a Prepared holds them
as one string: a cold build keeps a Prepared for every file it publishes until it
commits (benchmarks/README.md, "A kept row, 4 KiB, and a staged file's names")."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedserver.core.records import Rendered
from feedserver.publish.output import _stage_bytes, discard, prepare, target_of

BODY = b"<html><body>" + b"<p>A paragraph long enough to be worth compressing.</p>" * 40 \
    + b"</body></html>"


@pytest.mark.parametrize("path", ["index.html", "topics/a.b.c/feed.atom",
                                  "articles/x-1/index.html", ".feedserver/query/index.json"])
def test_each_temp_file_goes_live_as_its_own_path(tmp_path: Path, path: str) -> None:
    made = prepare(tmp_path, Rendered(path, BODY, "text/html; charset=utf-8",
                                      datetime(2026, 1, 1, tzinfo=UTC)), None)
    expected = [str(tmp_path / path)]
    if not path.startswith(".feedserver/"):  # the query's files have no .gz/.br
        expected += [str(tmp_path / f"{path}.gz"), str(tmp_path / f"{path}.br")]
    assert sorted(target for _, target in made.staged) == sorted(expected)
    for tmp, target in made.staged:
        assert os.path.dirname(tmp) == os.path.dirname(target) and Path(tmp).is_file()
        assert Path(tmp).name.startswith(f".{Path(target).name}.")
    discard([made])
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_a_json_files_temp_name_says_its_target(tmp_path: Path) -> None:
    for name in ("manifest.json", "c-0123.json", "a.b.json"):
        tmp = _stage_bytes(tmp_path / name, b"{}")
        assert target_of(tmp) == str(tmp_path / name)


def test_a_prepared_holds_its_temp_names_in_about_their_length(tmp_path: Path) -> None:
    made = prepare(tmp_path, Rendered("articles/some-article/index.html", BODY,
                                      "text/html; charset=utf-8",
                                      datetime(2026, 1, 1, tzinfo=UTC)), None)
    names = [tmp for tmp, _ in made.staged]
    assert len(names) == 3
    held = sys.getsizeof(made.temps)  # pairs of strings in tuples: 850 bytes a page
    assert held < sum(map(len, names)) + 80

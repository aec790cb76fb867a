"""build.presence: the published files missing from disk, looked for by a fork beside
the build or here, with the same answer either way (and when the fork fails)."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import Any

import pytest

from feedserver.build import presence
from feedserver.build.presence import Presence

BOTH: dict[str, Any] = {"encodings": ["gzip", "br"]}
PATHS = ["articles/a/index.html", "articles/b/index.html", "topics/t/feed.rss", "feed.rss"]


def published(root: Path) -> dict[str, dict[str, Any]]:
    """Published files, four with .gz and .br bodies; the manifest's entries."""
    for path in PATHS:
        for suffix in ("", ".gz", ".br"):
            target = root / (path + suffix)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"x")
    (root / "tiny.txt").write_bytes(b"x")  # too small to have compressed bodies
    return {path: BOTH for path in PATHS} | {"tiny.txt": {}}


@pytest.fixture(params=[10**9, 1], ids=["here", "forked"])
def fork_from(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(presence, "FORK_FROM", request.param)
    return int(request.param)


def test_what_is_missing_is_found(tmp_path: Path, fork_from: int) -> None:
    files = published(tmp_path)
    (tmp_path / "articles/b/index.html.br").unlink()  # a body deleted by hand
    (tmp_path / "feed.rss").unlink()
    (tmp_path / "topics/t").rename(tmp_path / "topics/u")
    check = Presence(str(tmp_path), files)
    assert (check.child is not None) == (fork_from == 1)
    assert check.missing() == {"articles/b/index.html", "feed.rss", "topics/t/feed.rss"}
    assert check.child is None  # reaped once it answered
    check.close()


def test_a_child_that_dies_leaves_the_answer_to_this_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presence, "FORK_FROM", 1)
    files = published(tmp_path)
    (tmp_path / "articles/a/index.html.gz").unlink()
    here, real = os.getpid(), presence._lacking

    def lacking(root: str, entries: presence.Entries, start: int, end: int) -> list[int]:
        if os.getpid() != here:
            os._exit(3)  # the child is killed before it reports anything
        return real(root, entries, start, end)

    monkeypatch.setattr(presence, "_lacking", lacking)
    check = Presence(str(tmp_path), files)
    assert check.child is not None
    assert check.missing() == {"articles/a/index.html"}


def test_the_build_checks_from_the_end_what_the_child_has_not_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child reports the first two paths, then stalls: the build takes those two
    from its reports (never looking at them itself) and checks the rest, from the last."""
    monkeypatch.setattr(presence, "FORK_FROM", 1)
    monkeypatch.setattr(presence, "STRETCH", 1)
    monkeypatch.setattr(presence, "_HERE", 1)
    files = published(tmp_path)
    (tmp_path / PATHS[0]).unlink()  # the child's to find
    (tmp_path / "tiny.txt").unlink()  # the build's to find
    here, real = os.getpid(), presence._lacking
    looked: list[int] = []

    stalled = tmp_path / "stalled"  # the child's reports of 0 and 1 are in the pipe by then

    def lacking(root: str, entries: presence.Entries, start: int, end: int) -> list[int]:
        if os.getpid() != here and start >= 2:
            stalled.touch()
            time.sleep(60)  # stalls: the build must not wait for it
        if os.getpid() == here:
            looked.extend(range(start, end))
        return real(root, entries, start, end)

    monkeypatch.setattr(presence, "_lacking", lacking)
    check = Presence(str(tmp_path), files)
    assert check.child is not None
    pid = check.child[0]
    deadline = time.monotonic() + 60
    while not stalled.exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # both its reports written, whatever the machine's speed
    began = time.monotonic()
    assert check.missing() == {PATHS[0], "tiny.txt"}
    assert time.monotonic() - began < 30
    assert looked == [4, 3, 2]  # the last first; 0 and 1 came from the child's reports
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # the stalled child was stopped and reaped


def test_a_build_that_stops_early_leaves_no_child(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presence, "FORK_FROM", 1)
    files = published(tmp_path)
    frozen = gc.get_freeze_count()
    check = Presence(str(tmp_path), files)
    assert check.child is not None
    assert gc.get_freeze_count() > frozen  # no page copied by a collection while it lives
    pid = check.child[0]
    check.close()  # what the build's ``finally`` does when it raised before asking
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no zombie left
    assert gc.get_freeze_count() == frozen  # and the heap is collected again
    check.close()  # twice is harmless


def test_nothing_published_forks_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presence, "FORK_FROM", 1)
    check = Presence(str(tmp_path), {})
    assert check.child is None and check.missing() == frozenset()


def test_no_fork_leaves_every_check_to_this_process(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presence, "FORK_FROM", 1)
    files = published(tmp_path)
    (tmp_path / "topics/t/feed.rss.gz").unlink()

    def no_fork() -> int:
        raise OSError(11, "Resource temporarily unavailable")

    frozen = gc.get_freeze_count()
    monkeypatch.setattr(presence.os, "fork", no_fork)
    check = Presence(str(tmp_path), files)
    assert check.child is None and gc.get_freeze_count() == frozen
    assert check.missing() == {"topics/t/feed.rss"}

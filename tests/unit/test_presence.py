"""build.presence: the published files missing from disk, looked for by a fork beside
the build or here, with the same answer either way (and when the fork fails)."""

from __future__ import annotations

import gc
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feedserver.build import presence
from feedserver.build.helper import Helper
from feedserver.build.presence import Presence, tell
from feedserver.core.layout import MANIFEST
from feedserver.publish.manifest import Stamp, stamp_of
from feedserver.publish.output import PublishResult, write_json

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


# Longer than a tick of the clock file systems stamp changes with (jiffies: 1-10 ms), so
# that a change made after it is stamped later than what was recorded before it (what
# PresenceWork's SETTLED guarantees with seconds, set aside in these tests).
TICK = 0.05


def manifest_of(root: Path, files: dict[str, dict[str, Any]]) -> Stamp:
    """The manifest file of ``files``, written as a publish writes it; its stamp."""
    write_json(root / MANIFEST, {"version": 3, "files": files, "gone": [], "channels": {}})
    return stamp_of(str(root / MANIFEST))


@pytest.fixture
def helper() -> Iterator[Helper]:
    started = Helper("presence")
    yield started
    started.close()


def test_a_helper_program_finds_what_a_fork_finds(tmp_path: Path, helper: Helper,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper reads the manifest file it is told is live and answers as a fork does;
    an answer about another manifest, or a dead helper, leaves the check to this process."""
    monkeypatch.setattr(presence, "FORK_FROM", 1)
    files = published(tmp_path)
    stamp = manifest_of(tmp_path, files)
    (tmp_path / "articles/b/index.html.br").unlink()
    (tmp_path / "feed.rss").unlink()
    expected = {"articles/b/index.html", "feed.rss"}
    check = Presence(str(tmp_path), files, helper, stamp)
    assert check.child is None and check.helped is not None and helper.pid is not None
    assert check.missing() == expected

    looked: list[int] = []
    real = presence._lacking

    def lacking(root: str, entries: presence.Entries, start: int, end: int) -> list[int]:
        looked.append(end - start)
        return real(root, entries, start, end)

    monkeypatch.setattr(presence, "_lacking", lacking)
    other = (*stamp[:3], stamp[3] + 1)  # type: ignore[index]  # not the file on disk
    assert Presence(str(tmp_path), files, helper, other).missing() == expected
    assert looked == [len(files)]  # "unknown": checked here
    looked.clear()
    os.kill(helper.pid, signal.SIGKILL)  # type: ignore[arg-type]
    helper.process.wait()  # type: ignore[union-attr]
    check = Presence(str(tmp_path), files, helper, stamp)  # a new helper is started
    assert check.missing() == expected and looked == []
    helper.close()
    assert Presence(str(tmp_path), files, helper, stamp).missing() == expected


def test_a_helper_keeps_up_with_what_each_publish_tells_it(
        tmp_path: Path, helper: Helper, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a publish the helper applies the entries it set and removed and checks the
    new ones; told of a publish from a manifest it does not hold, it reads the new file."""
    monkeypatch.setattr(presence, "FORK_FROM", 1)
    files = published(tmp_path)
    was = manifest_of(tmp_path, files)
    assert Presence(str(tmp_path), files, helper, was).missing() == frozenset()
    (tmp_path / "new.html").write_bytes(b"x")  # published now, its .gz deleted right after
    now = {k: v for k, v in files.items() if k != "tiny.txt"}
    now["new.html"] = {"encodings": ["gzip"]}
    stamp = manifest_of(tmp_path, now)
    published_now = PublishResult(["new.html"], 0, ["tiny.txt"], {"files": now}, ("new.html",))
    tell(helper, str(tmp_path), was, (stamp, {"files": now}), published_now)
    assert Presence(str(tmp_path), now, helper, stamp).missing() == {"new.html"}
    wrong = PublishResult([], 0, [], {"files": now}, ())  # `was` is not what it holds
    again = manifest_of(tmp_path, now)
    tell(helper, str(tmp_path), was, (again, {"files": now}), wrong)
    assert Presence(str(tmp_path), now, helper, again).missing() == {"new.html"}


def test_the_helpers_work_reads_the_file_only_when_it_must(tmp_path: Path) -> None:
    """PresenceWork in this process: a read for a new file, none for an update of the
    file it holds, one when the update's count does not match."""
    files = published(tmp_path)
    was = manifest_of(tmp_path, files)
    work = presence.PresenceWork()
    root = str(tmp_path)
    assert work.handle(("check", root, was)) == ("missing", was, [])
    (tmp_path / "new.html").write_bytes(b"x")
    now = files | {"new.html": {"encodings": ["gzip"]}}
    stamp = manifest_of(tmp_path, now)
    (tmp_path / MANIFEST).unlink()  # the update alone must do: there is no file to read
    entered = {"new.html": {"encodings": ["gzip"]}}
    assert work.handle(("update", root, was, stamp, entered, [], len(now))) == ("held", stamp)
    assert work.handle(("check", root, stamp)) == ("missing", stamp, ["new.html"])
    assert work.handle(("update", root, stamp, ("x",), {}, [], len(now) + 1)) \
        == ("held", None)  # the count is off and the file is not there: holds nothing
    assert work.handle(("check", root, stamp)) == ("unknown", stamp)


def test_the_helpers_work_looks_only_into_folders_that_changed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder whose files were all found, unchanged since (inode and change time), is
    not looked into again; a file deleted in it, a folder removed, or a publish's entry
    in it, and it is; a change time younger than SETTLED is never trusted."""
    files = published(tmp_path)
    stamp = manifest_of(tmp_path, files)
    root = str(tmp_path)
    looked: list[str] = []
    real = presence.on_disk
    monkeypatch.setattr(presence, "on_disk",
                        lambda r, path, entry: looked.append(path) or real(r, path, entry))
    work = presence.PresenceWork()
    monkeypatch.setattr(presence, "SETTLED", 3600.0)  # every folder just changed
    assert work.handle(("check", root, stamp)) == ("missing", stamp, [])
    assert work.handle(("check", root, stamp)) == ("missing", stamp, [])
    assert sorted(looked) == sorted([*files, *files])  # looked at every file, twice
    monkeypatch.setattr(presence, "SETTLED", -3600.0)  # every change time settled
    work.handle(("check", root, stamp))
    looked.clear()
    assert work.handle(("check", root, stamp)) == ("missing", stamp, [])
    assert looked == []  # nothing changed: no file looked at
    time.sleep(TICK)  # a later tick of the file system's clock than the folders' stamps
    (tmp_path / "articles/b/index.html.gz").unlink()  # deleted by hand
    assert work.handle(("check", root, stamp)) == ("missing", stamp, ["articles/b/index.html"])
    assert looked == ["articles/b/index.html"]  # its folder only
    for name in ("feed.rss", "feed.rss.gz", "feed.rss.br"):
        (tmp_path / "topics/t" / name).unlink()
    (tmp_path / "topics/t").rmdir()
    time.sleep(TICK)
    (tmp_path / "topics/t").mkdir()  # the same folder name again, maybe the same inode
    (tmp_path / "topics/t/feed.rss.gz").write_bytes(b"x")
    assert sorted(work.handle(("check", root, stamp))[2]) == [
        "articles/b/index.html", "topics/t/feed.rss"]  # b's body is still gone
    # A publish that enters a file into a folder has it looked into again.
    (tmp_path / "feed.rss").unlink()
    looked.clear()
    entered = {"feed.rss": BOTH}
    now = manifest_of(tmp_path, files)
    assert work.handle(("update", root, stamp, now, entered, [], len(files))) == ("held", now)
    assert "feed.rss" in work.handle(("check", root, now))[2] and "feed.rss" in looked

"""A file that changes between the scan and the read is not published half-written.

The hold rule (a file still being written waits) judges the size and modification time
the scan saw; the file is read a moment later.  A writer that opens and truncates it in
between (an editor's in-place save, ``benchmarks/load.py``'s slow writers) had its first
half read, cached under the *scan's* size and time, and published: the load benchmark
found one such article in each 90-second run, and it stayed published until the file
changed again.  The read's own stamp decides now: one other than the scan's goes back to
the hold rule, and a file that changes while it is read is not taken at all.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from feedserver.build.run import BuildReport
from feedserver.config import Settings
from tests.conftest import parse_feed, write

Build = Callable[..., BuildReport]
WHOLE = "---\ntitle: Story v{n}\n---\n" + "Words of the story. " * 40 + "END v{n}\n"


def story(n: int) -> str:
    return WHOLE.format(n=n)


def titles_and_texts(settings: Settings) -> dict[str, str]:
    feed = parse_feed(Path(settings.output_dir) / "feed.atom")
    return {e.title: e.content[0].value for e in feed.entries if e.title.startswith("Story")}


class Rule:
    """A hold rule like the watcher's: a file modified in the last few seconds waits
    (five, not the watcher's two: a slow machine may take more than two between the
    writer's open below and the question asked again; the settled writes are older).
    ``before_read`` runs once, after the rule has judged the story (a writer's open)."""

    def __init__(self, before_read: Callable[[], None] | None = None) -> None:
        self.before_read = before_read
        self.asked: list[tuple[str, int]] = []

    def __call__(self, entry: object) -> bool:
        path, size, mtime = entry.path, entry.size, entry.mtime_ns  # type: ignore[attr-defined]
        self.asked.append((path, size))
        held = time.time() - mtime / 1e9 < 5.0
        if path == "story.md" and self.before_read is not None:
            act, self.before_read = self.before_read, None
            act()
        return held


def test_a_file_truncated_between_scan_and_read_waits(build: Build, settings: Settings) -> None:
    seeds = Path(settings.seeds_dir)
    path = write(seeds / "story.md", story(1), time.time() - 60)
    build()
    assert "END v1" in titles_and_texts(settings)["Story v1"]

    def writer_opens() -> None:  # truncates and writes the first half, then pauses
        with path.open("w", encoding="utf-8") as handle:
            handle.write(story(2)[: len(story(2)) // 2])
    write(path, story(1).replace("Words", "Edited words"), time.time() - 30)  # settled
    rule = Rule(before_read=writer_opens)
    report = build(hold=rule)
    shown = titles_and_texts(settings)
    assert "Story v2" not in shown, "the first half of a file being written was published"
    assert "END v1" in shown["Story v1"]  # the last good version stays
    assert [p for p, _ in rule.asked].count("story.md") == 2  # asked again about the read
    assert not report.errors
    # The writer finishes; the next build (nothing held) publishes the whole new version.
    write(path, story(2), time.time() - 10)
    build(hold=Rule())
    assert "END v2" in titles_and_texts(settings)["Story v2"]


def test_a_file_that_changes_while_it_is_read_is_not_taken(
        build: Build, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a hold rule (``feedserver build``), a file whose size or time changes
    during every read (tried a few times) keeps its last good version and says why; one
    that changes during the first read only is read again at once; the next build takes
    a file that has settled."""
    from feedserver.build import scan

    seeds = Path(settings.seeds_dir)
    path = write(seeds / "story.md", story(1), time.time() - 60)
    build()
    write(path, story(2), time.time() - 30)
    real_read = os.read

    def read_while_appended(fd: int, n: int) -> bytes:
        chunk = real_read(fd, n)
        if chunk.startswith(b"---\ntitle: Story v2") and \
                path.read_text(encoding="utf-8").count("appended") < appends:
            with path.open("a", encoding="utf-8") as handle:  # a writer appends meanwhile
                handle.write("More words, appended during the read.\n")
        return chunk

    monkeypatch.setattr(scan.os, "read", read_while_appended)
    appends = 100  # a writer at it during every read
    report = build()
    assert "Story v2" not in titles_and_texts(settings)
    assert any(p.where == "story.md" and "changed while it was read" in p.reason
               and "last good version stays" in p.reason for p in report.problems)
    text = path.read_text(encoding="utf-8")
    appends = text.count("appended") + 1  # the next read's writer appends once more
    report = build()
    assert not report.problems
    shown = titles_and_texts(settings)["Story v2"]
    assert shown.count("appended during the read") == appends  # read again, whole

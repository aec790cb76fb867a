"""The scheduler's job called directly with a fake clock, then the scheduler and watcher live.

The job-level tests drive :class:`Refresher` (the function APScheduler calls)
with a clock the test moves and a :class:`Writes` the test feeds, so the
half-written rules are checked without timing.  The live tests run the real
APScheduler and the real inotify watcher with bounded waits; they assert
outcomes (what is published, how many builds ran), never durations.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from watchdog.observers.polling import PollingObserver

from feedserver.config import Settings
from feedserver.publish.manifest import load_manifest
from feedserver.publish.output import MANIFEST, STATUS
from feedserver.schedule.locks import BUILD_LOCK, SCHEDULER_LOCK, lock_file, release, try_lock
from feedserver.schedule.scheduler import Refresher, Scheduler, run_forever
from feedserver.schedule.watcher import Watcher, Writes
from tests.conftest import NOW, parse_feed, recent, write

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="close-write events are inotify's")


class FakeClock:
    """A clock the test moves by hand; starts an hour after the real time, and never
    before the bundled seeds are all due (NOW): the tests pass on any real date."""

    def __init__(self) -> None:
        self.now = max(datetime.now(UTC), NOW).replace(microsecond=0) + timedelta(hours=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def ago(self, seconds: float) -> float:
        """A POSIX time ``seconds`` before the fake now (for file mtimes)."""
        return self.now.timestamp() - seconds


def article(title: str, body: str = "Container trains crossed the railway corridor.",
            date: str | None = None) -> str:
    return f'+++\ntitle = "{title}"\ndate = {date or recent()}\n+++\n\n{body}\n'


def items(out: Path, channel: str = "") -> dict[str, dict[str, Any]]:
    """The items of a channel's JSON Feed by title."""
    doc = json.loads((out / channel / "feed.json").read_text(encoding="utf-8"))
    return {item["title"]: item for item in doc["items"]}


def all_titles(out: Path) -> list[str]:
    """Every title in every published JSON Feed (duplicates kept)."""
    return [t for f in out.rglob("feed.json") for t in items(out, str(f.parent.relative_to(out)))]


def channel_state(out: Path, channel: str) -> dict[str, Any]:
    """Bytes and manifest entries of one channel's files (what a poller sees)."""
    manifest = load_manifest(out)["files"]
    names = [f"{channel}/feed.{kind}".lstrip("/") for kind in ("rss", "atom", "json")]
    return {name: ((out / name).read_bytes(), manifest[name]) for name in names}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def out(settings: Settings) -> Path:
    return Path(settings.output_dir)


@pytest.fixture
def seeds(settings: Settings) -> Path:
    return Path(settings.seeds_dir)


# --- the job, with a fake clock ---------------------------------------------------------------

def test_add_edit_rename_delete_and_untouched_channels_keep_their_bytes(
        settings: Settings, clock: FakeClock, out: Path, seeds: Path) -> None:
    job = Refresher(settings, clock)
    assert job.run().report.published
    technology = channel_state(out, "topics/technology")

    write(seeds / "wire.md", article("Wire freight record"), mtime=clock.ago(60))
    first = job.run()
    assert first.held == [] and "wire.md" not in str(first.report.problems)
    added = items(out)["Wire freight record"]
    assert "Wire freight record" in items(out, "topics/transport")
    assert channel_state(out, "topics/technology") == technology  # bytes, ETag, Last-Modified

    clock.advance(600)
    write(seeds / "wire.md", article("Wire freight record", "The railway corridor grew."),
          mtime=clock.ago(30))
    job.run()
    edited = items(out)["Wire freight record"]
    assert edited["id"] == added["id"] and "grew" in edited["content_html"]
    assert edited["date_published"] == added["date_published"]
    assert edited["date_modified"] > added["date_modified"]

    (seeds / "moved").mkdir()
    os.rename(seeds / "wire.md", seeds / "moved" / "wire.md")
    job.run()
    # 'all', 'transport' and its language's channel, once each
    assert all_titles(out).count("Wire freight record") == 3
    assert items(out)["Wire freight record"]["id"] == added["id"]

    (seeds / "moved" / "wire.md").unlink()
    job.run()
    assert "Wire freight record" not in all_titles(out)
    assert channel_state(out, "topics/technology") == technology


def test_a_file_still_being_written_waits_for_the_settle_time(
        settings: Settings, clock: FakeClock, out: Path, seeds: Path) -> None:
    writes = Writes(close_events=False, settle=2.0)
    job = Refresher(settings, clock, writes)
    job.run()
    before = (out / "feed.rss").read_bytes()
    full = article("Slow upload", "First paragraph.\n\nSecond paragraph about the railway.")
    write(seeds / "slow.md", full[:40], mtime=clock.ago(0.3))  # the front matter is cut
    outcome = job.run()
    assert outcome.held == ["slow.md"] and not outcome.report.problems
    assert outcome.retry_at is not None and clock.now < outcome.retry_at <= \
        clock.now + timedelta(seconds=2)
    assert (out / "feed.rss").read_bytes() == before

    write(seeds / "slow.md", full, mtime=clock.ago(0.1))  # the writer finishes
    clock.advance(1.0)
    assert job.run().held == ["slow.md"]
    clock.advance(2.0)
    outcome = job.run()
    assert outcome.held == [] and outcome.retry_at is None
    assert "Second paragraph" in items(out)["Slow upload"]["content_html"]


def test_an_edit_in_progress_keeps_the_last_good_version(
        settings: Settings, clock: FakeClock, out: Path, seeds: Path) -> None:
    job = Refresher(settings, clock, Writes(close_events=False))
    write(seeds / "story.md", article("Story", "Old text."), mtime=clock.ago(60))
    job.run()
    before = channel_state(out, "")
    write(seeds / "story.md", article("Story v2", "New te"), mtime=clock.ago(0.5))
    assert job.run().held == ["story.md"]
    assert channel_state(out, "") == before
    clock.advance(5)
    job.run()
    assert "Story v2" in items(out) and "Story" not in items(out)


def test_close_write_publishes_at_once_and_an_open_writer_is_held(
        settings: Settings, clock: FakeClock, out: Path, seeds: Path) -> None:
    writes = Writes(close_events=True, settle=2.0)
    job = Refresher(settings, clock, writes)
    path = write(seeds / "open.md", article("Open file")[:30], mtime=clock.ago(0.1))
    writes.opened("open.md")
    assert job.run().held == ["open.md"]
    clock.advance(30)  # the writer pauses for long; its file is still open
    assert job.run().held == ["open.md"]
    assert "Open file" not in items(out)

    write(path, article("Open file"), mtime=clock.ago(0.05))
    stat = path.stat()
    writes.closed("open.md", (stat.st_size, stat.st_mtime_ns), wrote=True)
    assert job.run().held == []  # no settle wait: the close said it is whole
    assert "Open file" in items(out)

    with path.open("a", encoding="utf-8") as handle:  # written again after that close
        handle.write("More railway news.\n")
    os.utime(path, (clock.ago(0.05), clock.ago(0.05)))
    assert job.run().held == ["open.md"]

    tmp = write(seeds / ".renamed.md.tmp", article("Renamed in"), mtime=clock.ago(0.01))
    os.rename(tmp, seeds / "renamed.md")
    stat = (seeds / "renamed.md").stat()
    writes.renamed_in("renamed.md", (stat.st_size, stat.st_mtime_ns))
    assert job.run().held == ["open.md"]
    assert "Renamed in" in items(out)


NOW_NS = 1_800_000_000 * 10**9


@pytest.mark.parametrize(("close_events", "events", "age", "wait"), [
    (True, [], 30.0, None),  # changed while nothing watched, long ago
    (True, [], 0.5, 1.55),  # changed moments ago: let it settle
    (True, ["whole"], 0.1, None),  # closed by its writer just now: whole
    (True, ["open"], 30.0, 2.0),  # open after a write, paused: wait for its close
    (True, ["open"], 61.0, None),  # open, untouched for a minute: a lost close
    (True, ["open", "open", "whole"], 0.1, None),  # a reader's open does not outlive a save
    (True, ["open", "open", "whole", "touch"], 30.0, None),  # ... nor hold a later change
    (True, ["open", "read-close"], 30.0, None),  # a reader came and went
    (False, ["open"], 30.0, None),  # no close events: only the settle time counts
    (False, [], -10.0, 12.05),  # mtime a little ahead: wait
    (False, [], -120.0, None),  # far ahead: another clock; do not wait for it
])
def test_the_hold_rule(close_events: bool, events: list[str], age: float,
                       wait: float | None) -> None:
    from feedserver.build.scan import ScannedFile

    writes = Writes(close_events=close_events, settle=2.0)
    mtime = NOW_NS - int(age * 1e9)
    for event in events:
        if event == "open":
            writes.opened("a.md")
        elif event == "whole":
            writes.closed("a.md", (10, mtime), wrote=True)
        elif event == "touch":
            mtime -= 5 * 10**9
        elif event == "read-close":
            writes.closed("a.md", None, wrote=False)
    now = datetime.fromtimestamp(NOW_NS / 1e9, UTC)
    got = writes.wait_for(ScannedFile("a.md", "/seeds/a.md", 10, mtime), now)
    assert got == (None if wait is None else pytest.approx(wait))


def test_a_good_file_turned_bad_keeps_its_last_good_version(
        settings: Settings, clock: FakeClock, out: Path, seeds: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    job = Refresher(settings, clock)
    write(seeds / "good.md", article("Good then bad"), mtime=clock.ago(60))
    job.run()
    published = channel_state(out, "")
    write(seeds / "good.md", '+++\ntitle = "unclosed\n+++\n\nBody.\n', mtime=clock.ago(30))
    with caplog.at_level("WARNING", logger="feedserver"):
        outcome = job.run()
    assert channel_state(out, "") == published
    assert [p.where for p in outcome.report.errors] == ["good.md"]
    assert "last good version" in caplog.text and "good.md" in caplog.text
    status = json.loads((out / STATUS).read_text(encoding="utf-8"))
    assert [p["where"] for p in status["problems"]] == ["good.md"]


def test_an_article_dated_in_the_future_is_due_later(
        settings: Settings, clock: FakeClock, out: Path, seeds: Path) -> None:
    due = clock.now + timedelta(hours=2)
    write(seeds / "later.md", article("Embargoed", date=due.isoformat()), mtime=clock.ago(60))
    job = Refresher(settings, clock)
    outcome = job.run()
    assert outcome.next_due == due and "Embargoed" not in items(out)
    clock.now = due
    job.run()
    assert "Embargoed" in items(out)
    assert parse_feed(out / "feed.rss").entries[0].title == "Embargoed"


def test_a_build_waits_for_another_holding_the_build_lock(
        settings: Settings, clock: FakeClock, out: Path) -> None:
    quick = dataclasses.replace(settings, refresh_interval=1)
    fd = try_lock(lock_file(quick, BUILD_LOCK))
    assert fd is not None
    try:
        assert Refresher(quick, clock).run().report is None
        assert not (out / MANIFEST).exists()
    finally:
        release(fd)
    assert Refresher(quick, clock).run().report.published


def test_a_missing_seeds_folder_publishes_nothing(settings: Settings, clock: FakeClock,
                                                   out: Path, seeds: Path) -> None:
    job = Refresher(settings, clock)
    job.run()
    before = channel_state(out, "")
    seeds.rename(seeds.with_name("seeds.unmounted"))
    assert job.run().report is None
    assert channel_state(out, "") == before


# --- the scheduler and the watcher, live ------------------------------------------------------

def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``check`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def runs_stay(scheduler: Scheduler, runs: int, settle: float = 1.0) -> bool:
    """The job has run ``runs`` times (allowing the last one to finish) and no more after."""
    if not eventually(lambda: scheduler.refresher.runs >= runs):
        return False
    time.sleep(settle)
    return scheduler.refresher.runs == runs


def published(out: Path, title: str) -> bool:
    try:
        return title in items(out)
    except (OSError, ValueError):
        return False


@pytest.fixture
def live(settings: Settings) -> Iterator[Callable[..., Scheduler]]:
    """Start schedulers (and watchers) on the test site; all stopped at the end."""
    started: list[tuple[Scheduler, Watcher | None]] = []

    def start(clock: Callable[[], datetime] | None = None, settle: float = 2.0,
              events: bool = False, interval: int = 60, polling: bool = False) -> Scheduler:
        writes = Writes(close_events=False, settle=settle)
        refresher = Refresher(dataclasses.replace(settings, refresh_interval=interval),
                              clock or (lambda: datetime.now(UTC)), writes)
        scheduler = Scheduler(refresher)
        watcher = None
        if polling:  # what platforms without close events get
            watcher = Watcher(settings.seeds_dir, writes, scheduler.wake,
                              PollingObserver(timeout=0.2))
        elif events:
            watcher = Watcher.for_platform(settings.seeds_dir, scheduler.wake, settle)
            refresher.writes = watcher.writes
        if watcher is not None:
            assert watcher.start()
        scheduler.start()
        started.append((scheduler, watcher))
        return scheduler

    yield start
    for scheduler, watcher in started:
        if watcher is not None:
            watcher.stop()
        scheduler.shutdown()


def test_events_during_a_build_make_one_more_build_not_one_each(live: Callable[..., Scheduler],
                                                                out: Path, seeds: Path) -> None:
    gate, inside = threading.Event(), threading.Event()

    def slow_clock() -> datetime:  # the first build blocks inside, under the lock
        inside.set()
        gate.wait(10)
        return datetime.now(UTC)

    scheduler = live(clock=slow_clock)
    assert inside.wait(10)
    for _ in range(5):
        scheduler.wake("test event")
    gate.set()
    assert eventually(lambda: scheduler.refresher.runs == 2)
    assert runs_stay(scheduler, 2)


def test_shutdown_during_a_build_with_a_follow_up_returns(live: Callable[..., Scheduler]) -> None:
    """APScheduler's shutdown holds its job-store lock while it waits for the job; the
    job's follow-up (an event came during the build) asks for that lock."""
    gate, inside = threading.Event(), threading.Event()

    def slow_clock() -> datetime:
        inside.set()
        gate.wait(10)
        return datetime.now(UTC)

    scheduler = live(clock=slow_clock)
    assert inside.wait(10)
    scheduler.wake("an event during the build: the build ends with a follow-up")
    stopper = threading.Thread(target=scheduler.shutdown, daemon=True)
    stopper.start()
    time.sleep(0.3)  # shutdown is waiting for the build
    gate.set()
    stopper.join(20)
    assert not stopper.is_alive()


def test_a_held_file_is_looked_at_again_without_an_event(live: Callable[..., Scheduler],
                                                        out: Path, seeds: Path) -> None:
    # mtime now on the process's clock (the one the hold rule compares it with; under
    # faketime the kernel's differs): within the settle time.
    write(seeds / "fresh.md", article("Freshly copied"), mtime=time.time())
    scheduler = live(settle=1.0)
    assert eventually(lambda: scheduler.refresher.runs >= 1)
    assert eventually(lambda: published(out, "Freshly copied"))
    assert runs_stay(scheduler, 2)  # the start, then the retry; the interval is 60 s


def test_an_article_coming_due_gets_a_run_of_its_own(live: Callable[..., Scheduler],
                                                    out: Path, seeds: Path) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    write(seeds / "due.md", article("Due soon", date=due.isoformat()), mtime=time.time() - 60)
    scheduler = live()
    assert eventually(lambda: scheduler.refresher.runs >= 1)
    assert not published(out, "Due soon")
    assert eventually(lambda: published(out, "Due soon"))
    assert datetime.now(UTC) >= due and runs_stay(scheduler, 2)


@linux_only
def test_a_save_or_a_rename_into_place_is_published_on_close(
        live: Callable[..., Scheduler], out: Path, seeds: Path) -> None:
    scheduler = live(events=True, settle=300.0)  # only a close or a rename can publish
    assert eventually(lambda: scheduler.refresher.runs >= 1)
    (seeds / "saved.md").write_text(article("Saved normally"), encoding="utf-8")
    assert eventually(lambda: published(out, "Saved normally"))
    tmp = seeds / ".incoming.md.part"
    tmp.write_text(article("Renamed into place"), encoding="utf-8")
    os.rename(tmp, seeds / "incoming.md")
    assert eventually(lambda: published(out, "Renamed into place"))


@linux_only
def test_a_writer_pausing_with_the_file_open_is_not_published_half_way(
        live: Callable[..., Scheduler], out: Path, seeds: Path) -> None:
    scheduler = live(events=True, settle=0.5)
    assert eventually(lambda: scheduler.refresher.runs >= 1)
    text = article("Paused writer", "Part one.\n\nPart two about the railway.")
    with (seeds / "paused.md").open("w", encoding="utf-8") as handle:
        handle.write(text[:60])
        handle.flush()
        os.utime(seeds / "paused.md", (time.time(), time.time()))  # the process's clock
        deadline = time.monotonic() + 2.0  # four settle times with the file open
        while time.monotonic() < deadline:
            assert not published(out, "Paused writer")
            time.sleep(0.05)
        runs_while_open = scheduler.refresher.runs
        handle.write(text[60:])
    assert eventually(lambda: published(out, "Paused writer"))
    assert "Part two" in items(out)["Paused writer"]["content_html"]
    assert runs_while_open >= 2  # it did look (the retries), and held each time


def test_without_close_events_a_save_is_published_once_it_settles(
        live: Callable[..., Scheduler], out: Path, seeds: Path) -> None:
    scheduler = live(polling=True, settle=0.5)
    assert eventually(lambda: scheduler.refresher.runs >= 1)
    (seeds / "polled.md").write_text(article("Seen by polling"), encoding="utf-8")
    assert eventually(lambda: published(out, "Seen by polling"))
    assert not scheduler.refresher.writes.close_events


@linux_only
@linux_only
def test_folders_moved_in_and_out_are_noticed(live: Callable[..., Scheduler], out: Path,
                                             seeds: Path, tmp_path: Path) -> None:
    """Events name files one by one; a folder renamed out of seeds/ names only the
    folder, so the next build scans everything (the interval, 60 s, is not what
    notices)."""
    scheduler = live(events=True, settle=0.2)
    assert eventually(lambda: scheduler.refresher.runs >= 1)
    incoming = tmp_path / "incoming"
    for name in ("a", "b"):
        write(incoming / "deeper" / f"{name}.md", article(f"Moved in {name}"),
              mtime=time.time() - 60)
    os.rename(incoming, seeds / "incoming")
    assert eventually(lambda: published(out, "Moved in a") and published(out, "Moved in b"))
    (seeds / "incoming" / "deeper" / "a.md").unlink()  # one file: by its own event
    assert eventually(lambda: not published(out, "Moved in a"))
    assert published(out, "Moved in b")
    os.rename(seeds / "incoming", tmp_path / "gone")  # no event names the files in it
    assert eventually(lambda: not published(out, "Moved in b"))


def test_editor_leftovers_wake_nothing(live: Callable[..., Scheduler], seeds: Path) -> None:
    scheduler = live(events=True)
    assert eventually(lambda: scheduler.refresher.runs >= 1)
    time.sleep(0.3)
    for name in (".story.md.swp", "story.md~", "#story.md#", ".hidden.md", "story.md.tmp"):
        (seeds / name).write_text(article("Leftover"), encoding="utf-8")
    (seeds / ".git").mkdir()
    (seeds / ".git" / "note.md").write_text(article("In a hidden folder"), encoding="utf-8")
    assert runs_stay(scheduler, 1)


def test_a_second_scheduler_on_the_same_state_stands_by(settings: Settings, out: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="feedserver")
    first_stop, second_stop = threading.Event(), threading.Event()
    first = threading.Thread(target=run_forever, args=(settings,),
                             kwargs={"events": False, "stop": first_stop})
    second = threading.Thread(target=run_forever, args=(settings,),
                              kwargs={"events": False, "stop": second_stop})
    first.start()
    try:
        assert eventually(lambda: (out / MANIFEST).exists())
        second.start()
        assert eventually(lambda: "standing by" in caplog.text)
        assert caplog.text.count("scheduler started") == 1
        first_stop.set()
        first.join(10)
        assert eventually(lambda: caplog.text.count("scheduler started") == 2)
        assert try_lock(lock_file(settings, SCHEDULER_LOCK)) is None
    finally:
        first_stop.set()
        second_stop.set()
        first.join(10)
        second.join(10)
    assert not first.is_alive() and not second.is_alive()


def test_a_process_forked_by_a_build_does_not_keep_the_lock(settings: Settings) -> None:
    path = lock_file(settings, BUILD_LOCK)
    fd = try_lock(path)
    assert fd is not None
    gate_read, gate_write = os.pipe()
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # like a pool worker: lives on, holds whatever it inherited
        os.write(ready_write, b"x")
        os.read(gate_read, 1)
        os._exit(0)
    try:
        assert os.read(ready_read, 1) == b"x"  # the child runs (its fork hooks have run)
        release(fd)
        again = try_lock(path)  # the child is still alive
        assert again is not None
        release(again)
    finally:
        os.write(gate_write, b"x")
        os.waitpid(pid, 0)
        for end in (gate_read, gate_write, ready_read, ready_write):
            os.close(end)


@linux_only
def test_the_watcher_follows_a_seeds_folder_made_again(settings: Settings, out: Path,
                                                       seeds: Path) -> None:
    stop = threading.Event()  # refresh_interval is 30 s: only events publish in time
    owner = threading.Thread(target=run_forever, args=(settings,), kwargs={"stop": stop})
    owner.start()
    try:
        assert eventually(lambda: (out / MANIFEST).exists())
        old = seeds.rename(seeds.with_name("seeds.old"))
        time.sleep(1.0)  # a while without seeds/: the observer still watches seeds.old
        seeds.mkdir()
        for path in old.rglob("*.md"):
            write(seeds / path.relative_to(old), path.read_bytes(), mtime=time.time() - 60)
        (seeds / "back.md").write_text(article("Folder made again"), encoding="utf-8")
        assert eventually(lambda: published(out, "Folder made again"))
    finally:
        stop.set()
        owner.join(10)


def test_writes_remember_each_move_for_a_while() -> None:
    from feedserver.schedule.watcher import MOVE_MEMORY, Writes

    writes = Writes(close_events=True)
    writes.moved("a.md", "b.md", 100.0)
    writes.moved("b.md", "c/d.md", 101.0)
    assert writes.moves(102.0) == {"b.md": "a.md", "c/d.md": "b.md"}
    writes.moved("x.md", "y.md", 200.0)
    assert writes.moves(200.0 + MOVE_MEMORY + 1) == {}

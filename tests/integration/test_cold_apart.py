"""A scheduler's cold build runs in a process of its own (:mod:`feedserver.schedule.apart`).

The job (:class:`Refresher`) is driven directly with a fake clock, as the scheduler's
other job tests do.  Which process built is recorded by the build itself (a wrapper
around ``run_build`` writing its pid to a file, inherited by the forked child), so the
tests see where each build ran without timing anything.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from feedserver.build import parallel
from feedserver.build import run as build_run
from feedserver.config import Settings
from feedserver.core.errors import FeedserverError
from feedserver.publish.output import MANIFEST, STATUS
from feedserver.schedule import apart
from feedserver.schedule.scheduler import Refresher
from feedserver.schedule.watcher import Writes
from tests.conftest import parse_feed, recent, write
from tests.integration.test_scheduler import FakeClock


def _record_builds(monkeypatch: pytest.MonkeyPatch, log: Path,
                   instead: Callable[..., Any] | None = None) -> None:
    """Every cold build apart writes the pid that ran it to ``log``, and beside it
    whether it was given a memory (then builds, or does ``instead``)."""
    real = apart.run_build

    def recorded(*args: Any, **kwargs: Any) -> Any:
        with log.open("a", encoding="utf-8") as out:
            out.write(f"{os.getpid()} {args[2] is not None}\n")
        return (instead or real)(*args, **kwargs)

    monkeypatch.setattr(apart, "run_build", recorded)


def _pids(log: Path) -> list[int]:
    return [int(line.split()[0]) for line in log.read_text(encoding="utf-8").splitlines()] \
        if log.exists() else []


def _feeds(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("feed.*"))}


def test_the_cold_build_is_made_apart_and_read_back_here(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The child forks the build's own workers, as a site of thousands of articles does:
    # a Pool for every job (a daemonic child may have none: 10,000 articles found it).
    monkeypatch.setattr(parallel, "SPLIT_MAX", 0)
    monkeypatch.setattr(parallel, "FILE_RUN", 9)
    settings = dataclasses.replace(settings, build_processes=2)
    clock = FakeClock()
    reference = build_run.run_build(dataclasses.replace(
        settings, output_dir=str(tmp_path / "reference"), state_dir=str(tmp_path / "ref-state")),
        clock())
    log = tmp_path / "pids"
    _record_builds(monkeypatch, log)
    out = Path(settings.output_dir)
    job = Refresher(settings, clock, cold_apart=True)

    first = job.run("start")
    assert first.report is not None and first.report.published and first.again
    assert [pid != os.getpid() for pid in _pids(log)] == [True]  # one build, another process
    # and it keeps nothing for a later build: its content is packed
    # (feedserver.build.run._with_content)
    assert log.read_text(encoding="utf-8").split()[1] == "False"
    assert job.memory.manifest is None  # this process holds nothing of that build
    assert _feeds(out) == _feeds(tmp_path / "reference")  # the very bytes a build makes
    assert first.report.written and first.report.articles == reference.articles

    second = job.run("interval")  # what the scheduler runs at once: reads it back here
    assert second.report is not None and not second.again and second.report.written == []
    assert job.memory.manifest is not None and len(_pids(log)) == 1

    write(Path(settings.seeds_dir) / "news" / "rail.md",
          f'+++\ntitle = "Night trains return"\ndate = {recent()}\n+++\n\nSleeper cars.\n')
    third = job.run("interval")
    assert third.report is not None and not third.again and len(_pids(log)) == 1
    titles = [e.title for e in parse_feed(out / "feed.atom").entries]
    assert "Night trains return" in titles

    shutil.rmtree(out)  # the output folder removed while the scheduler runs: cold again
    fourth = job.run("output folder is gone")
    assert fourth.report is not None and fourth.again
    pids = _pids(log)
    assert len(pids) == 2 and pids[1] != os.getpid()
    assert job.memory.manifest is None and (out / MANIFEST).is_file()
    assert "Night trains return" in [e.title for e in parse_feed(out / "feed.atom").entries]


def test_a_build_here_when_something_is_published(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    build_run.run_build(settings, clock())  # published before the scheduler starts
    log = tmp_path / "pids"
    _record_builds(monkeypatch, log)
    job = Refresher(settings, clock, cold_apart=True)
    outcome = job.run("start")
    assert outcome.report is not None and not outcome.again
    assert _pids(log) == [] and job.memory.manifest is not None


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise FeedserverError("the ledger is on fire")


def _crash(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("a bug")


def _die(*_args: Any, **_kwargs: Any) -> Any:
    os._exit(3)


@pytest.mark.parametrize(("instead", "reason"), [
    (_refuse, "the ledger is on fire"),
    (_crash, "the cold build raised RuntimeError: a bug"),
    (_die, "the cold build's process ended with exit code 3"),
])
def test_a_cold_build_that_fails_apart_fails_the_run_with_its_reason(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        instead: Callable[..., Any], reason: str) -> None:
    log = tmp_path / "pids"
    _record_builds(monkeypatch, log, instead)
    job = Refresher(settings, FakeClock(), cold_apart=True)
    outcome = job.run("start")
    assert outcome.report is None and outcome.retry_at is not None and not outcome.again
    assert job.failures == 1 and len(_pids(log)) == 1 and _pids(log)[0] != os.getpid()
    status = json.loads((Path(settings.output_dir) / STATUS).read_text(encoding="utf-8"))
    assert status["last_error"]["message"] == reason
    assert not (Path(settings.output_dir) / MANIFEST).exists()


def test_a_file_being_written_is_held_by_the_cold_build_and_said_so(
        settings: Settings, tmp_path: Path) -> None:
    clock = FakeClock()
    seeds = Path(settings.seeds_dir)
    fresh = clock().timestamp()  # modified this very second: maybe not written whole yet
    write(seeds / "slow.md", f'+++\ntitle = "Still arriving"\ndate = {recent()}\n+++\n\nHalf.\n',
          mtime=fresh)
    job = Refresher(settings, clock, Writes(close_events=False), cold_apart=True)
    outcome = job.run("start")
    assert outcome.report is not None and outcome.again
    assert outcome.held == ["slow.md"] and outcome.retry_at is not None  # as built here
    titles = [e.title for e in parse_feed(Path(settings.output_dir) / "feed.atom").entries]
    assert "Still arriving" not in titles and titles


@pytest.mark.parametrize("settled", [0, 3])
def test_a_first_build_that_held_most_files_leaves_the_next_one_cold(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        settled: int) -> None:
    # A seeds folder copied just before the start: every file but the first ``settled``
    # is too fresh to be read yet.
    clock = FakeClock()
    seeds = Path(settings.seeds_dir)
    for number in range(8):
        write(seeds / "copied" / f"note-{number}.md",
              f'+++\ntitle = "Copied note {number}"\ndate = {recent(number + 1)}\n+++\n\n'
              "Grain trains crossed the steppe.\n")
    files = sorted(p for p in seeds.rglob("*") if p.is_file())
    assert len(files) > 2 * settled + 1
    for path in files[settled:]:
        os.utime(path, (clock.now.timestamp(), clock.now.timestamp()))
    log = tmp_path / "pids"
    _record_builds(monkeypatch, log)
    job = Refresher(settings, clock, Writes(close_events=False), cold_apart=True)
    first = job.run("start")
    assert first.report is not None and first.report.articles <= settled
    assert len(first.held) == len(files) - settled
    assert not first.again and first.retry_at is not None  # the rest is still to come
    clock.advance(5)  # left alone long enough: whole now
    second = job.run("held files")
    assert second.report is not None and second.report.articles > 0 and not second.held
    assert second.again and len(_pids(log)) == 2  # the real cold build, apart as well
    third = job.run("interval")
    assert third.report is not None and not third.again and len(_pids(log)) == 2
    assert third.report.written == [] and job.memory.manifest is not None
    entries = parse_feed(Path(settings.output_dir) / "feed.atom").entries
    assert len(entries) == min(second.report.articles, settings.max_items)


def test_an_empty_seeds_folder_is_built_apart_without_a_loop(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seeds = Path(settings.seeds_dir)
    shutil.rmtree(seeds)
    seeds.mkdir()
    log = tmp_path / "pids"
    _record_builds(monkeypatch, log)
    job = Refresher(settings, FakeClock(), cold_apart=True)
    outcomes = [job.run("start"), job.run("interval")]
    assert all(o.report is not None and o.report.articles == 0 and not o.again
               for o in outcomes)
    assert len(_pids(log)) == 2 and os.getpid() not in _pids(log)

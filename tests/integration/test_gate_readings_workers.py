"""What the gate's parser read in one worker process serves every process after it.

Workers send the readings of the items they parsed first back to the parent with
their results (:mod:`feedserver.render.formats.readings`); processes forked later (a
Pool's replacement workers, the next build's forks) inherit them, so an item is parsed
once per build, not once per worker.  The documents feedparser is given are logged
from inside the forked workers (an append-only file), item tags counted.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import feedparser
import pytest

from benchmarks.corpus import generate
from feedserver.build import parallel as workers
from feedserver.build.parallel import SPLIT_MAX, Executor, warm_cache
from feedserver.build.run import run_build
from feedserver.publish.output import discard
from feedserver.publish.readings_store import FILENAME, ReadingsStore
from tests.conftest import NOW
from tests.integration.test_workers_warm import (
    bodies,
    execute,
    make_site,
    plain,
    settings_for,
    staged,
)

ITEM_TAG = re.compile(rb"<(?:item|entry)[\s>]")  # an entry in its own language: xml:lang


def logging_parses(monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
    """Every feedparser call in this process and its forks appends '<items>' to ``log``."""
    real = feedparser.parse

    def parse(source: Any, *args: Any, **kwargs: Any) -> Any:
        body = source.getvalue() if isinstance(source, io.BytesIO) else b""
        count = len(ITEM_TAG.findall(body))
        handle = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(handle, b"%d\n" % count)
        finally:
            os.close(handle)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(feedparser, "parse", parse)


def items_parsed(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def test_pool_workers_share_what_they_read(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    generate(tmp_path / "seeds", 40, seed=5)
    settings = settings_for(tmp_path / "site")
    site = make_site(settings)
    channels = list(site.channels)
    assert len(channels) * 3 > SPLIT_MAX  # the Pool's path
    monkeypatch.setattr(workers, "RECYCLE", 1)  # a replacement worker for every run
    log = tmp_path / "parses.log"
    logging_parses(monkeypatch, log)
    warm = warm_cache()
    first = execute(settings, site, channels, 2, warm)
    assert not first.problems and not first.failed
    distinct = {a for c in channels for a in c.articles}
    # Every item is read once per format (and context), not once per channel listing it.
    listed = sum(len(c.articles) for c in channels) * 2
    assert len(distinct) * 2 <= sum(items_parsed(log)) < listed, (len(distinct), listed)
    assert len(warm.readings) >= len(distinct) * 2  # the parent kept what workers read

    log.unlink()
    again = execute(settings, site, channels, 2, warm)  # forks inherit every reading
    assert set(items_parsed(log)) == {0}  # only envelopes: no item parsed twice
    monkeypatch.undo()
    assert bodies(staged(again, Path(settings.output_dir))) == plain(site, channels)


def test_the_parent_asks_no_database_while_its_pool_can_fork(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Pool forks its replacement workers from a thread of its own, at any moment. A
    fork made while the parent's main thread is inside SQLite leaves the child holding
    a lock no thread of it will release, and the child's first SQLite call waits for
    good. (Seen: a cold build of 10,000 articles that wrote its workers' readings to the
    readings store during the Pool hung in a worker opening the store.) So while the
    Pool lives, the build's process neither writes nor reads the readings store."""
    generate(tmp_path / "seeds", 40, seed=5)
    settings = settings_for(tmp_path / "site")
    monkeypatch.setattr(workers, "RECYCLE", 1)  # a replacement worker for every run
    parent, pooled, asked = os.getpid(), [False], []
    real_pool = workers._forked_pool

    @contextlib.contextmanager
    def watched(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with real_pool(*args, **kwargs) as pool:
            pooled[0] = True
            try:
                yield pool
            finally:
                pooled[0] = False
    monkeypatch.setattr(workers, "_forked_pool", watched)
    for name in ("add", "get", "ready", "_connection"):
        real = getattr(ReadingsStore, name)

        def spy(self: ReadingsStore, *args: Any, _real: Any = real, _name: str = name,
                **kwargs: Any) -> Any:
            if os.getpid() == parent and pooled[0]:
                asked.append(_name)
            return _real(self, *args, **kwargs)
        monkeypatch.setattr(ReadingsStore, name, spy)
    uses: list[int] = []
    real_pooled = workers._pooled

    def counted(*args: Any) -> Any:
        uses.append(1)
        return real_pooled(*args)
    monkeypatch.setattr(workers, "_pooled", counted)
    monkeypatch.setattr(workers, "SPLIT_MAX", 0)  # every job over a Pool
    report = run_build(replace(settings, build_processes=2), now=NOW)
    assert report.published and not report.errors and uses  # the Pool's path was taken
    assert asked == []
    kept = sqlite3.connect(Path(settings.state_dir) / FILENAME).execute(
        "SELECT count(*) FROM readings").fetchone()[0]
    assert kept > 0  # written, after the Pool


def test_a_process_that_builds_once_keeps_the_readings_as_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its Pool's workers' readings are kept as bytes, not objects, and still serve every
    worker forked after them."""
    generate(tmp_path / "seeds", 40, seed=5)
    settings = settings_for(tmp_path / "site")
    site = make_site(settings)
    channels = list(site.channels)
    monkeypatch.setattr(workers, "RECYCLE", 1)  # a replacement worker for every run
    log = tmp_path / "parses.log"
    logging_parses(monkeypatch, log)
    warm = warm_cache()
    out_dir = Path(settings.output_dir)
    out_dir.mkdir(parents=True)
    first = Executor(out_dir, {}, 2, warm, lasting=False)(site, channels)
    assert not first.problems and not first.failed
    distinct = {a for c in channels for a in c.articles}
    listed = sum(len(c.articles) for c in channels) * 2
    assert len(distinct) * 2 <= sum(items_parsed(log)) < listed, (len(distinct), listed)
    assert len(warm.readings) == 0  # no reading as objects in this process
    assert len(warm.readings._packed) >= len(distinct) * 2

    log.unlink()
    again = Executor(out_dir, {}, 2, warm, lasting=False)(site, channels)
    assert set(items_parsed(log)) == {0}  # forks inherit every reading: only envelopes
    monkeypatch.undo()
    assert bodies(staged(again, out_dir)) == plain(site, channels)
    discard(first.staged)


def test_the_workers_send_a_once_building_parent_their_readings_packed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It keeps them as bytes, so they come as bytes: the parent never makes a reading's
    objects only to pack them (benchmarks/README.md, "A kept row, 4 KiB, ...":
    readings sent packed); a parent that lasts gets objects, as it keeps them."""
    generate(tmp_path / "seeds", 40, seed=5)
    settings = settings_for(tmp_path / "site")
    site = make_site(settings)
    channels = list(site.channels)
    out_dir = Path(settings.output_dir)
    out_dir.mkdir(parents=True)
    taught: dict[str, int] = {"objects": 0, "bytes": 0}
    parent = os.getpid()

    def spy(name: str, real: Any) -> Any:
        def taught_here(self: Any, found: dict[bytes, Any]) -> None:
            if os.getpid() == parent:
                taught[name] += len(found)
            real(self, found)
        return taught_here

    readings_type = type(warm_cache().readings)
    monkeypatch.setattr(readings_type, "teach", spy("objects", readings_type.teach))
    monkeypatch.setattr(readings_type, "teach_bytes", spy("bytes", readings_type.teach_bytes))
    distinct = {a for c in channels for a in c.articles}
    once = Executor(out_dir, {}, 2, warm_cache(), lasting=False)(site, channels)
    assert not once.problems and taught["objects"] == 0
    assert taught["bytes"] >= len(distinct) * 2  # every item in both XML formats
    discard(once.staged)
    taught.update(objects=0, bytes=0)
    lasting = Executor(out_dir, {}, 2, warm_cache(), lasting=True)(site, channels)
    assert not lasting.problems and taught["bytes"] == 0
    assert taught["objects"] >= len(distinct) * 2
    discard(lasting.staged)

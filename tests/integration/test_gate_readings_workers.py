"""What the gate's parser read in one worker process serves every process after it.

Workers send the readings of the items they parsed first back to the parent with
their results (:mod:`feedserver.render.formats.readings`); processes forked later (a
Pool's replacement workers, the next build's forks) inherit them, so an item is parsed
once per build, not once per worker.  The documents feedparser is given are logged
from inside the forked workers (an append-only file), item tags counted.
"""

from __future__ import annotations

import io
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import feedparser
import pytest

from benchmarks.corpus import generate
from feedserver.build import parallel as workers
from feedserver.build.parallel import SPLIT_MAX, Executor, warm_cache
from feedserver.publish.output import discard
from feedserver.publish.readings_store import ReadingsStore
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


def test_a_process_that_builds_once_hands_the_readings_to_the_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Pool of a process that builds once: what its workers read goes to the readings
    store at once, not into the parent's memory, and the workers forked later ask it."""
    generate(tmp_path / "seeds", 40, seed=5)
    settings = settings_for(tmp_path / "site")
    site = make_site(settings)
    channels = list(site.channels)
    monkeypatch.setattr(workers, "RECYCLE", 1)  # a replacement worker for every run
    log = tmp_path / "parses.log"
    logging_parses(monkeypatch, log)
    cache = warm_cache()
    store = ReadingsStore(settings.state_dir)
    cache.readings.back(store)
    store.ready()
    out_dir = Path(settings.output_dir)
    out_dir.mkdir(parents=True)
    first = Executor(out_dir, {}, 2, cache, lasting=False)(site, channels)
    assert not first.problems and not first.failed
    distinct = {a for c in channels for a in c.articles}
    listed = sum(len(c.articles) for c in channels) * 2
    # each item read about once per format: later workers found the others' readings
    assert len(distinct) * 2 <= sum(items_parsed(log)) < listed, (len(distinct), listed)
    assert len(cache.readings) == 0 and cache.readings.unsaved() == {}  # none kept here
    kept = sqlite3.connect(store.path).execute("SELECT count(*) FROM readings").fetchone()[0]
    assert kept >= len(distinct) * 2

    log.unlink()  # a new process: an empty memory, the same store
    fresh = warm_cache()
    fresh.readings.back(ReadingsStore(settings.state_dir))
    again = Executor(out_dir, {}, 2, fresh, lasting=False)(site, channels)
    assert set(items_parsed(log)) == {0}  # only envelopes: every item's reading was stored
    monkeypatch.undo()
    assert bodies(staged(again, out_dir)) == plain(site, channels)
    discard(first.staged)

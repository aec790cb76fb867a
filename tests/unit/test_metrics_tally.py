"""Request counts kept in the process and added to the shared values in batches
(:mod:`feedserver.metrics.tally`).

The sums a scrape reads must be exactly what counting each request at once gave: the
same text for a histogram fed observation by observation and one fed in batches; every
count of a worker that ends (as granian's workers end: a ``multiprocessing`` process
whose target returns) reaches the folder even when no batch was due; what a process
held when it forked is counted once, by it, not again by its child.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

from feedserver.metrics import tally
from feedserver.metrics.instruments import LATENCY_BUCKETS

SECONDS = [0.0001, 0.0005, 0.0007, 0.001, 0.003, 0.02, 0.02, 0.4, 3.0, 9.5, 0.0]


def instruments(registry: CollectorRegistry | None) -> tuple[Any, Any]:
    counter = Counter("answers", "Answers.", ["kind"], registry=registry)
    histogram = Histogram("latency", "Latency.", ["kind"], registry=registry,
                          buckets=LATENCY_BUCKETS)
    return counter, histogram


def text(registry: CollectorRegistry) -> list[str]:
    """The exposition, without the ``_created`` times (two objects made apart)."""
    return [line for line in generate_latest(registry).decode().splitlines()
            if "_created" not in line]


def test_batched_counts_read_as_counting_each_at_once() -> None:
    direct, batched = CollectorRegistry(), CollectorRegistry()
    (count_a, hist_a), (count_b, hist_b) = instruments(direct), instruments(batched)
    counts = tally.Tally(interval=3600)
    for seconds in SECONDS:
        count_a.labels("feed").inc()
        count_a.labels("page").inc(3)
        hist_a.labels("feed").observe(seconds)
        counts.add([(count_b.labels("feed"), 1), (count_b.labels("page"), 3),
                    *tally.Latency(hist_b.labels("feed")).amounts(seconds)])
    assert text(batched) != text(direct)  # nothing added yet
    counts.flush()
    assert text(batched) == text(direct)
    counts.flush()  # a second flush adds nothing
    assert text(batched) == text(direct)


def test_a_batch_is_added_within_the_interval_without_a_flush_call() -> None:
    registry = CollectorRegistry()
    counter, _ = instruments(registry)
    counts = tally.Tally(interval=0.05)
    for _ in range(5):
        counts.add([(counter.labels("feed"), 1)])
    deadline = time.monotonic() + 5
    while counter.labels("feed")._value.get() != 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counter.labels("feed")._value.get() == 5


@pytest.fixture()
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A multiprocess folder, with prometheus_client's value store switched to it."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    values.ValueClass = values.get_value_class()
    yield tmp_path
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    values.ValueClass = values.get_value_class()


def summed(folder: Path) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples}


def _worker(counter: Any, histogram: Any, counts: tally.Tally, requests: int) -> None:
    """A worker's life: count requests, then end (no flush is due for an hour)."""
    for _ in range(requests):
        counts.add([(counter.labels("feed"), 1),
                    *tally.Latency(histogram.labels("feed")).amounts(0.002)])


def test_a_worker_that_ends_adds_what_it_held(folder: Path) -> None:
    counter, histogram = instruments(None)
    counts = tally.Tally(interval=3600)
    counts.add([(counter.labels("feed"), 1000)])  # held by this process when it forks
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_worker, args=(counter, histogram, counts, n))
               for n in (7, 11)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(20)
        assert worker.exitcode == 0
    found = summed(folder)
    assert found[("answers_total", (("kind", "feed"),))] == 18  # not 18 + 2 x 1000
    assert found[("latency_count", (("kind", "feed"),))] == 18
    assert found[("latency_bucket", (("kind", "feed"), ("le", "0.0025")))] == 18
    assert found[("latency_bucket", (("kind", "feed"), ("le", "0.001")))] == 0
    counts.flush()  # this process's own thousand, once
    assert summed(folder)[("answers_total", (("kind", "feed"),))] == 1018


def test_a_fork_while_the_flusher_holds_the_lock_does_not_hang(folder: Path) -> None:
    counter, _ = instruments(None)
    counts = tally.Tally(interval=3600)
    counts.add([(counter.labels("feed"), 1)])
    with counts._lock:  # as if the flusher thread held it at the moment of the fork
        pid = os.fork()
        if pid == 0:  # the child: counting must not wait for a lock no thread will free
            try:
                counts.add([(counter.labels("feed"), 2)])
                counts.flush()
            finally:
                os._exit(0)
    deadline = time.monotonic() + 10
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the child hung on the lock it inherited")
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert summed(folder)[("answers_total", (("kind", "feed"),))] == 2

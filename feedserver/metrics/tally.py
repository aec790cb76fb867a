"""Counts kept in the process and added to the shared metric values in batches.

Under ``feedserver serve`` a metric value is a float in a memory-mapped file that
every worker shares (prometheus_client's multiprocess mode): each ``inc`` takes the
library's process-wide lock, compares the pid and writes the file.  The three or four
a request made (its count, its body bytes, the latency histogram's bucket and sum)
cost about 17 µs of the 60 µs a worker spent on a fast-path answer, and under load
about a fifth of the gzip answers a second (benchmarks/README.md, "The layers around
the fast path").  With a :class:`Tally` a request adds to a dictionary instead; the
totals are added to the values

- every :data:`FLUSH_SECONDS` by a daemon thread of the process,
- before the process answers a scrape (:meth:`Tally.flush`, so its own counts are exact),
- when the process ends: by ``multiprocessing``'s exit finalizers, which run when a
  granian worker's target returns and, through ``atexit``, in any other process.

So the counts of another worker reach a scrape up to a second late, and a worker
killed by SIGKILL loses at most its last second of counts.  A process that forks
leaves what it holds to itself: the child starts with nothing pending and a lock of
its own (:func:`os.register_at_fork`), never a copy counted twice or a lock held by a
thread that did not survive the fork.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable
from multiprocessing import util
from typing import Any, Protocol

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
EXIT_PRIORITY = 10  # multiprocessing's exit finalizers: before those of priority 0


class Value(Protocol):
    """What a tally adds to: a Counter's child, or one value of a histogram."""

    def inc(self, amount: float) -> None: ...


class Latency:
    """A histogram child's bucket and sum values, so an observation can be counted in a
    tally.  prometheus_client has no "observe n times": its ``_upper_bounds``,
    ``_buckets`` and ``_sum`` are read (tests/unit/test_metrics_tally.py compares the
    text it exposes with one fed by ``observe``, so a release that renames them fails
    there, not in a worker)."""

    __slots__ = ("bounds", "buckets", "total")

    def __init__(self, child: Any) -> None:
        self.bounds: list[float] = list(child._upper_bounds)
        self.buckets: list[Value] = list(child._buckets)
        self.total: Value = child._sum

    def amounts(self, amount: float) -> tuple[tuple[Value, float], tuple[Value, float]]:
        """What ``observe(amount)`` adds: 1 to the bucket of the first bound >= ``amount``
        (the last bound is +Inf), ``amount`` to the sum."""
        index = min(bisect_left(self.bounds, amount), len(self.buckets) - 1)
        return (self.buckets[index], 1), (self.total, amount)


class Tally:
    """Amounts waiting to be added to metric values, in this process."""

    def __init__(self, interval: float = FLUSH_SECONDS) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._pending: dict[Value, float] = {}
        self._running = False  # this process's flusher thread and exit finalizer exist
        _live.add(self)

    def add(self, amounts: Iterable[tuple[Value, float]]) -> None:
        """Count each (value, amount): one request's counts at once, under one lock."""
        if not self._running:
            self._start()
        with self._lock:
            pending = self._pending
            for value, amount in amounts:
                pending[value] = pending.get(value, 0) + amount

    def flush(self) -> None:
        """Add everything pending to its value now."""
        with self._lock:
            pending, self._pending = self._pending, {}
        failed: Exception | None = None
        for value, amount in pending.items():
            try:
                value.inc(amount)
            except Exception as exc:  # a full disk under the folder: keep the others
                failed = exc
        if failed is not None:
            log.warning("could not add request counts to the metrics: %s", failed)

    def _start(self) -> None:
        with self._lock:
            if self._running:
                return
            self._running = True
        ref = weakref.ref(self)
        threading.Thread(target=_flush_every, args=(ref, self.interval), daemon=True,
                         name="feedserver-metrics").start()
        util.Finalize(None, _flush_if_alive, args=(ref,), exitpriority=EXIT_PRIORITY)

    def _forked(self) -> None:
        """In a new child: nothing pending (the parent counts it), a fresh lock, no
        flusher yet (threads do not survive a fork)."""
        self._lock = threading.Lock()
        self._pending = {}
        self._running = False


_live: weakref.WeakSet[Tally] = weakref.WeakSet()


def _flush_if_alive(ref: Callable[[], Tally | None]) -> None:
    tally = ref()
    if tally is not None:
        tally.flush()


def _flush_every(ref: Callable[[], Tally | None], interval: float) -> None:
    """The flusher thread: ends once its tally is gone (an app a test dropped)."""
    while True:
        time.sleep(interval)
        tally = ref()
        if tally is None:
            return
        try:
            tally.flush()
        except Exception:  # never end the thread: the next second tries again
            log.exception("flushing request counts failed")
        del tally


def _after_fork_in_child() -> None:
    for tally in list(_live):
        tally._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)

"""A web worker collects young objects per many requests, not inside each computed one;
its loader also marks it booted and wraps the app in the access log and the watchdog."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from feedserver import worker
from feedserver.access_log import AccessLog


@pytest.fixture
def thresholds() -> Iterator[None]:
    kept = gc.get_threshold()
    yield
    gc.set_threshold(*kept)


def test_a_booted_worker_collects_young_objects_every_young_allocations(
        thresholds: None, monkeypatch: pytest.MonkeyPatch) -> None:
    parents: list[int] = []
    monkeypatch.setattr(worker.lifeline, "die_with_parent", parents.append)
    monkeypatch.setattr(worker.Watchdog, "start", lambda self, interval=1.0: None)
    booted = worker.Booted(4)
    boot = worker.Boot(lambda: "the app", 12345, booted, json_lines=False)
    gc.set_threshold(700, 10, 10)
    loaded = boot.load()
    assert gc.get_threshold() == (worker.YOUNG, 10, 10)
    assert worker.YOUNG >= 10_000  # a computed answer's few thousand objects die unwalked
    assert parents == [12345]  # it dies with the main process
    assert isinstance(loaded, worker.Watchdog) and isinstance(loaded.app, AccessLog)
    assert loaded.app.app == "the app"
    import os

    assert booted.ready(os.getpid()) and not booted.ready(os.getpid() + 1)


def test_the_watchdog_ends_a_worker_whose_request_runs_past_the_timeout() -> None:
    left: list[int] = []
    seen: list[float] = []

    def slow(environ: dict[str, object], start_response: object) -> list[bytes]:
        watchdog.check(seen[0] + 31)  # what the watching thread sees 31 s later
        return [b"late"]

    watchdog = worker.Watchdog(slow, timeout=30, leave=left.append)
    import time

    seen.append(time.monotonic())
    assert watchdog({"PATH_INFO": "/stuck"}, None) == [b"late"]
    assert left == [1] and not watchdog.running
    watchdog.check(time.monotonic() + 1000)  # nothing running: nothing to end
    assert left == [1]

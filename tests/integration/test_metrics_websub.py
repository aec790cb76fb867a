"""WebSub in ``/metrics``: the hub's subscriptions and queue, and deliveries by outcome."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from feedserver.build.run import BuildReport
from feedserver.config import Settings
from feedserver.websub.deliver import Deliverer
from feedserver.websub.store import HubStore
from tests.integration.test_websub_hub import subscribe, web
from tests.unit.test_metrics import scrape, value
from tests.websub_kit import TestServer


@pytest.fixture
def built(settings: Settings, build: Callable[..., BuildReport]) -> Settings:
    assert build().published
    return replace(settings, hub_allow_private_callbacks=True)


@pytest.fixture
def subscriber() -> Iterator[TestServer]:
    with TestServer() as server:
        yield server


def test_subscriptions_queue_and_deliveries(built: Settings, subscriber: TestServer) -> None:
    client = web(built)
    store = HubStore(built.state_dir)
    deliverer = Deliverer(built, store)  # not started: the test takes each step itself
    before = scrape(client)
    assert value(before, "feedserver_websub_subscriptions") == 0
    assert subscribe(built, subscriber.url + "cb") == 202
    (intent,) = store.take_intents()
    assert deliverer.verify(intent)
    subscriber.recorder.push_status.append(500)
    assert deliverer.published(["feed.atom"]) == 1
    queued = scrape(client)
    assert value(queued, "feedserver_websub_subscriptions") == 1
    assert value(queued, "feedserver_websub_queued", kind="push") == 1
    assert value(queued, "feedserver_websub_failing") == 0
    (job,) = store.due(time.time())
    deliverer.run_job(job)  # 500: tried again later
    failing = scrape(client)
    assert value(failing, "feedserver_websub_failing") == 1
    (job,) = store.due(time.time() + 10)
    deliverer.run_job(job)  # 200
    after = scrape(client)

    def delta(outcome: str) -> float:
        name = "feedserver_websub_deliveries_total"
        return value(after, name, kind="push", outcome=outcome) - \
            value(before, name, kind="push", outcome=outcome)

    assert (delta("retry"), delta("ok"), delta("dropped")) == (1, 1, 0)
    assert value(after, "feedserver_websub_queued", kind="push") == 0
    assert len(subscriber.recorder.posts()) == 2

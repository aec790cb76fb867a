"""A web worker collects young objects per many requests, not inside each computed one."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from feedserver import serve
from feedserver.config import load_settings
from tests.conftest import ROOT


@pytest.fixture
def thresholds() -> Iterator[None]:
    kept = gc.get_threshold()
    yield
    gc.set_threshold(*kept)


def test_a_booted_worker_collects_young_objects_every_young_allocations(
        thresholds: None) -> None:
    settings = load_settings(ROOT / "config.toml")
    server = serve.FeedServer(lambda: None, serve.gunicorn_options(settings, "127.0.0.1", 0))
    gc.set_threshold(700, 10, 10)
    server.cfg.post_worker_init(object())  # gunicorn calls it once the app is loaded
    assert gc.get_threshold() == (serve.YOUNG, 10, 10)
    assert serve.YOUNG >= 10_000  # a computed answer's few thousand objects die unwalked

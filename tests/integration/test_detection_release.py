"""A one-shot build drops the language model and the gazetteer once it has parsed (its
render workers would each inherit them); a long-lived caller's build keeps them."""

from __future__ import annotations

from feedserver.build.memory import BuildMemory
from feedserver.build.run import run_build
from feedserver.config import Settings
from feedserver.parse import language
from feedserver.topics import gazetteer


def loaded() -> tuple[int, int]:
    return language._identifier.cache_info().currsize, gazetteer.index.cache_info().currsize


def test_a_scheduler_keeps_detection_loaded_and_a_one_shot_build_releases_it(
        settings: Settings) -> None:
    scheduler = run_build(settings, memory=BuildMemory.empty())  # parses every seed
    assert scheduler.articles > 0 and loaded() == (1, 1)
    assert run_build(settings).articles == scheduler.articles
    assert loaded() == (0, 0)

"""A one-shot build (``feedserver build``, ``check``, the build before ``serve``) drops
the language model and the gazetteer once it has parsed (its render workers would each
inherit them); a process that builds again keeps them."""

from __future__ import annotations

from feedserver.build.memory import BuildMemory
from feedserver.build.run import run_build
from feedserver.config import Settings
from feedserver.parse import language
from feedserver.topics import gazetteer


def loaded() -> tuple[int, int]:
    return int(language.is_loaded()), gazetteer.index.cache_info().currsize


def test_a_scheduler_keeps_detection_loaded_and_a_one_shot_build_releases_it(
        settings: Settings) -> None:
    scheduler = run_build(settings, memory=BuildMemory.empty())  # parses every seed
    assert scheduler.articles > 0 and loaded() == (1, 1)
    assert run_build(settings, one_shot=True).articles == scheduler.articles
    assert loaded() == (0, 0)


def test_a_build_in_a_process_that_builds_again_keeps_detection_loaded(
        settings: Settings) -> None:
    """Tests and tools call run_build many times: reloading the model each time cost a
    second per build."""
    run_build(settings)
    assert loaded() == (1, 1)

"""What the Pools' workers send back is held as bytes while they live.

A cold build's parent received every staged file's manifest entry and temporary names
from the workers and unpickled them as they came: about 2.2 kB of objects a file, 35-43
MiB over the pages' Pool of 10,000 articles, while the workers were alive beside it
(the build's peak).  Now they stay pickled until the Pool has ended.  These tests look
at the parent at that moment, the workers gone and nothing unpickled yet: no staged
file's entry exists as objects; then every file comes out as before (the other tests of
both Pools check their bytes; what it saves is measured in benchmarks/README.md, "The
staged files held as bytes").
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from benchmarks.corpus import generate
from feedserver.build import parallel
from feedserver.build.parallel import Executor
from feedserver.config import Settings
from feedserver.publish.output import Prepared, discard
from feedserver.render.pages import page_makers
from tests.integration.test_workers_warm import make_site, settings_for


@pytest.fixture
def corpus(tmp_path: Path) -> Settings:
    generate(tmp_path / "seeds", 120, seed=5)
    return settings_for(tmp_path / "site")


def at_pool_end(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """For each Pool the executor runs: how many staged files' entries exist as objects
    just after its workers are gone."""
    seen: list[int] = []
    real = parallel._forked_pool

    @contextmanager
    def watched(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with real(*args, **kwargs) as pool:
            yield pool
        gc.collect()
        seen.append(sum(isinstance(o, Prepared) for o in gc.get_objects()))

    monkeypatch.setattr(parallel, "_forked_pool", watched)
    return seen


def test_the_pages_shares_stay_bytes_until_the_workers_are_gone(
        corpus: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(corpus)
    out = Path(corpus.output_dir)
    out.mkdir(parents=True)
    monkeypatch.setattr(parallel, "FILES_POOLED", 1)
    monkeypatch.setattr(parallel, "FILE_RUN", 20)
    makers = page_makers(site)
    seen = at_pool_end(monkeypatch)
    staged = Executor(out, {}, 2).stage(makers)
    try:
        assert len(staged) == len(makers) > 100
        assert seen == [0]  # all of them still bytes then
    finally:
        discard(staged)


def test_the_feeds_results_stay_bytes_until_the_workers_are_gone(
        corpus: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(corpus)
    out = Path(corpus.output_dir)
    out.mkdir(parents=True)
    assert 3 * len(site.channels) > parallel.SPLIT_MAX  # a Pool's job
    seen = at_pool_end(monkeypatch)
    output = Executor(out, {}, 2, lasting=False)(site, site.channels)
    try:
        assert not output.problems and len(output.staged) >= 3 * len(site.channels)
        assert seen == [0]
    finally:
        discard(output.staged)

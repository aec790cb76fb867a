"""A big site's pages and query records are made and staged by the build's workers.

The parent hands out the page makers (:func:`feedserver.render.pages.page_makers`) in
shares; each worker renders, compresses and stages its share, and only manifest
entries come back.  The same-bytes test checks what such a build publishes; these
check what a failing disk leaves (nothing staged, the error named) and that the
shares cover every page once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.corpus import generate
from feedserver.build import parallel
from feedserver.build.parallel import Executor
from feedserver.core.errors import PublishError
from feedserver.render.pages import page_makers, render_pages
from tests.integration.test_workers_warm import make_site, settings_for


@pytest.fixture
def site_and_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Path]:
    generate(tmp_path / "seeds", 60, seed=3)
    settings = settings_for(tmp_path / "site")
    out = Path(settings.output_dir)
    out.mkdir(parents=True)
    monkeypatch.setattr(parallel, "FILES_POOLED", 1)  # a Pool even for a small site
    monkeypatch.setattr(parallel, "FILE_RUN", 9)
    return make_site(settings), out


def _temporaries(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file() and p.name.endswith(".tmp")]


def test_the_workers_stage_every_page_once_with_its_compressed_bodies(
        site_and_out: tuple[Any, Path]) -> None:
    site, out = site_and_out
    expected = {page.path: page.body for page in render_pages(site)}
    staged = Executor(out, {}, 2).stage(page_makers(site))
    assert sorted(p.path for p in staged) == sorted(expected)
    for prepared in staged:
        files = {Path(target).name: Path(tmp).read_bytes() for tmp, target in prepared.staged}
        name = Path(prepared.path).name
        assert files[name] == expected[prepared.path]
        assert set(files) >= {name} | ({name + ".gz", name + ".br"}
                                        if prepared.entry["encodings"] else set())
    parallel.discard(staged)
    assert _temporaries(out) == []


def test_a_disk_that_refuses_one_page_stages_nothing_and_says_why(
        site_and_out: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    site, out = site_and_out
    makers = page_makers(site)
    victim = makers[len(makers) // 2]().path  # in a share of its own, mid-way
    real = parallel.prepare

    def prepare(out_dir: Path, item: Any, previous: Any) -> Any:
        if item.path == victim:
            raise PublishError(f"cannot write to {out_dir}: No space left on device; "
                               "the previous output is unchanged")
        return real(out_dir, item, previous)

    monkeypatch.setattr(parallel, "prepare", prepare)  # the forked workers inherit it
    with pytest.raises(PublishError, match="No space left on device"):
        Executor(out, {}, 2).stage(makers)
    assert _temporaries(out) == []  # every share staged before or after it is undone

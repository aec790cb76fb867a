"""A build that keeps no memory packs the content and summaries it renders
(feedserver.core.packed) and publishes what a build with a kept memory (strings)
publishes, byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks.corpus import generate
from feedserver.build import articles, run
from feedserver.build.memory import BuildMemory
from feedserver.config import Settings, load_settings
from feedserver.core.packed import Packed
from tests.conftest import NOW, ROOT


def site(folder: Path, seeds: Path) -> Settings:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "config.toml", folder / "config.toml")
    return load_settings(folder / "config.toml", env={
        "FEEDSERVER_SEEDS_DIR": str(seeds), "FEEDSERVER_OUTPUT_DIR": str(folder / "out"),
        "FEEDSERVER_STATE_DIR": str(folder / "state"), "FEEDSERVER_BUILD_PROCESSES": "2"})


def published(out: Path) -> dict[str, bytes]:
    """Every file but the build's own status (it names the build's duration)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "status.json"}


def test_packed_and_string_content_publish_the_same_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seeds = tmp_path / "seeds"
    generate(seeds, 1200, seed=3)  # more than one share of PACK_SHARE
    filled: list[list[object]] = []

    def spy(lights, bodies):  # type: ignore[no-untyped-def]
        made = articles.fill_packed(lights, bodies)
        filled.append([(a.content_html, a.summary) for a in made])
        return made
    monkeypatch.setattr(run, "fill_packed", spy)

    once = site(tmp_path / "once", seeds)
    report = run.run_build(once, now=NOW)  # no memory given: kept by nobody
    assert not report.errors
    pairs = [pair for share in filled for pair in share]
    handles = [h for pair in pairs for h in pair]  # each article's content and summary
    assert len(filled) == -(-report.articles // run.PACK_SHARE) > 1
    assert len(pairs) == report.articles and all(isinstance(h, Packed) for h in handles)
    assert all(str(summary) for _, summary in pairs)
    # one buffer a share, holding the share's contents and summaries
    assert len({id(h._buffer) for h in handles}) == len(filled)
    assert all(c._buffer is s._buffer for c, s in pairs)

    filled.clear()
    kept = site(tmp_path / "kept", seeds)
    assert not run.run_build(kept, now=NOW, memory=BuildMemory.empty()).errors
    assert filled == []  # a memory kept for later builds holds strings
    a, b = published(Path(once.output_dir)), published(Path(kept.output_dir))
    assert len(a) > 3 * report.articles and a == b

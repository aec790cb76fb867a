"""A build that keeps no memory packs the content and summaries it renders
(feedserver.core.packed) and publishes what a build with a kept memory (strings)
publishes, byte for byte."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from benchmarks.corpus import generate
from feedserver.build import articles, parallel, run
from feedserver.build.memory import BuildMemory
from feedserver.build.shelf import Shipping
from feedserver.build.spill import Spill
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

    def spy(lights, bodies, packer):  # type: ignore[no-untyped-def]
        made = articles.fill_packed(lights, bodies, packer)
        filled.append([(a.content_html, a.summary) for a in made])
        return made
    monkeypatch.setattr(run, "fill_packed", spy)
    moved: list[object] = []
    maker = Shipping.maker

    def counted(self, make):  # type: ignore[no-untyped-def]
        made = maker(self, make)
        if made is not make:
            moved.append(made)
        return made
    monkeypatch.setattr(Shipping, "maker", counted)
    pools: list[int] = []
    pooled, feeds_pooled, index_file = parallel._pooled_files, parallel._pooled, run.index_file
    events: list[tuple[str, int]] = []

    def counting_pools(job, processes):  # type: ignore[no-untyped-def]
        pools.append(len(job.makers))
        events.append(("files", os.getpid()))
        return pooled(job, processes)

    def feeds(*args):  # type: ignore[no-untyped-def]
        events.append(("feeds", os.getpid()))
        return feeds_pooled(*args)

    def index(*args):  # type: ignore[no-untyped-def]
        events.append(("index", os.getpid()))
        return index_file(*args)
    monkeypatch.setattr(parallel, "_pooled_files", counting_pools)
    monkeypatch.setattr(parallel, "_pooled", feeds)
    monkeypatch.setattr(run, "index_file", index)

    once = site(tmp_path / "once", seeds)
    report = run.run_build(once, now=NOW)  # no memory given: kept by nobody
    assert not report.errors
    # Each article's page and record were made from the shelf (build/shelf.py), in one
    # Pool with the query index (no second Pool beside the first one's entries).
    assert len(moved) == 2 * report.articles
    assert len(pools) == 1 and pools[0] > 2 * report.articles
    # The index made here, once the feeds' workers are gone, before the files' fork.
    assert events == [("feeds", os.getpid()), ("index", os.getpid()), ("files", os.getpid())]
    pairs = [pair for share in filled for pair in share]
    handles = [h for pair in pairs for h in pair]  # each article's content and summary
    assert len(filled) == -(-report.articles // run.PACK_SHARE) > 1
    assert len(pairs) == report.articles and all(isinstance(h, Packed) for h in handles)
    assert all(str(summary) for _, summary in pairs)
    # spilled: one file for the build (its state folder keeps no trace of it)
    assert len({id(h._buffer) for h in handles}) == 1
    assert isinstance(handles[0]._buffer, Spill)
    assert not [p for p in Path(once.state_dir).iterdir() if "packed" in p.name]

    filled.clear()
    moved.clear()
    kept = site(tmp_path / "kept", seeds)
    assert not run.run_build(kept, now=NOW, memory=BuildMemory.empty()).errors
    assert filled == [] and moved == []  # a memory kept for later builds: objects
    a, b = published(Path(once.output_dir)), published(Path(kept.output_dir))
    assert len(a) > 3 * report.articles and a == b


def test_content_is_packed_in_memory_where_no_file_can_hold_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A state folder where the spill cannot be written (here: every write fails, as on
    a full disk) packs into buffers instead, and publishes the same bytes."""
    seeds = tmp_path / "seeds"
    generate(seeds, 120, seed=4)
    kept = site(tmp_path / "kept", seeds)
    assert not run.run_build(kept, now=NOW, memory=BuildMemory.empty()).errors
    buffers: list[object] = []

    def spy(lights, bodies, packer):  # type: ignore[no-untyped-def]
        made = articles.fill_packed(lights, bodies, packer)
        buffers.extend(a.content_html._buffer for a in made)
        return made

    def full_disk(*_: object) -> int:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(run, "fill_packed", spy)
    monkeypatch.setattr("os.pwrite", full_disk)
    once = site(tmp_path / "once", seeds)
    assert not run.run_build(once, now=NOW).errors
    assert buffers and all(type(b) is bytes for b in buffers)
    assert published(Path(once.output_dir)) == published(Path(kept.output_dir))

"""The fast paths give the bytes the straightforward path gives.

A generated corpus (the benchmark's generator, small) is built three ways:
in one process, over two worker processes, and by the pure pipeline alone
(parse everything, render every channel, no stubs, no signatures, no
workers).  Then a corpus reached through a series of incremental builds
(files added and deleted between builds) is compared with one full build of
the same final folder.  Every feed file must be byte-identical.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.corpus import generate
from feedserver.build.assemble import assemble
from feedserver.build.codeversion import render_version
from feedserver.build.render_gate import render_channels
from feedserver.build.run import parse_files, run_build
from feedserver.build.signatures import split
from feedserver.config import Settings, load_settings
from feedserver.core.records import SourceFile
from feedserver.identify.ledger import Ledger
from feedserver.publish.manifest import DELTAS, load_manifest
from tests.conftest import NOW, ROOT

FEEDS = ("feed.rss", "feed.atom", "feed.json")


def site(folder: Path, processes: int, seeds: Path) -> Settings:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "config.toml", folder / "config.toml")
    return load_settings(folder / "config.toml", env={
        "FEEDSERVER_SEEDS_DIR": str(seeds), "FEEDSERVER_OUTPUT_DIR": str(folder / "out"),
        "FEEDSERVER_STATE_DIR": str(folder / "state"),
        "FEEDSERVER_BUILD_PROCESSES": str(processes)})


def feeds(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("feed.*"))
            if p.name in FEEDS}


def etags(out: Path) -> dict[str, str]:
    """Every file's ETag but the RFC 3229 deltas': those start from the versions published
    before, which a full build in a fresh folder never saw."""
    files = load_manifest(out)["files"]
    return {path: entry["etag"] for path, entry in files.items()
            if not path.startswith(f"{DELTAS}/")}


def straightforward(settings: Settings, state: Path) -> dict[str, bytes]:
    """The pure pipeline over every file: what the optimisations must reproduce."""
    seeds = Path(settings.seeds_dir)
    sources = [SourceFile(str(p.relative_to(seeds)), p.read_bytes(), p.stat().st_mtime)
               for p in sorted(seeds.rglob("*")) if p.is_file()]
    parsed, _ = parse_files(sources, settings)
    with Ledger(state / "plain.sqlite3") as ledger:
        stubs = {path: split(item, settings)[0] for path, item in parsed.items()}
        seen = {s.path: _mtime(seeds / s.path) for s in sources}
        identities = ledger.reconcile(stubs, set(seen), seen, NOW)
    site_, _ = assemble(parsed, identities, settings, NOW, render_version())
    every = site_.feed_view()  # the channels and their archive pages
    output = render_channels(every, every.channels)
    assert not output.problems
    return {f.path: f.body for f in output.files}


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime_ns / 1e9, UTC)


def test_one_process_two_processes_and_the_plain_pipeline_agree(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    generate(seeds, 160, seed=7)
    one, two = site(tmp_path / "one", 1, seeds), site(tmp_path / "two", 2, seeds)
    first, second = run_build(one, now=NOW), run_build(two, now=NOW)
    assert not first.errors and not second.errors
    assert first.channels == second.channels > 20
    a, b = feeds(Path(one.output_dir)), feeds(Path(two.output_dir))
    subscription = [p for p in a if "archive" not in p.split("/")]  # and archive pages
    assert len(subscription) == 3 * first.channels and len(a) > len(subscription) and a == b
    assert etags(Path(one.output_dir)) == etags(Path(two.output_dir))
    assert straightforward(one, tmp_path) == a


def test_incremental_builds_reach_the_full_build_bytes(tmp_path: Path) -> None:
    pool = tmp_path / "pool"
    generate(pool, 150, seed=11)
    names = sorted(str(p.relative_to(pool)) for p in pool.rglob("*") if p.is_file())
    seeds = tmp_path / "seeds"
    steps = (names[:90], names[:130], [n for n in names[:130] if n not in names[10:30]],
             [n for n in names if n not in names[10:30]])
    stepwise = site(tmp_path / "steps", 2, seeds)
    for wanted in steps:
        for path in list(seeds.rglob("*.*")) if seeds.exists() else []:
            if str(path.relative_to(seeds)) not in wanted:
                path.unlink()
        for name in wanted:
            target = seeds / name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(pool / name, target)
        report = run_build(stepwise, now=NOW)
        assert not report.errors
    full = site(tmp_path / "full", 1, seeds)
    run_build(full, now=NOW)
    assert feeds(Path(stepwise.output_dir)) == feeds(Path(full.output_dir))
    assert etags(Path(stepwise.output_dir)) == etags(Path(full.output_dir))

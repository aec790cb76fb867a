"""What the benchmark runs in a fresh process: one cold build, or the incremental series.

``python -m benchmarks.child cold SITE`` builds SITE (seeds/, config.toml) into a
fresh out/ and state/ and prints a JSON report.  ``... incremental SITE N``
keeps one process alive, like the scheduler does (the output built first by another
process, as ``feedserver serve`` has it), and times N rounds of: one
file changed, one added, one deleted (each followed by a build told the path
that changed, as the watcher's events tell the scheduler), and one file
changed again found by a full scan (no watcher, or the periodic run),
restoring the corpus at the end.  ``--pages`` builds the whole site (HTML pages and embeds
too) instead of feeds only, which is what Hugo is asked to build.  ``--config NAME`` reads
SITE/NAME instead of SITE/config.toml.

It runs against whichever feedserver is first on the path: this checkout's, or
(``python -m benchmarks --baseline DIR``) the code before the stage packages;
:func:`api` is the one place that knows both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from feedserver.config import Settings, load_settings

from .corpus import extra_article

Build = Callable[..., Any]  # (settings, pages, memory, changed) -> BuildReport
CONFIG = ["config.toml"]


def api() -> tuple[Build, Callable[[], Any]]:
    """``(build, empty memory)`` of the feedserver on the path.

    The stage packages (``feedserver.build``: ``run_build(settings, now, memory,
    changes, pages=)``) first, else the code before the move (``feedserver.job``'s
    ``run_build(settings, render=, warm=, changed=)``).  A rename is adapted here
    and nowhere else.
    """
    try:
        from feedserver.build.run import BuildMemory, run_build
    except ImportError:
        from feedserver.job import run_build as old_build
        from feedserver.pipeline import render_channels
        from feedserver.warm import Warm

        def feeds_only(site: Any) -> Any:
            return render_channels(site, site.channels)

        def old(settings: Settings, pages: bool, warm: Any, changed: Any) -> Any:
            return old_build(settings, render=None if pages else feeds_only, warm=warm,
                             changed=changed)
        return old, Warm

    def new(settings: Settings, pages: bool, memory: Any, changed: Any) -> Any:
        return run_build(settings, None, memory, changed, pages=pages)
    return new, BuildMemory.empty


def settings_for(site: Path) -> Settings:
    return load_settings(site / CONFIG[0], env={})


def build(settings: Settings, pages: bool, warm: Any = None,
          changed: set[str] | None = None) -> Any:
    report = api()[0](settings, pages, warm, changed)
    if report.errors:
        raise SystemExit(f"build reported errors: {report.errors[:5]}")
    return report


def cold(site: Path, pages: bool) -> dict[str, object]:
    for folder in ("out", "state"):
        shutil.rmtree(site / folder, ignore_errors=True)
    settings = settings_for(site)
    started = time.perf_counter()
    report = build(settings, pages)
    seconds = time.perf_counter() - started
    feeds = sum(1 for _, _, names in os.walk(site / "out") for name in names
                if name in ("feed.rss", "feed.atom", "feed.json"))
    return {"seconds": seconds, "articles": report.articles, "channels": report.channels,
            "feeds": feeds, "files": report.files}


def newest(seeds: Path) -> Path:
    """The most recent news article: in 'all' and its topics, the costly case."""
    return max((p for p in seeds.rglob("*.txt")), key=lambda p: (p.stat().st_mtime, p.name))


def settle() -> None:
    """What the scheduler does after each build (``feedserver.build.heap``: the heap
    frozen, collected in full now and then), where the code on the path has it."""
    try:
        from feedserver.build import heap
    except ImportError:
        return
    heap.settle()


def _timed(settings: Settings, pages: bool, warm: Any,
           changed: set[str] | None = None) -> tuple[float, int]:
    """One build as the scheduler runs it, its settling of the heap included."""
    started = time.perf_counter()
    report = build(settings, pages, warm, changed)
    settle()
    return time.perf_counter() - started, report.rendered_channels


def incremental(site: Path, rounds: int, pages: bool) -> dict[str, object]:
    """The rounds in a process that starts as ``feedserver serve``'s scheduler does: the
    output built by another process (``feedserver build``, or serve's build before it
    starts), then a first build with an empty memory, untimed, that loads what it needs
    from the ledger and the manifest.  A process that built a large site cold itself
    keeps that build's scattered heap, and its one-file builds are slower than the
    scheduler's (benchmarks/README.md, "The scheduler's heap")."""
    settings = settings_for(site)
    if not Path(settings.output_dir).is_dir():  # measure() removes it first
        subprocess.run([sys.executable, "-m", "benchmarks.child", "cold", str(site),
                        "--config", CONFIG[0], *(["--pages"] if pages else [])],
                       check=True, stdout=subprocess.DEVNULL)
    warm = api()[1]()  # what the scheduler keeps between runs
    build(settings, pages, warm)  # the process is warm and the output current
    settle()
    seeds = Path(settings.seeds_dir)
    target = newest(seeds)
    original, stat = target.read_bytes(), target.stat()
    times: dict[str, list[float]] = {"noop": [], "change": [], "add": [], "delete": [],
                                     "change_scan": []}
    channels: dict[str, int] = {}
    rel = str(target.relative_to(seeds))
    try:
        for n in range(rounds):
            times["noop"].append(_timed(settings, pages, warm, set())[0])
            stamp = stat.st_mtime + 60 * (2 * n + 1)
            target.write_bytes(original + f"\nA correction, round {n}.\n".encode())
            os.utime(target, (stamp, stamp))
            # What the watcher's events tell the scheduler: the path that changed.
            times["change"].append(_record(channels, "change",
                                           _timed(settings, pages, warm, {rel})))
            added = seeds / f"zz-added-{n}.txt"
            added.write_text(extra_article(n), encoding="utf-8")
            os.utime(added, (stamp + 1, stamp + 1))
            times["add"].append(_record(channels, "add",
                                        _timed(settings, pages, warm, {added.name})))
            added.unlink()
            times["delete"].append(_record(channels, "delete",
                                           _timed(settings, pages, warm, {added.name})))
            # The same change found by a full scan (no watcher, or the periodic run).
            target.write_bytes(original + f"\nA second correction, round {n}.\n".encode())
            os.utime(target, (stamp + 60, stamp + 60))
            times["change_scan"].append(_record(channels, "change_scan",
                                                _timed(settings, pages, warm)))
    finally:
        target.write_bytes(original)
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        for stray in seeds.glob("zz-added-*.txt"):
            stray.unlink()
    return {"times": times, "channels": channels}


def _record(channels: dict[str, int], kind: str, result: tuple[float, int]) -> float:
    channels[kind] = result[1]
    return result[0]


def main(argv: list[str]) -> None:
    pages = "--pages" in argv
    args = [a for a in argv if a != "--pages"]
    if "--config" in args:
        at = args.index("--config")
        CONFIG[0] = args[at + 1]
        del args[at:at + 2]
    if args[0] == "cold":
        result = cold(Path(args[1]), pages)
    else:
        result = incremental(Path(args[1]), int(args[2]), pages)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])

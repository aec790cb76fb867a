"""The least the gate and the parse cost, against Hugo's builds of the same corpus, side by side.

Issue 18 asks for a cold 10,000-article build within 2.0x Hugo's wall time for feeds only
and 1.0x for the whole site (a 2-core machine), and for the gate to stay honest: every
byte of every published RSS and Atom document read by feedparser in the context it is
served in.  The least that asks of feedparser is each article's item read once per XML
format, inside a real envelope.  A cold feeds-only build publishes exactly that set: the
'all' channel's archive pages (RFC 5005) list every article once, as they are served.
Each round, alternating so every figure of a round sees the same machine, this times:

* Hugo's feeds-only and whole-site builds (wall);
* **the gate's floor**: feedparser reading those pages, Atom and RSS, with the gate's own
  feedparser (:func:`feedserver.render.formats.gate_parser.feedparser`, called as
  :func:`~feedserver.render.formats.rss_atom.read_back` calls it), in a fresh process;
* **the parse**: every article file read and parsed as the build's parse workers do
  (:func:`feedserver.build.sources.read_one`), in a fresh process, with the site's topic
  and language detection and without it.

A floor's wall time is its CPU time split evenly over the machine's cores (nothing does
better: this is Python, one core per process).  The floors leave out everything else a
build must do (assemble channels and archives, render, compress and write about 15,000
files, publish), so a build can only be slower than their sum.  Prints each figure's
median [min-max] and the floors against each target.

    python -m benchmarks.gate_floor [-n 10000] [--rounds 5] [--work /tmp/feedserver-bench]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import hugo
from .__main__ import HUGO_SITES, cold, prepare
from .measure import Figure, run

FORMATS = {"feed.atom": "application/atom+xml", "feed.rss": "application/rss+xml"}


def archive_pages(out: Path, filename: str) -> list[Path]:
    """The 'all' channel's archive pages in one format, oldest first."""
    found = [p for p in (out / "archive").glob(f"*/{filename}") if p.parent.name.isdigit()]
    return sorted(found, key=lambda p: int(p.parent.name))


def read_all(out: Path) -> dict[str, object]:
    """feedparser's reading of every archive page of ``out`` (in this process): its CPU
    seconds (the files read before the clock starts), and per format the entries read
    and the distinct ids among them."""
    from feedserver.render.formats.gate_parser import feedparser

    library = feedparser()
    found: dict[str, object] = {}
    cpu = 0.0
    for filename, media_type in FORMATS.items():
        bodies = [p.read_bytes() for p in archive_pages(out, filename)]
        started = time.process_time()
        parsed = [library.parse(io.BytesIO(body), response_headers={"content-type": media_type},
                                sanitize_html=False, resolve_relative_uris=False)
                  for body in bodies]
        cpu += time.process_time() - started
        if any(p.bozo for p in parsed):
            raise SystemExit(f"{out}: a {filename} archive page is not well-formed")
        ids = [e.get("id") for p in parsed for e in p.entries]
        found[filename] = {"pages": len(bodies), "entries": len(ids), "ids": len(set(ids)),
                           "bytes": sum(map(len, bodies))}
    found["cpu"] = cpu
    return found


def parse_all(config: Path, detect: bool) -> dict[str, object]:
    """Every article file of ``config``'s seeds read and parsed as a build's parse workers
    do (:func:`feedserver.build.sources.read_one`: read, hash, parse, split), in this
    process: its CPU seconds, with the site's topic and language detection (``detect``,
    the language model and gazetteer loaded before the clock starts) or without."""
    from dataclasses import replace

    from feedserver.build import scan, sources
    from feedserver.build.language_model import load
    from feedserver.config import load_settings
    from feedserver.parse import language
    from feedserver.topics import detect as topics

    settings = load_settings(config)
    if detect:
        language.warm(load)
        topics.warm()
    else:
        settings = replace(settings, detect_language=False, detect_topics=False)
    files, _ = scan.list_files(settings.seeds_dir)
    started = time.process_time()
    failed = sum(bool(sources.read_one(entry, None, settings).failure) for entry in files)
    return {"cpu": time.process_time() - started, "files": len(files), "failed": failed}


def in_child(*args: str) -> dict[str, object]:
    """This script's ``--read`` or ``--parse`` in a fresh process (nothing of this one's warm)."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.gate_floor", *args],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--size", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/feedserver-bench"))
    parser.add_argument("--read", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--parse", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-detect", dest="detect", action="store_false",
                        help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.read is not None:
        print(json.dumps(read_all(options.read)))
        return
    if options.parse is not None:
        print(json.dumps(parse_all(options.parse, options.detect)))
        return
    if not hugo.available():
        raise SystemExit("hugo is not installed")
    site = prepare(options.work, options.size, 50)
    out = site / "out-feeds"
    if not (out / "feed.atom").is_file():
        cold(site, "feeds")  # what a cold feeds-only build publishes
    cores = os.cpu_count() or 1
    walls: dict[str, list[float]] = {"feeds": [], "whole": []}
    cpu: dict[str, list[float]] = {"gate": [], "parse": [], "parse, no detection": []}
    counts: dict[str, object] = {}
    parsed: dict[str, object] = {}
    for number in range(options.rounds):
        for side, name in HUGO_SITES.items():
            walls[side].append(run(hugo.command(site / name, site / f"{name}-out")).seconds)
        counts = in_child("--read", str(out))
        for filename in FORMATS:  # every article once in each format, or no floor
            seen = counts[filename]
            if seen["ids"] != options.size or seen["entries"] != options.size:  # type: ignore[index]
                raise SystemExit(f"{out}: the archive pages of {filename} do not list each "
                                 f"of the {options.size:,} articles once: {seen}")
        cpu["gate"].append(float(counts.pop("cpu")))  # type: ignore[arg-type]
        config = str(site / "config-feeds.toml")
        parsed = in_child("--parse", config)
        cpu["parse"].append(float(parsed["cpu"]))  # type: ignore[arg-type]
        bare = in_child("--parse", config, "--no-detect")
        cpu["parse, no detection"].append(float(bare["cpu"]))  # type: ignore[arg-type]
        print(f"  round {number + 1}: Hugo feeds {walls['feeds'][-1]:.2f} s, whole "
              f"{walls['whole'][-1]:.2f} s; CPU: feedparser {cpu['gate'][-1]:.2f} s, "
              f"parse {cpu['parse'][-1]:.2f} s ({cpu['parse, no detection'][-1]:.2f} s "
              "without detection)", file=sys.stderr, flush=True)
    wall = {name: Figure.of([c / cores for c in values]) for name, values in cpu.items()}
    print(f"\n{options.size:,} articles, {cores} cores, {options.rounds} rounds "
          "(median [min-max]; a floor's wall is its CPU over the cores)\n")
    for filename, seen in counts.items():
        print(f"- {filename}: {seen['pages']} archive pages, {seen['entries']:,} entries "  # type: ignore[index]
              f"({seen['ids']:,} distinct), {seen['bytes'] / 1e6:.1f} MB")  # type: ignore[index]
    print(f"- the gate: feedparser reading each item once per XML format, "
          f"{Figure.of(cpu['gate']).show()} s CPU, {wall['gate'].show()} s wall")
    print(f"- the parse: {parsed['files']:,} files read and parsed ({parsed['failed']} "
          f"failed), {Figure.of(cpu['parse']).show()} s CPU, {wall['parse'].show()} s "
          f"wall; without topic and language detection {wall['parse, no detection'].show()}"
          " s wall\n")
    gate, both = wall["gate"].median, wall["gate"].median + wall["parse"].median
    bare = wall["gate"].median + wall["parse, no detection"].median
    print("| build | Hugo wall (s) | target (s) | gate / target | gate + parse / target "
          "| gate + parse without detection / target |")
    print("|---|---|---|---|---|---|")
    for side, times in (("feeds", 2.0), ("whole", 1.0)):
        hugo_wall = Figure.of(walls[side])
        target = hugo_wall.median * times
        print(f"| {side} ({times:.1f}x Hugo) | {hugo_wall.show()} | {target:.2f} | "
              f"{gate / target:.2f} | {both / target:.2f} | {bare / target:.2f} |")


if __name__ == "__main__":
    main()

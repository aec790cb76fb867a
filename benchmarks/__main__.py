"""``python -m benchmarks``: feedserver and Hugo build the same generated corpora, two tables.

For each size N it generates (once, seeded) a corpus under ``--work`` and, as Hugo
sites, the same articles twice: the **whole site** (HTML for home, sections, the
taxonomy list, terms and pages; RSS for home and terms; ``rssLimit`` = ``max_items``;
a minimal theme written by :mod:`benchmarks.hugo`) and **feeds only** (RSS for home
and terms, no HTML).  Then ``--repeats`` times, alternating so each pair sees the same
machine load:

* ``feedserver build`` (a new process over a fresh state and output folder: what a
  user runs) with the shipped config, then Hugo's whole site;
* ``feedserver build`` with ``pages = false`` (feeds, OPML, catalog, embeds), then
  Hugo's feeds only.

Each cell is the median [min-max] of wall time, CPU (user + system of the process
tree) and peak memory of all processes (sum of PSS and of RSS over the tree, sampled;
see :mod:`benchmarks.measure`); the ratio is feedserver / Hugo of the medians.  Then
one long-lived process (as the scheduler runs) times the whole-site rebuild after one
file is changed, added and deleted, as a share of the cold build.  ``--large`` adds
the 50,000-article corpus (no Hugo there): cold whole-site build, the one-file change
as a share of it, and cold 50k / cold 10k.

Last, the serving table (:mod:`benchmarks.serve_bench`: nginx, gunicorn as shipped
before issue 18, gunicorn with the fast path and ``feedserver serve`` (granian) over one
3,000-article output,
``wrk`` alternating the servers; ``--serving-rounds``, ``--serving-duration``), when
``wrk`` and ``nginx`` are installed; ``--no-serving`` skips it.

With ``--baseline DIR`` it measures the code in DIR against this checkout instead
(no Hugo): see :mod:`benchmarks.sidebyside`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import hugo, serve_bench, sidebyside
from .corpus import generate
from .measure import Figure, Run, run

ROOT = Path(__file__).resolve().parent.parent
SIDES = ("whole", "feeds")  # feedserver's configs: config.toml, config-feeds.toml
CONFIGS = {"whole": "config.toml", "feeds": "config-feeds.toml"}
HUGO_SITES = {"whole": "hugo-whole", "feeds": "hugo-matched"}
@dataclass
class Row:
    """Everything measured for one corpus size."""

    size: int
    ours: dict[str, list[Run]] = field(default_factory=lambda: {s: [] for s in SIDES})
    hugo: dict[str, list[Run]] = field(default_factory=lambda: {s: [] for s in SIDES})
    # One more run of each, untimed, that samples PSS (measure.py: the sampling slows it).
    memory: dict[str, Run] = field(default_factory=dict)
    report: dict[str, str] = field(default_factory=dict)
    incremental: dict[str, list[float]] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=dict)


def prepare(work: Path, size: int, max_items: int, with_hugo: bool = True) -> Path:
    """The corpus folder for ``size`` (generated once) with its configs and Hugo sites."""
    site = work / f"n{size}"
    marker = site / "generated.json"
    if not marker.exists() or json.loads(marker.read_text())["size"] != size:
        shutil.rmtree(site, ignore_errors=True)
        generate(site / "seeds", size, seed=1)
        marker.write_text(json.dumps({"size": size}))
    for side, name in HUGO_SITES.items():
        if with_hugo and not (site / name / "hugo.toml").exists():
            hugo.make_site(site / "seeds", site / name, max_items, whole=side == "whole")
    config = (ROOT / "config.toml").read_text(encoding="utf-8")
    for key, value in (("seeds_dir", "seeds"), ("output_dir", "out"), ("state_dir", "state")):
        config = re.sub(rf"^{key} = .*$", f'{key} = "{value}"', config, flags=re.MULTILINE)
    (site / CONFIGS["whole"]).write_text(config, encoding="utf-8")
    feeds = re.sub(r'^(output_dir|state_dir) = "(\w+)"$', r'\1 = "\2-feeds"', config,
                   flags=re.MULTILINE)
    (site / CONFIGS["feeds"]).write_text("pages = false\n" + feeds, encoding="utf-8")
    return site


def environment() -> dict[str, str]:
    """This environment without ``FEEDSERVER_*`` (the configs say everything)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}


def cold(site: Path, side: str, pss: bool = False) -> Run:
    """``feedserver build`` of one config in a new process, over fresh state and output
    (``pss``: the memory run, see :class:`Row`)."""
    suffix = "" if side == "whole" else "-feeds"
    for folder in (f"out{suffix}", f"state{suffix}"):
        shutil.rmtree(site / folder, ignore_errors=True)
    return run([sys.executable, "-m", "feedserver", "build", "--config", CONFIGS[side]],
               env=environment(), cwd=site, pss=pss)


def child(*args: str) -> Run:
    return run([sys.executable, "-m", "benchmarks.child", *args], env=environment())


def result(measured: Run) -> dict[str, object]:
    line = next(x for x in measured.output.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def files_of(out: Path) -> str:
    """What a build published: HTML pages and feed files."""
    html = feeds = 0
    for _, _, names in os.walk(out):
        html += sum(name.endswith(".html") for name in names)
        feeds += sum(name.endswith((".rss", ".atom", ".json", ".xml")) for name in names)
    return f"{html:,} HTML, {feeds:,} feeds"


def note(label: str, measured: Run) -> Run:
    """Say how one run went as soon as it is over (a long run's tables come at the end)."""
    pss = "" if measured.pss_mib is None else f"PSS {measured.pss_mib:.0f} / "
    print(f"    {label}: {measured.seconds:.1f} s wall, {measured.cpu:.1f} s CPU, "
          f"peak {pss}RSS {measured.rss_mib:.0f} MiB", file=sys.stderr, flush=True)
    return measured


def measure(site: Path, size: int, options: argparse.Namespace, repeats: int,
            with_hugo: bool) -> Row:
    row = Row(size)
    sides = SIDES if with_hugo or not options.large else ("whole",)
    for repeat in range(repeats):
        print(f"  N={size:,} run {repeat + 1}/{repeats}", file=sys.stderr, flush=True)
        for side in sides:
            row.ours[side].append(note(f"feedserver {side}", cold(site, side)))
            row.report[side] = files_of(site / ("out" if side == "whole" else "out-feeds"))
            if with_hugo:
                name = HUGO_SITES[side]
                row.hugo[side].append(note(f"Hugo {side}", run(
                    hugo.command(site / name, site / f"{name}-out"))))
                row.report[f"hugo-{side}"] = files_of(site / f"{name}-out")
    for side in sides:  # the PSS figures, from runs whose time is not a figure
        row.memory[side] = note(f"feedserver {side} (memory run)", cold(site, side, True))
        if with_hugo:
            name = HUGO_SITES[side]
            row.memory[f"hugo-{side}"] = note(f"Hugo {side} (memory run)", run(
                hugo.command(site / name, site / f"{name}-out"), pss=True))
    if options.rounds:
        for folder in ("out", "state"):  # the child's first build makes its own
            shutil.rmtree(site / folder, ignore_errors=True)
        found = result(child("incremental", str(site), str(options.rounds), "--pages"))
        row.incremental = found["times"]  # type: ignore[assignment]
        row.channels = found["channels"]  # type: ignore[assignment]
    return row


def seconds(runs: list[Run]) -> Figure:
    return Figure.of([r.seconds for r in runs])


def _cells(runs: list[Run], memory: Run | None) -> list[str]:
    """Wall, CPU and RSS of the timed runs; PSS of the memory run."""
    if not runs:
        return ["-"] * 4
    pss = "-" if memory is None or memory.pss_mib is None else f"{memory.pss_mib:.0f}"
    return [seconds(runs).show(), Figure.of([r.cpu for r in runs]).show(1), pss,
            Figure.of([r.rss_mib for r in runs]).show(0)]


def table(rows: list[Row], side: str) -> str:
    """One table: feedserver's ``side`` build against Hugo's, per corpus size."""
    what = {"whole": "Whole site: `feedserver build` vs Hugo's whole site",
            "feeds": "Feeds only: `feedserver build` with `pages = false` vs Hugo's feeds only"}
    head = ("| N | feedserver wall (s) | CPU (s) | peak PSS (MiB) | peak RSS (MiB) | files | "
            "Hugo wall (s) | CPU (s) | peak PSS (MiB) | peak RSS (MiB) | files | "
            "wall ratio | CPU ratio | RSS ratio |")
    lines = [f"{what[side]} (median [min-max])", "", head,
             "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        ours, theirs = row.ours[side], row.hugo[side]
        if not ours:
            continue
        cells = [f"{row.size:,}", *_cells(ours, row.memory.get(side)),
                 row.report.get(side, "?"),
                 *_cells(theirs, row.memory.get(f"hugo-{side}")),
                 row.report.get(f"hugo-{side}", "-")]
        if theirs:
            for get in (lambda r: r.seconds, lambda r: r.cpu, lambda r: r.rss_mib):
                a = Figure.of([get(r) for r in ours]).median
                b = Figure.of([get(r) for r in theirs]).median
                cells.append(f"{a / b:.2f}")
        else:
            cells += ["-"] * 3
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def incremental_table(rows: list[Row]) -> str:
    """The whole-site rebuilds of a long-lived process, as shares of the cold build."""
    head = "| N | one file changed | added | deleted | changed, full scan |"
    lines = ["Incremental, whole site, one long-lived process (median [min-max] over rounds; "
             "% of the cold `feedserver build`)", "", head, "|---|---|---|---|---|"]
    for row in rows:
        if not row.incremental or not row.ours["whole"]:
            continue
        base = seconds(row.ours["whole"]).median
        cells = [f"{row.size:,}"]
        for kind in ("change", "add", "delete", "change_scan"):
            took = Figure.of(row.incremental[kind])
            cells.append(f"{took.show(3)} s ({100 * took.median / base:.2f}%, "
                         f"{row.channels.get(kind, '?')} ch.)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scaling(rows: list[Row]) -> str:
    by_size = {row.size: seconds(row.ours["whole"]).median for row in rows if row.ours["whole"]}
    if 10_000 in by_size and 50_000 in by_size:
        return (f"Cold whole-site build, 50,000 / 10,000: "
                f"{by_size[50_000] / by_size[10_000]:.2f}x (linear would be 5x)")
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("-n", "--size", type=int, action="append", dest="sizes",
                        help="corpus size (repeatable; default 1000 and 10000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="incremental rounds (change, add, delete); 0 to skip")
    parser.add_argument("--work", type=Path, default=Path("/tmp/feedserver-bench"),
                        help="where corpora and outputs go (default /tmp/feedserver-bench)")
    parser.add_argument("--no-hugo", dest="hugo", action="store_false", help="skip Hugo")
    parser.add_argument("--large", action="store_true",
                        help="also the 50,000-article corpus (whole site, no Hugo; minutes): "
                             "one-file change as a share of its cold build, 50k / 10k")
    parser.add_argument("--large-repeats", type=int, default=1,
                        help="cold builds of the 50,000 corpus (default 1)")
    parser.add_argument("--max-items", type=int, default=50, help=argparse.SUPPRESS)
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="a checkout of older code: measure it (before) against this one "
                             "(after), side by side; no Hugo")
    parser.add_argument("--serve-seconds", type=float, default=3.0,
                        help="with --baseline: seconds of load per serving case (0 to skip)")
    parser.add_argument("--connections", type=int, default=8,
                        help="with --baseline: wrk connections")
    parser.add_argument("--no-serving", dest="serving", action="store_false",
                        help="skip the serving table (nginx / gunicorn / gunicorn + fast / serve)")
    parser.add_argument("--serving-rounds", type=int, default=3,
                        help="rounds of the serving table (default 3)")
    parser.add_argument("--serving-duration", type=int, default=4,
                        help="seconds per wrk run of the serving table (default 4)")
    options = parser.parse_args()
    if options.baseline is not None:
        for size in options.sizes or [1_000, 10_000]:
            print(f"N = {size:,} articles, {options.repeats} repeats, "
                  f"{options.rounds} incremental rounds each")
            sidebyside.main(options, prepare(options.work, size, options.max_items, False))
        return
    with_hugo = options.hugo and hugo.available()
    sizes = options.sizes or ([10_000] if options.large else [1_000, 10_000])
    rows = []
    for size in sizes:
        site = prepare(options.work, size, options.max_items, with_hugo)
        rows.append(measure(site, size, options, options.repeats, with_hugo))
    if options.large:
        site = prepare(options.work, 50_000, options.max_items, False)
        rows.append(measure(site, 50_000, options, options.large_repeats, False))
    for side in SIDES:
        print(table(rows, side) + "\n")
    print(incremental_table(rows))
    if line := scaling(rows):
        print("\n" + line)
    if options.hugo and not hugo.available():
        print("hugo is not installed: apt-get install hugo")
    if options.serving:
        if shutil.which("wrk") is None or shutil.which("nginx") is None:
            print("\nThe serving table needs wrk and nginx: apt-get install wrk nginx-light")
        else:
            print("\nServing the all-feed of a 3,000-article site "
                  "(python -m benchmarks.serve_bench):")
            sys.stdout.flush()
            serve_bench.main(["--rounds", str(options.serving_rounds),
                              "--duration", str(options.serving_duration)])


if __name__ == "__main__":
    main()

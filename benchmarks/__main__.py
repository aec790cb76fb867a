"""``python -m benchmarks``: build generated corpora with feedserver and Hugo, print one table.

For each size N it generates (once, seeded) a corpus under ``--work``, then
``--repeats`` times, interleaved so both suffer the same machine load: a cold
feedserver build (fresh state and output, a new process), a Hugo build with
the same number of items per feed, and a Hugo build with its defaults (every
item in every feed).  Then one long-lived process (as the scheduler runs)
times the rebuild after one file is changed, added and deleted.  Each figure
is the median of the runs, with [min-max].
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import hugo
from .corpus import generate
from .measure import Figure, Run, run

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    """Everything measured for one corpus size."""

    size: int
    cold: list[Run] = field(default_factory=list)
    hugo_matched: list[Run] = field(default_factory=list)
    hugo_default: list[Run] = field(default_factory=list)
    report: dict[str, object] = field(default_factory=dict)
    incremental: dict[str, list[float]] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=dict)


def prepare(work: Path, size: int, max_items: int) -> Path:
    """The corpus folder for ``size`` (generated once) with its config and Hugo sites."""
    site = work / f"n{size}"
    marker = site / "generated.json"
    if not marker.exists() or json.loads(marker.read_text())["size"] != size:
        shutil.rmtree(site, ignore_errors=True)
        generate(site / "seeds", size, seed=1)
        hugo.make_site(site / "seeds", site / "hugo-matched", max_items)
        hugo.make_site(site / "seeds", site / "hugo-default", -1)
        marker.write_text(json.dumps({"size": size}))
    config = (ROOT / "config.toml").read_text(encoding="utf-8")
    for key, value in (("seeds_dir", "seeds"), ("output_dir", "out"), ("state_dir", "state")):
        config = re.sub(rf"^{key} = .*$", f'{key} = "{value}"', config, flags=re.MULTILINE)
    (site / "config.toml").write_text(config, encoding="utf-8")
    return site


def child(*args: str) -> Run:
    return run([sys.executable, "-m", "benchmarks.child", *args])


def result(measured: Run) -> dict[str, object]:
    line = next(x for x in measured.output.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def measure(site: Path, size: int, options: argparse.Namespace) -> Row:
    row = Row(size)
    extra = ["--pages"] if options.pages else []
    for repeat in range(options.repeats):
        print(f"  N={size:,} run {repeat + 1}/{options.repeats}", file=sys.stderr, flush=True)
        row.cold.append(child("cold", str(site), *extra))
        row.report = result(row.cold[-1])
        if options.hugo and hugo.available():
            for name, runs in (("hugo-matched", row.hugo_matched),
                               ("hugo-default", row.hugo_default)):
                runs.append(run(hugo.command(site / name, site / f"{name}-out")))
    if options.rounds:
        found = result(child("incremental", str(site), str(options.rounds), *extra))
        row.incremental = found["times"]  # type: ignore[assignment]
        row.channels = found["channels"]  # type: ignore[assignment]
    return row


def seconds(runs: list[Run]) -> Figure:
    return Figure.of([r.seconds for r in runs])


def table(rows: list[Row]) -> str:
    head = ("| N | feedserver cold build (s) | CPU (s) | articles/s | peak memory PSS / RSS "
            "(MiB) | feed files | Hugo, same items (s) | CPU (s) | ratio | Hugo, defaults (s) | "
            "CPU (s) | ratio | Hugo peak RSS (MiB) | one file changed | added | deleted | "
            "changed, full scan |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        cold = seconds(row.cold)
        cells = [f"{row.size:,}", cold.show(), Figure.of([r.cpu for r in row.cold]).show(1),
                 f"{row.size / cold.median:,.0f}",
                 f"{Figure.of([r.pss_mib for r in row.cold]).show(0)} / "
                 f"{Figure.of([r.rss_mib for r in row.cold]).show(0)}",
                 str(row.report.get("feeds", "?"))]
        for runs in (row.hugo_matched, row.hugo_default):
            if runs:
                theirs = seconds(runs)
                cells += [theirs.show(), Figure.of([r.cpu for r in runs]).show(1),
                          f"{cold.median / theirs.median:.2f}"]
            else:
                cells += ["-", "-", "-"]
        every = row.hugo_matched + row.hugo_default
        cells.append(Figure.of([r.rss_mib for r in every]).show(0) if every else "-")
        for kind in ("change", "add", "delete", "change_scan"):
            times = row.incremental.get(kind)
            if times:
                took = Figure.of(times)
                cells.append(f"{took.show(3)} s ({100 * took.median / cold.median:.2f}%, "
                             f"{row.channels.get(kind, '?')} ch.)")
            else:
                cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scaling(rows: list[Row]) -> str:
    by_size = {row.size: seconds(row.cold).median for row in rows}
    if 10_000 in by_size and 50_000 in by_size:
        return (f"50,000 / 10,000 cold build time: "
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
    parser.add_argument("--pages", action="store_true",
                        help="build the whole site (HTML pages too), not feeds only")
    parser.add_argument("--max-items", type=int, default=50, help=argparse.SUPPRESS)
    options = parser.parse_args()
    rows = []
    for size in options.sizes or [1_000, 10_000]:
        site = prepare(options.work, size, options.max_items)
        rows.append(measure(site, size, options))
    print(table(rows))
    if line := scaling(rows):
        print(line)
    if options.hugo and not hugo.available():
        print("hugo is not installed: apt-get install hugo")


if __name__ == "__main__":
    main()

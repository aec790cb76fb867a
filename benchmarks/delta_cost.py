"""``python -m benchmarks.delta_cost SITE --baseline DIR [--rounds N]``: what RFC 3229 deltas
(:mod:`feedserver.build.deltas`) cost a one-file ``feedserver build``, the build a watched
change runs.

SITE holds a corpus (``seeds/`` and ``config.toml``, such as ``python -m benchmarks``
leaves in ``n1000``; use a copy). Three sides, each with a seeds folder, state and
output of its own: ``before`` (the code in DIR), ``after`` (this checkout) and ``off``
(this checkout with ``delta_history = 0``). Each side is built cold once, then edited
and built ``delta_history`` times (untimed: a feed's history of versions is full, as on a
site that has run for a while), then ``--rounds`` times more, timed, the sides
alternating in every round so that all see the same machine load; every round makes the
same edit (one article's text) on every side. Prints each run, then the medians of wall
time and CPU of the process tree (:mod:`benchmarks.measure`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

from .alternate import ROOT, SIDES, configure
from .measure import run

HISTORY = 8  # delta_history's default: the versions each feed keeps


def build(site: Path, side: str, code: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
    env["PYTHONPATH"] = str(code)
    done = run([sys.executable, "-m", "feedserver", "build", "--config",
                f"config-{side}.toml"], env=env, cwd=site)
    return {"wall": done.seconds, "cpu": done.cpu}


def edit(seeds: Path, step: int) -> None:
    """One article's text changed (the same one on every side), its mtime moved on."""
    files = sorted(p for p in seeds.rglob("*") if p.is_file() and p.suffix in (".md", ".txt"))
    victim = files[(step * 7919) % len(files)]
    with victim.open("a", encoding="utf-8") as handle:
        handle.write(f"\n\nCorrection {step}: a figure in this report was updated.\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    site: Path = args.site
    code = {"before": args.baseline.resolve(), "after": ROOT, "off": ROOT}
    for side in SIDES:
        for folder in (f"out-{side}", f"state-{side}", f"seeds-{side}"):
            shutil.rmtree(site / folder, ignore_errors=True)
        shutil.copytree(site / "seeds", site / f"seeds-{side}")
        history = "delta_history = 0\n" if side == "off" else ""
        configure(site, side, f'seeds_dir = "seeds-{side}"\n{history}',
                  drop=("seeds_dir", "delta_history"))
        build(site, side, code[side])
        for step in range(HISTORY):
            edit(site / f"seeds-{side}", step)
            build(site, side, code[side])
    rows: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    for round_ in range(args.rounds):
        for side in SIDES if round_ % 2 == 0 else SIDES[::-1]:
            edit(site / f"seeds-{side}", HISTORY + round_)
            row = build(site, side, code[side])
            rows[side].append(row)
            print(side, {k: round(v, 2) for k, v in row.items()}, flush=True)
    base = {k: statistics.median(r[k] for r in rows["off"]) for k in ("wall", "cpu")}
    for side, found in rows.items():
        medians = {k: statistics.median(r[k] for r in found) for k in ("wall", "cpu")}
        print(side, "medians:", {k: round(v, 2) for k, v in medians.items()},
              "deltas cost (vs off):", {k: round(medians[k] - base[k], 2) for k in medians})
    return 0


if __name__ == "__main__":
    sys.exit(main())

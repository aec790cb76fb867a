"""``python -m benchmarks.readings_bench SITE --baseline DIR [--rounds N] [--upgrades N]``:
what ``feedserver build`` costs in a new process after one edit, and after a new version
of the renderers, for the code in DIR (``before``) and this checkout (``after``).

Written for the readings store (``feedserver/publish/readings_store.py``): a process that
builds reads feedparser's readings of unchanged items back from ``<state_dir>`` instead
of having feedparser read them again.  Any two versions of the build compare the same
way.

SITE is a built site (``config.toml`` naming ``seeds``, ``out`` and ``state`` beside it,
as ``python -m benchmarks`` leaves its corpora).  The script works in ``SITE.readings``:
a copy of the site for each side (a side's builds change its own state and output only),
and a copy of each side's ``feedserver`` package, so the upgrade rounds can change the
code without touching either checkout.  Each side's copy is first settled by a build of
its own code (the other code's signatures differ: every channel is rendered once).

* **edit** rounds: a sentence is appended to one article of each copy, then each side
  runs ``python -m feedserver build`` (the order alternating by round);
* **upgrade** rounds: a comment is appended to each side's ``render/site.py``, which
  changes the renderers' version and so every channel's signature, and each side builds
  again (every channel re-rendered; no item's bytes change).

Prints each build (the build's own seconds, the process's wall and CPU seconds), then
medians with min and max, and after / before.  The settling build has filled the store
(it renders every channel), so every round counts.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .alternate import ROOT

SIDES = ("before", "after")
ARTICLE_PICK = 0.5  # which article is edited: the one halfway through the sorted seeds
PUBLISHED = re.compile(r" in ([0-9.]+)s$", re.M)


def build(site: Path, code: Path) -> tuple[float, float, float]:
    """One ``feedserver build`` of ``site`` with the package under ``code``: (the build's
    own seconds, the process's wall seconds, its CPU seconds)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
    env["PYTHONPATH"] = str(code)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "feedserver", "build", "--config",
                           "config.toml"], cwd=site, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"build of {site} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    found = PUBLISHED.search(done.stdout + done.stderr)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return (float(found[1]) if found else wall), wall, cpu


def edit(site: Path, name: str, round_: int) -> None:
    with (site / "seeds" / name).open("a", encoding="utf-8") as article:
        article.write(f"\nA sentence added in round {round_}.\n")


def upgrade(code: Path, round_: int) -> None:
    with (code / "feedserver" / "render" / "site.py").open("a", encoding="utf-8") as module:
        module.write(f"# upgrade {round_}\n")


def summary(label: str, rows: dict[str, list[tuple[float, float, float]]]) -> None:
    print(f"\n{label}, seconds, median (min-max):")
    for what, index in (("build", 0), ("process wall", 1), ("process CPU", 2)):
        medians = {}
        for side in SIDES:
            values = [row[index] for row in rows[side]]
            medians[side] = statistics.median(values)
            print(f"  {what:12s} {side:6s} {medians[side]:8.3f} "
                  f"({min(values):.3f}-{max(values):.3f})")
        print(f"  {what:12s} after/before {medians['after'] / medians['before']:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=6, help="edit rounds")
    parser.add_argument("--upgrades", type=int, default=2, help="upgrade rounds (0: none)")
    args = parser.parse_args()
    work = args.site.with_name(args.site.name + ".readings")
    shutil.rmtree(work, ignore_errors=True)
    sites, codes = {}, {}
    for side, checkout in zip(SIDES, (args.baseline, ROOT), strict=True):
        sites[side] = work / side / "site"
        codes[side] = work / side / "code"
        shutil.copytree(args.site, sites[side], symlinks=True)
        shutil.copytree(checkout / "feedserver", codes[side] / "feedserver",
                        ignore=shutil.ignore_patterns("__pycache__"))
        print(f"{side}: settling {sites[side]} with {checkout}: "
              f"{build(sites[side], codes[side])[0]:.2f} s", flush=True)
    articles = sorted(p.name for p in (sites["after"] / "seeds").iterdir() if p.is_file())
    name = articles[int(len(articles) * ARTICLE_PICK)]
    edits: dict[str, list[tuple[float, float, float]]] = {side: [] for side in SIDES}
    for round_ in range(1, args.rounds + 1):
        order = SIDES if round_ % 2 else SIDES[::-1]
        for side in order:
            edit(sites[side], name, round_)
            edits[side].append(build(sites[side], codes[side]))
            print(f"edit {round_} {side}: build {edits[side][-1][0]:.3f} s, "
                  f"wall {edits[side][-1][1]:.3f} s, CPU {edits[side][-1][2]:.3f} s",
                  flush=True)
    summary(f"one edit of {name}, then `feedserver build`", edits)
    upgrades: dict[str, list[tuple[float, float, float]]] = {side: [] for side in SIDES}
    for round_ in range(1, args.upgrades + 1):
        order = SIDES if round_ % 2 else SIDES[::-1]
        for side in order:
            upgrade(codes[side], round_)
            upgrades[side].append(build(sites[side], codes[side]))
            print(f"upgrade {round_} {side}: build {upgrades[side][-1][0]:.3f} s, "
                  f"wall {upgrades[side][-1][1]:.3f} s, CPU {upgrades[side][-1][2]:.3f} s",
                  flush=True)
    if args.upgrades:
        summary("a new renderer version (every channel re-rendered)", upgrades)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

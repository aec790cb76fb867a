"""Cold ``feedserver build`` of one corpus by several sides (code checkouts or switches),
alternating in every round so that all see the same machine load (the cost scripts:
:mod:`benchmarks.detection_cost`, :mod:`benchmarks.archive_cost`)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
from pathlib import Path

from .measure import run

ROOT = Path(__file__).resolve().parent.parent
SIDES = ("before", "after", "off")


def configure(site: Path, side: str, top: str = "", drop: tuple[str, ...] = ()) -> None:
    """``config-<side>.toml``: the corpus's config with the side's folders, without the
    ``drop`` keys and with ``top`` (top-level keys go before the first table) first."""
    config = (site / "config.toml").read_text(encoding="utf-8")
    for key, value in (("output_dir", f"out-{side}"), ("state_dir", f"state-{side}")):
        config = re.sub(rf"^{key} = .*$", f'{key} = "{value}"', config, flags=re.MULTILINE)
    for key in drop:
        config = re.sub(rf"^{key} = .*\n", "", config, flags=re.MULTILINE)
    (site / f"config-{side}.toml").write_text(top + config, encoding="utf-8")


def arguments(doc: str) -> argparse.Namespace:
    """SITE, --baseline DIR (the 'before' checkout) and --pairs N."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--pairs", type=int, default=3)
    return parser.parse_args()


def alternate(site: Path, baseline: Path, pairs: int) -> int:
    """Build with each side's config (``before`` with the baseline's code, the others with
    this checkout's) in fresh folders; print every run, then the medians."""
    code = {"before": baseline.resolve(), "after": ROOT, "off": ROOT}
    rows: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    for round_ in range(pairs):
        for side in SIDES if round_ % 2 == 0 else SIDES[::-1]:
            for folder in (f"out-{side}", f"state-{side}"):
                shutil.rmtree(site / folder, ignore_errors=True)
            env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
            env["PYTHONPATH"] = str(code[side])
            done = run([sys.executable, "-m", "feedserver", "build", "--config",
                        f"config-{side}.toml"], env=env, cwd=site)
            row = {"wall": done.seconds, "cpu": done.cpu, "rss": done.rss_mib}
            rows[side].append(row)
            print(side, {k: round(v, 1) for k, v in row.items()}, flush=True)
    for side, found in rows.items():
        print(side, "medians:", {k: round(statistics.median(r[k] for r in found), 1)
                                 for k in ("wall", "cpu", "rss")})
    return 0

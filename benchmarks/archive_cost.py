"""``python -m benchmarks.archive_cost SITE --baseline DIR [--pairs N]``: what full history
(RFC 5005 archive pages, :mod:`feedserver.build.archives`) costs a cold ``feedserver build``.

SITE holds a corpus (``seeds/`` and ``config.toml``, such as ``python -m benchmarks``
leaves in ``n1000``; use a copy). Three sides, alternating in every round so that all
see the same machine load: ``before`` (the code in DIR, a checkout of feedserver without
archives), ``after`` (this checkout, ``archive_size`` 50) and ``off`` (this checkout with
``archive_size = 0``). Each a fresh state and
output folder of its own; wall time, CPU of the process tree and peak PSS / RSS sums
(:mod:`benchmarks.measure`). Prints every run, then the medians.
"""

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


def configure(site: Path, side: str) -> None:
    """``config-<side>.toml``: the corpus's config with the side's folders (and switches)."""
    config = (site / "config.toml").read_text(encoding="utf-8")
    for key, value in (("output_dir", f"out-{side}"), ("state_dir", f"state-{side}")):
        config = re.sub(rf"^{key} = .*$", f'{key} = "{value}"', config, flags=re.MULTILINE)
    # The baseline knows no archive_size; 'after' takes its default (50).
    config = re.sub(r"^archive_size = .*\n", "", config, flags=re.MULTILINE)
    if side == "off":  # top-level keys go before the first table
        config = "archive_size = 0\n" + config
    (site / f"config-{side}.toml").write_text(config, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    code = {"before": args.baseline.resolve(), "after": ROOT, "off": ROOT}
    rows: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    for side in SIDES:
        configure(args.site, side)
    for round_ in range(args.pairs):
        for side in SIDES if round_ % 2 == 0 else SIDES[::-1]:
            for folder in (f"out-{side}", f"state-{side}"):
                shutil.rmtree(args.site / folder, ignore_errors=True)
            env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
            env["PYTHONPATH"] = str(code[side])
            done = run([sys.executable, "-m", "feedserver", "build", "--config",
                        f"config-{side}.toml"], env=env, cwd=args.site)
            row = {"wall": done.seconds, "cpu": done.cpu, "pss": done.pss_mib,
                   "rss": done.rss_mib}
            rows[side].append(row)
            print(side, {k: round(v, 1) for k, v in row.items()}, flush=True)
    for side, found in rows.items():
        print(side, "medians:", {k: round(statistics.median(r[k] for r in found), 1)
                                 for k in ("wall", "cpu", "pss", "rss")})
    return 0


if __name__ == "__main__":
    sys.exit(main())

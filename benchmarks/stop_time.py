"""``python -m benchmarks.stop_time SITE --baseline DIR [--rounds N] [--workers N]``: how long
``feedserver serve`` takes to end after SIGTERM (a deploy, systemd, a Procfile runner) and
after SIGINT (Ctrl-C), for the code in DIR (``before``) and this checkout (``after``).

SITE holds ``seeds/`` and ``config.toml`` (the bundled site will do: copy this folder's).
Each side serves on a port of its own from its own state and output; the first start of a
side builds (as a first ``serve`` does), so the workers are forks of a master that built.
Every round starts each side, waits for ``/healthz`` and half a second more, sends the
signal and times until the master has exited, the sides and the signals alternating so
that all see the same machine load. Prints each stop, then medians with min and max.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .alternate import ROOT, configure

SIDES = ("before", "after")
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_once(site: Path, side: str, code: Path, port: int, sig: signal.Signals,
              workers: int) -> float:
    """Start ``feedserver serve``, wait until it answers, stop it with ``sig``: seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
    env["PYTHONPATH"] = str(code)
    process = subprocess.Popen(
        [sys.executable, "-m", "feedserver", "serve", "--config", f"config-{side}.toml",
         "--port", str(port), "--workers", str(workers)],
        cwd=site, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                if process.poll() is not None:
                    raise SystemExit(f"{side}: serve exited ({process.returncode})") from None
                time.sleep(0.05)
        time.sleep(0.5)
        started = time.monotonic()
        process.send_signal(sig)
        process.wait(timeout=60)
        return time.monotonic() - started
    finally:
        if process.poll() is None:  # only the process this benchmark started
            process.kill()
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    site: Path = args.site
    code = {"before": args.baseline.resolve(), "after": ROOT}
    ports = {"before": 18761, "after": 18762}
    for side in SIDES:
        for folder in (f"out-{side}", f"state-{side}"):
            shutil.rmtree(site / folder, ignore_errors=True)
        configure(site, side)
    seconds: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds):
        for sig in SIGNALS:
            for side in SIDES if round_ % 2 == 0 else reversed(SIDES):
                took = stop_once(site, side, code[side], ports[side], sig, args.workers)
                seconds.setdefault((side, sig.name), []).append(took)
                print(f"round {round_ + 1} {side:6} {sig.name:7} {took:.2f} s", flush=True)
    print(f"\nseconds from the signal to the master's exit, {args.workers} workers, "
          "median (min-max):")
    for sig in SIGNALS:
        medians = {}
        for side in SIDES:
            values = seconds[(side, sig.name)]
            medians[side] = statistics.median(values)
            print(f"  {sig.name:7} {side:6} {medians[side]:.2f} "
                  f"({min(values):.2f}-{max(values):.2f})")
        print(f"  {sig.name:7} after/before {medians['after'] / medians['before']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Change-to-served latency: a file saved in seeds/ until serve answers with it.

``python -m benchmarks.watch_latency [--articles N] [--rounds R] [--workers W]
[--watch] [--code DIR]``

Starts ``feedserver serve`` (W web workers, file-system events on,
``refresh_interval`` 30 s so the interval scan cannot help) on a generated
corpus of N articles (0: the bundled seeds/), then R times: write a new
article, and poll ``/feed.json`` on fresh connections every 20 ms until its
title is there.  Prints the latency figures, the scheduler's build times for
those changes (from its log), and how many builds ran in how many processes.

``--watch`` starts ``feedserver watch`` on the empty output instead (no server: the
published ``feed.json`` is read from disk), which builds cold in its scheduler's process
(or, since issue 18's stop 36, in a process of its own); ``--code DIR`` runs the
feedserver of another checkout (on ``PYTHONPATH``), to compare two versions side by
side.  Run by hand; nothing here is a test.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = re.compile(r"\[(\d+)\] feedserver\.schedule\.scheduler: run \d+ \(([^)]*)\):.* ([\d.]+)s$",
                 re.M)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def titles(port: int) -> set[str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/feed.json")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        return set()
    return {item["title"] for item in json.loads(body)["items"]}


def make_site(folder: Path, articles: int) -> None:
    shutil.copy(ROOT / "config.toml", folder / "config.toml")
    if articles:
        from .corpus import generate

        generate(folder / "seeds", articles)
    else:
        shutil.copytree(ROOT / "seeds", folder / "seeds")


def on_disk(folder: Path) -> set[str]:
    """The titles of the published all-feed, read from the output folder."""
    doc = json.loads((folder / "public" / "feed.json").read_bytes())
    return {item["title"] for item in doc["items"]}


def start(folder: Path, port: int, workers: int, log: Path, watch: bool = False,
          code: Path | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
    env.update(FEEDSERVER_BASE_URL=f"http://127.0.0.1:{port}/", FEEDSERVER_REFRESH_INTERVAL="30")
    if code is not None:
        env["PYTHONPATH"] = str(code)
    command = ["watch"] if watch else ["serve", "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "feedserver", *command], cwd=folder,
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for(check: object, timeout: float, what: str, every: float = 0.02) -> float:
    """Seconds until ``check()`` holds; polls gently so the server keeps its CPU."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            if check():  # type: ignore[operator]
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(every)
    raise SystemExit(f"timed out waiting for {what}")


def measure(folder: Path, rounds: int, seen: Callable[[], set[str]]) -> list[float]:
    latencies = []
    for index in range(rounds):
        title = f"Latency probe {index} {os.urandom(4).hex()}"
        path = folder / "seeds" / f"probe-{index}.txt"
        path.write_text(f"{title}\n\nA short note about the railway corridor.\n",
                        encoding="utf-8")
        latencies.append(wait_for(lambda t=title: t in seen(), 60, title))
        time.sleep(0.5)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--watch", action="store_true",
                        help="time `feedserver watch` from an empty output, not serve")
    parser.add_argument("--code", type=Path, default=None,
                        help="run the feedserver of this checkout instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="feedserver-latency-") as tmp:
        folder = Path(tmp)
        make_site(folder, args.articles)
        port, log = free_port(), folder / "serve.log"
        began = time.perf_counter()
        server = start(folder, port, args.workers, log, args.watch, args.code)
        seen = partial(on_disk, folder) if args.watch else partial(titles, port)
        try:
            wait_for(seen, 1800, "the first build")
            # watch: its first run builds cold; from stop 36 on, a second reads it back
            wait_for(lambda: len(RUN.findall(log.read_text())) >= 1 + args.watch, 600,
                     "the scheduler's first run")
            time.sleep(2)
            print(f"ready after {time.perf_counter() - began:.1f}s")
            latencies = measure(folder, args.rounds, seen)
            elapsed = time.perf_counter() - began
        finally:
            server.terminate()
            server.wait(60)
        runs = RUN.findall(log.read_text())
    probes = [float(s) for _, reason, s in runs if reason.startswith("probe-")]
    print(f"{'watch' if args.watch else 'serve'} ({args.code or 'this checkout'}): articles "
          f"{args.articles or 'bundled'}, workers {args.workers}, rounds {args.rounds}")
    print(f"write -> served: median {statistics.median(latencies) * 1000:.0f} ms, "
          f"p90 {statistics.quantiles(latencies, n=10)[-1] * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms")
    if probes:
        print(f"build per change: median {statistics.median(probes) * 1000:.0f} ms, "
              f"max {max(probes) * 1000:.0f} ms")
    print(f"builds: {len(runs)} in {len({pid for pid, _, _ in runs})} process(es) over "
          f"{elapsed:.0f}s ({sum(r == 'interval' for _, r, _ in runs)} on the 30 s interval)")


if __name__ == "__main__":
    main()

"""``python -m benchmarks --baseline DIR``: the code in DIR (before) and this checkout (after),
measured side by side on one corpus, so both see the same machine load.

DIR is a checkout of feedserver (any version since the corpus format; no venv needed:
both run with this interpreter and its libraries, ``PYTHONPATH`` choosing the code).
For each repeat, interleaved (before, then after, each time):

* **one file changed**: :mod:`benchmarks.child` in one long-lived process, as the
  scheduler runs (its warm state), builds the whole site into an empty state, then
  rebuilds it after the newest article changed, told the path (the watcher's events),
  and after it changed again, found by a full scan;
* **cold build**: ``python -m feedserver build`` in a new process (what a user runs:
  imports, the whole site with pages, compression, manifest) over a fresh state and
  output folder; wall time, CPU of the process tree, peak PSS;
* **serving**: ``python -m feedserver serve --workers 2`` on that output, ``wrk`` (or
  the threaded client) on ``/feed.rss`` plain, gzip and revalidated (304): requests/s
  and the server's CPU microseconds per request.

Each code has its own config, state and output folder (``config-before.toml`` ...), so
neither reads a cache the other wrote.  One table: figure | before | after | after/before,
medians with [min-max].
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .measure import Figure, Run, run
from .serve_bench import cpu_seconds, fetch, free_port, threaded, wrk

ROOT = Path(__file__).resolve().parent.parent
SIDES = ("before", "after")
CASES = {"plain": {}, "gzip": {"Accept-Encoding": "gzip"}, "304": {}}
Samples = dict[str, dict[str, list[float]]]  # figure -> side -> values


def environment(code: Path, work: Path) -> dict[str, str]:
    """``PYTHONPATH`` for one side: this checkout's ``benchmarks`` (through a folder that
    holds only it), then ``code``'s ``feedserver``; no ``FEEDSERVER_*`` from outside."""
    shim = work / "shim"
    shim.mkdir(parents=True, exist_ok=True)
    link = shim / "benchmarks"
    if link.is_symlink() and link.resolve() != (ROOT / "benchmarks").resolve():
        link.unlink()  # left by a run from another checkout
    if not link.exists():
        link.symlink_to(ROOT / "benchmarks")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
    env["PYTHONPATH"] = os.pathsep.join((str(shim), str(code)))
    env["FEEDSERVER_REFRESH_INTERVAL"] = "3600"  # no periodic scan while serving is measured
    return env


def configure(site: Path, side: str) -> Path:
    """``config-<side>.toml``: the shipped config over the corpus, with its own folders."""
    config = (ROOT / "config.toml").read_text(encoding="utf-8")
    for key, value in (("seeds_dir", "seeds"), ("output_dir", f"out-{side}"),
                       ("state_dir", f"state-{side}")):
        config = re.sub(rf"^{key} = .*$", f'{key} = "{value}"', config, flags=re.MULTILINE)
    path = site / f"config-{side}.toml"
    path.write_text(config, encoding="utf-8")
    return path


def which_code(env: dict[str, str], site: Path) -> str:
    """Where the side's ``feedserver`` is imported from (a check that PYTHONPATH wins)."""
    return run([sys.executable, "-c", "import feedserver; print(feedserver.__file__)"],
               env=env, cwd=site).output.strip()


def fresh(site: Path, side: str) -> None:
    for folder in (f"out-{side}", f"state-{side}"):
        shutil.rmtree(site / folder, ignore_errors=True)


def cold(site: Path, side: str, env: dict[str, str]) -> Run:
    fresh(site, side)
    return run([sys.executable, "-m", "feedserver", "build", "--config",
                f"config-{side}.toml"], env=env, cwd=site)


def incremental(site: Path, side: str, env: dict[str, str], rounds: int) -> dict[str, list[float]]:
    fresh(site, side)  # the child's first build makes its own state
    measured = run([sys.executable, "-m", "benchmarks.child", "incremental", str(site),
                    str(rounds), "--pages", "--config", f"config-{side}.toml"], env=env,
                   cwd=site)
    line = next(x for x in measured.output.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])["times"]  # type: ignore[no-any-return]


def _load(port: int, headers: dict[str, str], seconds: float, connections: int
          ) -> tuple[float, int]:
    """(requests/s, requests) on ``/feed.rss``: ``wrk -t2`` where it is installed, else
    the threaded client (the two return their figures in different shapes)."""
    if shutil.which("wrk"):
        return wrk(port, headers, max(1, round(seconds)), 2, connections)
    count, took = threaded(port, "/feed.rss", headers, seconds, connections)
    return count / took, count


def serving(site: Path, side: str, env: dict[str, str], seconds: float,
            connections: int) -> dict[str, tuple[float, float]]:
    """case -> (requests/s, server CPU µs per request) for one server of this side."""
    port = free_port()
    log = (site / f"serve-{side}.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "feedserver", "serve", "--config",
                               f"config-{side}.toml", "--port", str(port), "--workers", "2",
                               "--base-url", "http://127.0.0.1:8000/"],
                              env=env, cwd=site, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                if fetch(port, {}, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{side}: serve did not start; see {log.name}")
            time.sleep(0.2)
        time.sleep(2)  # the scheduler's first look at seeds/ is over
        etag = fetch(port, {})[1].get("etag", "")
        found = {}
        for case, headers in CASES.items():
            headers = {**headers, "If-None-Match": etag} if case == "304" else headers
            cpu = cpu_seconds(server.pid)
            rate, count = _load(port, headers, seconds, connections)
            used = cpu_seconds(server.pid) - cpu
            found[case] = (rate, 1e6 * used / max(count, 1))
        return found
    finally:
        server.terminate()  # ours, by its PID
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def measure(site: Path, codes: dict[str, Path], options: argparse.Namespace) -> Samples:
    samples: Samples = {}

    def add(figure: str, side: str, value: float) -> None:
        samples.setdefault(figure, {s: [] for s in SIDES})[side].append(value)

    envs = {side: environment(code, options.work) for side, code in codes.items()}
    for side, code in codes.items():
        configure(site, side)
        where = which_code(envs[side], site)
        if not where.startswith(str(code.resolve())):
            raise SystemExit(f"{side}: feedserver comes from {where}, not {code}")
    for repeat in range(options.repeats):
        print(f"  repeat {repeat + 1}/{options.repeats}", file=sys.stderr, flush=True)
        if options.rounds:
            for side in SIDES:
                times = incremental(site, side, envs[side], options.rounds)
                for value in times["change"]:
                    add("one file changed, watcher's path (s)", side, value)
                for value in times["change_scan"]:
                    add("one file changed, full scan (s)", side, value)
        for side in SIDES:  # after the child's: serving reads this output
            built = cold(site, side, envs[side])
            add("cold build, `feedserver build` (s)", side, built.seconds)
            add("cold build CPU (s)", side, built.cpu)
            add("cold build peak RSS (MiB)", side, built.rss_mib)
        if options.serve_seconds:
            for side in SIDES:
                for case, (rate, cpu) in serving(site, side, envs[side], options.serve_seconds,
                                                 options.connections).items():
                    add(f"serving /feed.rss {case} (req/s)", side, rate)
                    add(f"serving {case}: server CPU (µs/req)", side, cpu)
    return samples


def table(samples: Samples) -> str:
    lines = ["| figure | before | after | after/before |", "|---|---|---|---|"]
    for figure, sides in samples.items():
        before, after = Figure.of(sides["before"]), Figure.of(sides["after"])
        digits = 3 if figure.startswith("one file") else 0 if "req" in figure \
            or "MiB" in figure else 2
        ratio = after.median / before.median if before.median else float("nan")
        lines.append(f"| {figure} | {before.show(digits)} | {after.show(digits)} | "
                     f"{ratio:.3f} |")
    return "\n".join(lines)


def main(options: argparse.Namespace, site: Path) -> None:
    codes = {"before": options.baseline.resolve(), "after": ROOT}
    print(table(measure(site, codes, options)))

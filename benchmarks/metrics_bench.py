"""What ``/metrics`` costs the request path: ``feedserver serve`` with and without it.

Builds the bundled seeds into ``benchmarks/.work/metrics``, then, alternating over
several rounds, starts ``feedserver serve --workers 2`` on 127.0.0.1 with metrics on
(``metrics_allow`` loopback, the default) and off (``metrics_allow = []``: no
counting), waits for the scheduler's first run, and loads ``/feed.rss`` with
``wrk -t2 -c32 -d5s``.  Prints requests/s and the server's CPU microseconds per
request (master, workers and scheduler; the access log is on in both, as ``serve``
runs by default), with medians.  CPU per request is the steadier number on a busy
machine: requests/s moves with whatever else runs.

Then the same app called in-process (Flask's WSGI app, no server; values in a
multiprocess folder as under ``serve``): CPU microseconds per ``GET /feed.rss``, best
of several repeats, with and without the counting wrapper.

    python -m benchmarks.metrics_bench [--rounds 3] [--duration 5]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks.serve_bench import cpu_seconds, free_port, stop

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "metrics"
MODES = {"metrics on": "127.0.0.0/8", "metrics off": ""}


def prepare() -> None:

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    shutil.copytree(ROOT / "seeds", WORK / "seeds")
    shutil.copy(ROOT / "config.toml", WORK / "config.toml")


def start(allow: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
    env.update(FEEDSERVER_METRICS_ALLOW=allow, FEEDSERVER_BASE_URL=f"http://127.0.0.1:{port}/")
    log = WORK / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "feedserver", "serve", "--port",
                                    str(port), "--workers", "2"], cwd=WORK, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                pass
            if "run 1 (" in log.read_text():  # the scheduler's first build is over
                return process, port, log
        except OSError:
            pass
        time.sleep(0.2)
    stop(process)
    raise SystemExit(f"serve did not come up:\n{log.read_text()}")


def measure(port: int, pid: int, duration: int) -> tuple[float, float]:
    """(requests/s, server CPU microseconds per request) of one wrk run."""
    before = cpu_seconds(pid)
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{duration}s",
                          f"http://127.0.0.1:{port}/feed.rss"], capture_output=True,
                         text=True, check=True, timeout=duration + 30).stdout
    used = cpu_seconds(pid) - before
    found = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)\b", out)
    assert found and "Non-2xx" not in out, out
    seconds = float(found.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[found.group(3)]
    requests = int(found.group(1))
    return requests / seconds, used / requests * 1e6


def in_process(repeats: int = 15, number: int = 2000) -> dict[str, float]:
    """Best CPU microseconds per request of the WSGI app, metrics on and off."""
    import dataclasses
    import tempfile

    from feedserver.build.run import run_build
    from feedserver.config import load_settings
    from feedserver.metrics import multiproc

    folder = Path(tempfile.mkdtemp(prefix=multiproc.PREFIX + f"{os.getpid()}-"))
    os.environ[multiproc.ENV] = str(folder)
    try:
        from feedserver.web.app import create_app

        settings = load_settings(WORK / "config.toml", env={})
        run_build(settings)
        apps = {"metrics on": create_app({"FEEDSERVER_SETTINGS": settings}),
                "metrics off": create_app({"FEEDSERVER_SETTINGS": dataclasses.replace(
                    settings, metrics_allow=())})}
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/feed.rss", "SERVER_NAME": "x",
                   "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": None,
                   "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1"}

        def started(status: str, headers: list[tuple[str, str]], *exc: object) -> None:
            return None

        best = {mode: float("inf") for mode in apps}
        for _ in range(repeats):
            for mode, app in apps.items():
                begin = time.process_time()
                for _ in range(number):
                    for _ in app.wsgi_app(dict(environ), started):
                        pass
                best[mode] = min(best[mode], (time.process_time() - begin) / number * 1e6)
        return best
    finally:
        multiproc.remove(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    args = parser.parse_args()
    prepare()
    results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    for round_ in range(args.rounds):
        for mode, allow in MODES.items():
            process, port, _ = start(allow)
            try:
                rate, cpu = measure(port, process.pid, args.duration)
            finally:
                stop(process)
            results[mode].append((rate, cpu))
            print(f"round {round_ + 1} {mode:12s} {rate:9.0f} req/s {cpu:7.0f} us CPU/request",
                  flush=True)
    for mode, runs in results.items():
        print(f"median {mode:12s} {statistics.median(r for r, _ in runs):9.0f} req/s "
              f"{statistics.median(c for _, c in runs):7.0f} us CPU/request")
    for mode, cpu in in_process().items():
        print(f"in-process {mode:12s} {cpu:7.1f} us CPU/request (best of 15 x 2000)")


if __name__ == "__main__":
    main()

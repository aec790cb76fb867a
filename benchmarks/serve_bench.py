"""Serving speed: feedserver's web app vs a bare Flask route, same gunicorn, one run.

Builds the bundled seeds into ``benchmarks/.work/serve``, then starts two
gunicorn servers on 127.0.0.1 with the settings ``feedserver serve`` uses
(:func:`feedserver.serve.gunicorn_options`, access log off): feedserver's
``create_app``, and a bare Flask app whose routes return the very same
responses (body and headers) from memory.  For a topic feed it measures
requests/s for a plain GET, a gzip GET and a 304 revalidation, alternating
bare and feedserver over several rounds, and prints medians and the ratio.

Load comes from ``wrk`` when installed (Debian package ``wrk``), else from a
bounded Python client (threads with keep-alive connections).

    python benchmarks/serve_bench.py [--duration 3] [--rounds 3] [--connections 8]
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
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "serve"
CASES = {"plain": {}, "gzip": {"Accept-Encoding": "gzip"}, "304": {}}
HOP = {"date", "server", "connection", "transfer-encoding", "keep-alive"}
# case -> server -> one (requests/s, server CPU microseconds per request) per round
Results = dict[str, dict[str, list[tuple[float, float]]]]


def settings_for(work: Path) -> Any:
    from feedserver.config import load_settings

    return load_settings(work / "config.toml", env={})


def prepare(work: Path) -> Any:
    """A fresh copy of the bundled seeds and config, built once."""
    from feedserver.build.run import run_build

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copytree(ROOT / "seeds", work / "seeds")
    shutil.copy(ROOT / "config.toml", work / "config.toml")
    settings = settings_for(work)
    run_build(settings)
    return settings


def bare_app(responses: dict[str, dict[str, Any]]) -> Any:
    """Flask at its floor: one route per case returning prepared bytes and headers."""
    from flask import Flask, Response

    app = Flask("bare", static_folder=None)
    prepared = {case: (bytes.fromhex(r["body"]), r["status"], r["headers"])
                for case, r in responses.items()}

    def route(case: str) -> Response:
        body, status, headers = prepared[case]
        return Response(body, status, headers)

    app.add_url_rule("/<case>", "case", route)
    return app


def serve(kind: str, port: int, work: Path) -> None:
    """Child process: run one of the two servers under feedserver's gunicorn settings."""
    from feedserver.serve import FeedServer, gunicorn_options
    from feedserver.web.app import create_app

    settings = settings_for(work)
    options = gunicorn_options(settings, "127.0.0.1", port, access_log=False)
    options["errorlog"] = str(work / f"{kind}.log")
    if kind == "bare":
        responses = json.loads((work / "responses.json").read_text())
        FeedServer(lambda: bare_app(responses), options).run()
    else:
        FeedServer(lambda: create_app({"FEEDSERVER_SETTINGS": settings}), options).run()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    kept = {k: v for k, v in response.getheaders() if k.lower() not in HOP}
    return response.status, kept, body


def start(kind: str, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port),
                                "--work", str(work)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{kind} server did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wrk(port: int, path: str, headers: dict[str, str], duration: float, connections: int
        ) -> tuple[int, float]:
    """(requests, seconds) from one wrk run."""
    args = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, f"http://127.0.0.1:{port}{path}"], capture_output=True,
                         text=True, check=True, timeout=duration + 30).stdout
    if "Non-2xx" in out and "If-None-Match" not in headers:  # 304s count as non-2xx
        raise SystemExit(f"errors from wrk:\n{out}")
    found = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)\b", out)
    assert found, out
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0}[found.group(3)]
    return int(found.group(1)), float(found.group(2)) * scale


def threaded(port: int, path: str, headers: dict[str, str], duration: float,
             connections: int) -> tuple[int, float]:
    """Fallback load: keep-alive clients in threads, bounded by time."""
    counts = [0] * connections
    stop_at = time.monotonic() + duration

    def client(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop_at:
            conn.request("GET", path, headers=headers)
            conn.getresponse().read()
            counts[slot] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 30)
    return sum(counts), time.monotonic() - started


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a gunicorn master and its workers so far."""
    tick = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [pid, *map(int, children.read_text().split())] if children.exists() else [pid]
    total = 0
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per case")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--serve", choices=["bare", "feedserver"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, default=WORK, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.work)
        return
    run(args)


def record(port: int, path: str) -> dict[str, dict[str, Any]]:
    """The exact responses feedserver gives for each case, for the bare app to replay."""
    responses: dict[str, dict[str, Any]] = {}
    status, headers, body = fetch(port, path, {})
    etag = headers["ETag"]
    CASES["304"] = {"If-None-Match": etag}
    for case, sent in CASES.items():
        status, headers, body = fetch(port, path, sent)
        assert status == (304 if case == "304" else 200), (case, status)
        responses[case] = {"status": status, "headers": list(headers.items()),
                           "body": body.hex()}
    return responses


def run(args: argparse.Namespace) -> None:
    settings = prepare(args.work)
    catalog = json.loads((Path(settings.output_dir) / "topics.json").read_text())
    topic = max(catalog["channels"][1:], key=lambda c: c["items"])
    path = "/" + topic["feeds"]["rss"].removeprefix(settings.base_url)
    load = wrk if shutil.which("wrk") else threaded
    feed, feed_port = start("feedserver", args.work)
    bare = None
    try:
        (args.work / "responses.json").write_text(json.dumps(record(feed_port, path)))
        bare, bare_port = start("bare", args.work)
        servers = (("bare", bare, bare_port), ("feedserver", feed, feed_port))
        results: Results = {c: {"bare": [], "feedserver": []} for c in CASES}
        for _ in range(args.rounds):
            for case, headers in CASES.items():
                for name, process, port in servers:
                    url = f"/{case}" if name == "bare" else path
                    before = cpu_seconds(process.pid)
                    count, seconds = load(port, url, headers, args.duration, args.connections)
                    cost = (cpu_seconds(process.pid) - before) / count * 1e6
                    results[case][name].append((count / seconds, cost))
    finally:
        for process in (feed, bare):
            if process is not None:
                stop(process)
    report(results, path, load.__name__, args, settings.workers)


def report(results: Results, path: str, tool: str, args: argparse.Namespace,
           workers: int) -> None:
    print(f"topic feed {path}; gunicorn gevent, {workers} workers; load: {tool}, "
          f"{args.connections} connections, {args.rounds} x {args.duration:g}s; "
          f"{os.cpu_count()} cores")
    print("req/s: median of the rounds (min-max). ratio = feedserver / bare; 'paired' is the "
          "median of each round's ratio (the two run back to back, so other load on the "
          "machine hits both alike). cpu: server CPU microseconds per request (master + "
          "workers), median; its ratio is bare / feedserver, so 1.0 means equal cost.")
    print(f"{'case':<6} {'bare req/s':>18} {'feedserver req/s':>18} {'paired':>7} "
          f"{'medians':>8} {'bare cpu':>9} {'ours cpu':>9} {'ratio':>6}")
    for case, found in results.items():
        cells = []
        for name in ("bare", "feedserver"):
            rates = [rate for rate, _ in found[name]]
            cells.append(f"{statistics.median(rates):.0f} ({min(rates):.0f}-{max(rates):.0f})")
        paired = statistics.median(o[0] / b[0] for o, b in zip(found["feedserver"],
                                                               found["bare"], strict=True))
        medians = statistics.median(r for r, _ in found["feedserver"]) / \
            statistics.median(r for r, _ in found["bare"])
        bare_cpu = statistics.median(c for _, c in found["bare"])
        our_cpu = statistics.median(c for _, c in found["feedserver"])
        print(f"{case:<6} {cells[0]:>18} {cells[1]:>18} {paired:>7.2f} {medians:>8.2f} "
              f"{bare_cpu:>9.0f} {our_cpu:>9.0f} {bare_cpu / our_cpu:>6.2f}")

if __name__ == "__main__":
    main()

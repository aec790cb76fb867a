"""Serving speed: nginx / feedserver under gunicorn (before and with the fast path) /
``feedserver serve`` (granian), one run.

``python -m benchmarks.serve_bench [--articles 3000] [--rounds 5] [--duration 5]``

Generates (once, seeded) a corpus of ``--articles`` articles under
``benchmarks/.work/serve-N`` and builds it, then starts, on free 127.0.0.1 ports,
four servers over the same output folder:

- **nginx** (``gzip_static on``, ETags, sendfile, an access log; ``worker_processes`` =
  the number of cores), from the minimal hand-written config below;
- **gunicorn**: feedserver as shipped before issue 18 (``create_app`` without the fast
  path under gunicorn's gevent workers, :mod:`benchmarks.gunicorn_serve`, the scheduler
  in the master, Prometheus counters in a multiprocess folder, the access log to a file);
- **gunicorn + fast path**: the same with the fast path, what ``feedserver serve`` ran
  until it moved to granian (the ``bench`` extra installs gunicorn and gevent);
- **serve**: ``python -m feedserver serve`` as it is in this checkout (granian, the
  deployment's command, scheduler and all), its stdout (the access log) to a file.

The poll budget is off for all (``FEEDSERVER_POLL_BUDGET=0``: one ``wrk`` address
fetching the all-feed in full thousands of times a second is exactly what it refuses;
nginx has none).  For the all-feed (``/feed.rss``) it measures requests/s with
``wrk -t2 -c64`` for a plain GET, a gzip GET (``Accept-Encoding: gzip``) and a 304
(``If-None-Match`` with the ETag that server gave), alternating the servers case
by case over ``--rounds`` rounds, and prints each figure as the median with min and
max, and each Python server's ratio to nginx (median of the per-round ratios: the
servers of one round run back to back, so the load of the machine's other users hits
them alike; on a shared machine only these side-by-side ratios mean anything).
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

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ("nginx", "gunicorn", "gunicorn-fast", "chosen")
TITLES = {"nginx": "nginx", "gunicorn": "gunicorn (before)", "gunicorn-fast": "gunicorn + fast",
          "chosen": "serve (granian)"}
CASES = ("plain", "gzip", "304")
PATH = "/feed.rss"
Results = dict[str, dict[str, list[float]]]  # case -> server -> req/s per round
Costs = dict[str, dict[str, list[float]]]  # case -> server -> CPU µs per request per round

NGINX = """\
worker_processes {workers};
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    types {{ application/rss+xml rss; application/atom+xml atom;
             application/feed+json json; text/html html; text/xml opml; }}
    default_type application/octet-stream;
    access_log {work}/nginx-access.log;
    client_body_temp_path {work}/nginx-tmp;
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port};
        root {public};
        gzip_static on;
        etag on;
        location / {{ try_files $uri $uri/index.html =404; }}
    }}
}}
"""


def env_for(work: Path) -> dict[str, str]:
    """The FEEDSERVER_* settings of every Python server (and the build)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
    env.update(FEEDSERVER_BASE_URL="http://127.0.0.1:8000/",
               FEEDSERVER_SEEDS_DIR=str(work / "seeds"),
               FEEDSERVER_OUTPUT_DIR=str(work / "public"),
               FEEDSERVER_STATE_DIR=str(work / "state"),
               FEEDSERVER_POLL_BUDGET="0")
    return env


def prepare(work: Path, articles: int) -> None:
    """Corpus generated and built once per size (kept between runs)."""
    from .corpus import generate

    marker = work / "built.json"
    if marker.exists() and json.loads(marker.read_text()).get("articles") == articles:
        return
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copy(ROOT / "config.toml", work / "config.toml")
    generate(work / "seeds", articles, seed=1)
    subprocess.run([sys.executable, "-m", "feedserver", "build"], cwd=work,
                   env=env_for(work), check=True, stdout=subprocess.DEVNULL)
    marker.write_text(json.dumps({"articles": articles}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(port: int, headers: dict[str, str], path: str = PATH
          ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def nginx_config(work: Path, port: int) -> str:
    """The minimal hand-written config (until ``feedserver export nginx`` writes one)."""
    (work / "nginx-tmp").mkdir(exist_ok=True)
    return NGINX.format(workers=os.cpu_count() or 1, work=work, port=port,
                        public=work / "public")


def start(name: str, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start one server (a new process we own) and wait until it answers."""
    port = free_port()
    log = (work / f"{name}.log").open("wb")
    if name == "nginx":
        conf = work / "nginx.conf"
        conf.write_text(nginx_config(work, port))
        args = ["nginx", "-p", str(work), "-c", str(conf)]
    elif name in ("gunicorn", "gunicorn-fast"):
        args = [sys.executable, "-m", "benchmarks.serve_bench", "--gunicorn", str(port)]
        args += ["--fast-path"] if name == "gunicorn-fast" else []
    else:
        args = [sys.executable, "-m", "feedserver", "serve", "--port", str(port)]
    process = subprocess.Popen(args, cwd=work if name == "chosen" else ROOT,
                               env=env_for(work), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if fetch(port, {})[0] == 200:
                return process, port
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise SystemExit(f"{name} did not start; see {work / (name + '.log')}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server we started, by its PID: TERM (nginx: QUIT), then KILL if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def case_headers(case: str, port: int) -> dict[str, str]:
    """The request headers of a case; checks the server answers it as expected."""
    if case == "plain":
        return {}
    if case == "gzip":
        status, headers, _ = fetch(port, {"Accept-Encoding": "gzip"})
        assert status == 200 and headers.get("content-encoding") == "gzip", (port, headers)
        return {"Accept-Encoding": "gzip"}
    etag = fetch(port, {})[1]["etag"]
    assert fetch(port, {"If-None-Match": etag})[0] == 304, port
    return {"If-None-Match": etag}


def wrk(port: int, headers: dict[str, str], seconds: int, threads: int,
        connections: int) -> tuple[float, int]:
    """(requests/s, requests) of one ``wrk`` run; an error or unexpected status stops it all."""
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "20s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, f"http://127.0.0.1:{port}{PATH}"], capture_output=True,
                         text=True, check=True, timeout=seconds + 60).stdout
    if "Socket errors" in out or ("Non-2xx" in out and "If-None-Match" not in headers):
        raise SystemExit(f"errors from wrk:\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    assert found and count, out
    return float(found.group(1)), int(count.group(1))


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a server: its first process and their children."""
    tick = os.sysconf("SC_CLK_TCK")
    pids, total = [pid], 0
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            for task in Path(f"/proc/{one}/task").iterdir():
                pids += map(int, (task / "children").read_text().split())
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def measure(args: argparse.Namespace) -> tuple[Results, Costs, dict[str, int]]:
    """Start the servers, alternate them over the rounds, stop them."""
    running: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    results: Results = {case: {name: [] for name in SERVERS} for case in CASES}
    costs: Costs = {case: {name: [] for name in SERVERS} for case in CASES}
    try:
        for name in SERVERS:
            running[name] = start(name, args.work)
        sizes = {name: len(fetch(port, {})[2]) for name, (_, port) in running.items()}
        sent = {(case, name): case_headers(case, port)
                for case in CASES for name, (_, port) in running.items()}
        for number in range(args.rounds):
            print(f"round {number + 1}/{args.rounds}", file=sys.stderr, flush=True)
            for case in CASES:
                for name in SERVERS:
                    print(f"  {case} {name}", file=sys.stderr, flush=True)
                    process, port = running[name]
                    before = cpu_seconds(process.pid)
                    rate, count = wrk(port, sent[case, name], args.duration, args.threads,
                                      args.connections)
                    results[case][name].append(rate)
                    costs[case][name].append((cpu_seconds(process.pid) - before) / count * 1e6)
    finally:
        for process, _ in running.values():
            stop(process)
    return results, costs, sizes


def table(results: Results, costs: Costs, sizes: dict[str, int],
          args: argparse.Namespace) -> str:
    """The serving table: req/s median (min-max) per server, ratios to nginx."""
    lines = [f"{PATH} of a {args.articles:,}-article site ({sizes['nginx']:,} bytes); "
             f"wrk -t{args.threads} -c{args.connections}, {args.rounds} rounds x "
             f"{args.duration}s, servers alternated; {os.cpu_count()} cores shared",
             "req/s: median (min-max) of the rounds; x nginx: median of the per-round "
             "ratios (side by side, the figure that counts on a shared machine)",
             f"{'case':<6} " + " ".join(f"{TITLES[name]:>20}" + ("" if name == "nginx"
                                         else f" {'x nginx':>7}") for name in SERVERS)]
    for case, found in results.items():
        cells = [f"{case:<6}"]
        for name in SERVERS:
            rates = found[name]
            cell = f"{statistics.median(rates):.0f} ({min(rates):.0f}-{max(rates):.0f})"
            if name != "nginx":
                ratios = [r / n for r, n in zip(rates, found["nginx"], strict=True)]
                cell = f"{cell:>20} {statistics.median(ratios):7.2f}"
            cells.append(f"{cell:>20}")
        lines.append(" ".join(cells))
    lines.append("server CPU µs per request (all its processes, from /proc; median of the "
                 "rounds; x nginx: times nginx's cost, the machine's other load disturbs it "
                 "less than req/s)")
    for case, found in costs.items():
        cells = [f"{case:<6}"]
        nginx = statistics.median(found["nginx"])
        for name in SERVERS:
            cost = statistics.median(found[name])
            cells.append(f"{cost:20.0f}" + ("" if name == "nginx" else f" {cost / nginx:7.1f}"))
        lines.append(" ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line (``python -m benchmarks`` may call it with its own ``argv``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c")
    parser.add_argument("--work", type=Path, help="default: benchmarks/.work/serve-N")
    parser.add_argument("--gunicorn", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fast-path", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.gunicorn:
        from benchmarks.gunicorn_serve import run

        run(args.gunicorn, args.fast_path)
        return
    if shutil.which("wrk") is None or shutil.which("nginx") is None:
        raise SystemExit("needs wrk and nginx (Debian packages wrk, nginx-light)")
    args.work = (args.work or ROOT / "benchmarks" / ".work" / f"serve-{args.articles}").resolve()
    prepare(args.work, args.articles)
    results, costs, sizes = measure(args)
    print(table(results, costs, sizes, args))


if __name__ == "__main__":
    main()


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

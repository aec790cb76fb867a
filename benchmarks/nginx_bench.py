"""Serving speed: nginx with the exported config vs `feedserver serve` (granian), one run.

Generates a seeded 3,000-article corpus (:mod:`benchmarks.corpus`) into
``benchmarks/.work/nginx``, builds it once, then serves the same output folder
from ``feedserver serve --workers 2`` and from Debian's nginx (2 workers) with the
config ``feedserver export nginx`` writes (:func:`tests.system.nginx_server.nginx_serving`,
reusable: it starts nginx over any site's output folder and hands back its URL).
For the all-feed (``/feed.rss``) it measures requests/s with
``wrk -t2 -c64`` for a plain GET, a gzip GET and a 304 revalidation (each
server's own ETag), alternating app and nginx over several rounds, and prints
the median with min and max, and nginx's ratio to the app.

    python -m benchmarks.nginx_bench [--articles 3000] [--duration 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.system.nginx_server import missing_reason, nginx_serving

from .corpus import generate

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "nginx"
PATH = "/feed.rss"
CASES = ("plain", "gzip", "304")


def site_env(work: Path) -> dict[str, str]:
    """FEEDSERVER_* for the benchmark's site (no poll budget: wrk is one client)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
    env.update(FEEDSERVER_SEEDS_DIR=str(work / "seeds"),
               FEEDSERVER_OUTPUT_DIR=str(work / "public"),
               FEEDSERVER_STATE_DIR=str(work / "state"), FEEDSERVER_POLL_BUDGET="0",
               FEEDSERVER_BASE_URL="http://127.0.0.1:8000/", FEEDSERVER_REFRESH_INTERVAL="3600",
               FEEDSERVER_LOG_FORMAT="common")
    return env


def prepare(work: Path, articles: int) -> dict[str, str]:
    """The corpus and its build, made once per size and reused."""
    env = site_env(work)
    marker = work / f"built-{articles}"
    if not marker.exists():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        generate(work / "seeds", articles)
        shutil.copy(ROOT / "config.toml", work / "config.toml")
        subprocess.run([sys.executable, "-m", "feedserver", "build"], cwd=work, env=env, check=True,
                       timeout=3600)
        marker.touch()
    return env


def serve_app(port: int, work: Path) -> None:
    """Child process: `feedserver serve`'s granian (its options, 2 workers, access log
    off) without its scheduler, whose build of 3,000 articles would share the CPU."""
    from feedserver.config import load_settings
    from feedserver.serve import FeedServer, server_options
    from feedserver.web.app import create_app

    settings = load_settings(work / "config.toml")
    options = server_options(settings, "127.0.0.1", port, workers=2, access_log=False)
    options["errorlog"] = str(work / "serve.log")
    FeedServer(lambda: create_app({"FEEDSERVER_SETTINGS": settings}), options).run()


@contextmanager
def app_serving(env: dict[str, str], work: Path) -> Iterator[str]:
    """The app under granian on a free port (the folder is published already)."""
    from tests.system.nginx_server import free_port
    from tests.system.test_serve_e2e import stop, wait_ready

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = work / "serve.out"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "benchmarks.nginx_bench",
                                    "--serve-app", str(port), "--work", str(work)],
                                   cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(url, process, log)
        yield url
    finally:
        stop(process)


def etag(url: str) -> str:
    host, port = url.split("/")[2].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", PATH)
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 200, response.status
    return response.getheader("ETag") or ""


def wrk(url: str, headers: dict[str, str], duration: int, connections: int) -> float:
    """Requests per second from one ``wrk -t2`` run."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url.rstrip("/") + PATH], capture_output=True, text=True,
                         check=True, timeout=duration + 60).stdout
    if "Non-2xx" in out and "If-None-Match" not in headers:  # 304s count as non-2xx
        raise SystemExit(f"errors from wrk:\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert found, out
    return float(found.group(1))


def run(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    env = prepare(args.work, args.articles)
    size = (args.work / "public" / PATH[1:]).stat().st_size
    print(f"{args.articles} articles; {PATH}: {size} bytes; wrk -t2 -c{args.connections} "
          f"-d{args.duration}s, {args.rounds} rounds alternating app and nginx")
    results: dict[str, dict[str, list[float]]] = {c: {"app": [], "nginx": []} for c in CASES}
    with ExitStack() as stack:
        urls = {"app": stack.enter_context(app_serving(env, args.work)),
                "nginx": stack.enter_context(nginx_serving(env, args.work, args.work / "nginx",
                                                           workers=2)).url}
        tags = {name: etag(url) for name, url in urls.items()}
        for _ in range(args.rounds):
            for case in CASES:
                for name, url in urls.items():
                    headers = {"gzip": {"Accept-Encoding": "gzip"},
                               "304": {"If-None-Match": tags[name]}}.get(case, {})
                    results[case][name].append(wrk(url, headers, args.duration,
                                                   args.connections))
    return results


def table(results: dict[str, dict[str, list[float]]]) -> str:
    lines = ["| case | app req/s median (min-max) | nginx req/s median (min-max) | nginx/app |",
             "|---|---|---|---|"]
    for case, by in results.items():
        app, ngx = statistics.median(by["app"]), statistics.median(by["nginx"])
        lines.append(f"| {case} | {app:,.0f} ({min(by['app']):,.0f}-{max(by['app']):,.0f}) | "
                     f"{ngx:,.0f} ({min(by['nginx']):,.0f}-{max(by['nginx']):,.0f}) | "
                     f"{ngx / app:.1f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=3000)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--serve-app", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_app:
        serve_app(args.serve_app, args.work)
        return
    if reason := missing_reason():
        raise SystemExit(reason)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    print(table(run(args)))
    print(f"load average: {os.getloadavg()[0]:.1f} (a shared machine: compare ratios)")


if __name__ == "__main__":
    main()

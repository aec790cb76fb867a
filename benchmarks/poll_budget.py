"""What the poll budget costs a request: /feed.rss through the WSGI app, budget off and on.

Builds the bundled seeds into ``benchmarks/.work/poll`` and calls the app in this
process (no sockets, so a loaded machine's noise stays small): a full (unconditional)
GET and a conditional one (If-None-Match, 304), with ``poll_budget = 0`` (off) and with
a budget so large that every full request is counted and allowed (the SQLite upsert
of :mod:`feedserver.web.politeness` on every one).  Prints the best of several rounds
in microseconds per request.  For requests/s over HTTP, run ``wrk -t2 -c32 -d5s``
against ``feedserver serve`` with ``FEEDSERVER_POLL_BUDGET`` set both ways.

    python benchmarks/poll_budget.py [--requests 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import io
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "poll"
Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Any]


def built_settings(budget: int) -> Any:
    from feedserver.build.run import run_build
    from feedserver.config import load_settings

    env = {"FEEDSERVER_SEEDS_DIR": str(WORK / "seeds"),
           "FEEDSERVER_OUTPUT_DIR": str(WORK / "public"),
           "FEEDSERVER_STATE_DIR": str(WORK / "state"),
           "FEEDSERVER_POLL_BUDGET": str(budget)}
    settings = load_settings(ROOT / "config.toml", env=env)
    if not (WORK / "public").is_dir():
        run_build(settings)
    return settings


def environ(extra: dict[str, str]) -> dict[str, Any]:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/feed.rss", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "REMOTE_ADDR": "127.0.0.1",
            **extra}


def per_request(app: Wsgi, extra: dict[str, str], count: int) -> tuple[float, str]:
    """Microseconds per request, and the status of the last one."""
    status = ""

    def start(code: str, headers: list[tuple[str, str]]) -> None:
        nonlocal status
        status = code

    began = time.perf_counter()
    for _ in range(count):
        for _chunk in app(environ(extra), start):
            pass
    return (time.perf_counter() - began) / count * 1e6, status


def main() -> None:
    from feedserver.web.app import create_app

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if not (WORK / "seeds").is_dir():
        shutil.copytree(ROOT / "seeds", WORK / "seeds")
    apps = {name: create_app({"FEEDSERVER_SETTINGS": built_settings(budget)})
            for name, budget in (("off", 0), ("on", 10**9))}
    etag = apps["off"].test_client().get("/feed.rss").headers["ETag"]
    cases = {"full": {}, "conditional": {"HTTP_IF_NONE_MATCH": etag}}
    best: dict[tuple[str, str], tuple[float, str]] = {}
    for _ in range(args.rounds):
        for name, app in apps.items():
            for case, extra in cases.items():
                found = per_request(app.wsgi_app, extra, args.requests)
                if (name, case) not in best or found[0] < best[name, case][0]:
                    best[name, case] = found
    for (name, case), (micros, status) in sorted(best.items()):
        print(f"budget {name:>3}, {case:>11}: {micros:7.1f} us/request  {status}")


if __name__ == "__main__":
    main()

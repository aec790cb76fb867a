"""Load test: many clients poll feeds while seeds/ churns; count what a reader could notice.

``python -m benchmarks.load [--seconds 180] [--clients 16] [--articles 500] [--quiet 3]
[--churn-at-start]``

Starts ``feedserver serve`` (granian, 2 workers, file-system events on) on a
temporary copy of a generated corpus, on a free 127.0.0.1 port.  For
``--seconds`` (and at most ``--max-requests``) ``--clients`` threads fetch
every channel's feeds and a few pages on keep-alive connections, half of them
with the ETag they got last (If-None-Match), with and without gzip/brotli,
while :class:`benchmarks.churn.Churn` adds, edits, renames and deletes
articles and slow writers half-write others.  Every answer is checked:

- errors: anything but 200, 304 or 410 (or no answer at all; a 410 is a channel or
  page the churn removed, counted apart);
- torn or mismatched: a 200 whose ETag is not the hash of the body sent
  (:func:`feedserver.publish.output.etag_of`), a feed that does not parse (RSS/Atom
  as XML, JSON Feed as JSON), a 304 that did not echo our ETag;
- half-written: a churn item whose content lacks the end marker of the version
  its title names;
- ids changed: a churn article (tracked by its key through edits and renames)
  seen with two ids.

The churn starts once the scheduler watches seeds/ (``--churn-at-start``: at
once) and leaves an article alone ``--quiet`` seconds after each change (0: a
rename and an edit of one article may land in the same build).  After the
churn stops it waits for every live churn article to be published
in its final version (nothing lost), then stops the server by its PID and
prints the figures.  Run by hand; nothing here is a test.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from feedserver.publish.output import etag_of

from .churn import TITLE, Churn
from .loadcheck import Tally, check_churn, decode, report, well_formed
from .serve_bench import stop
from .watch_latency import RUN, free_port

ROOT = Path(__file__).resolve().parent.parent
CHURN_FEED = "/topics/churn/feed.json"
ENCODINGS = ("", "gzip", "br")


class Client:
    """One thread: keep-alive requests over the URL list until the deadline."""

    def __init__(self, port: int, paths: list[str], tally: Tally, index: int) -> None:
        self.port, self.paths, self.tally = port, paths, tally
        self.rng = random.Random(index)
        self.conditional = index % 2 == 1
        self.etags: dict[tuple[str, str], str] = {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def run(self, deadline: float, budget: threading.Semaphore) -> None:
        while time.monotonic() < deadline and budget.acquire(blocking=False):
            path = CHURN_FEED if self.rng.random() < 0.2 else self.rng.choice(self.paths)
            self.one(path, self.rng.choice(ENCODINGS))
        self.conn.close()

    def one(self, path: str, encoding: str) -> None:
        headers = {"Accept-Encoding": encoding or "identity"}
        sent = self.etags.get((path, encoding)) if self.conditional else None
        if sent:
            headers["If-None-Match"] = sent
        started = time.perf_counter()
        try:
            self.conn.request("GET", path, headers=headers)
            response = self.conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.tally.record(f"error {type(exc).__name__}", time.perf_counter() - started)
            return
        seconds = time.perf_counter() - started
        etag = response.getheader("ETag") or ""
        self.tally.record(str(response.status), seconds, self.problem(
            path, encoding, response.status, etag, sent, body,
            response.getheader("Content-Encoding") or ""))
        if etag:
            self.etags[(path, encoding)] = etag

    def problem(self, path: str, encoding: str, status: int, etag: str, sent: str | None,
                body: bytes, sent_encoding: str) -> str:
        if status == 304:
            return "" if etag == sent else f"{path}: 304 with ETag {etag}, asked {sent}"
        if status != 200:
            return ""
        if etag != etag_of(body):
            return f"{path} ({encoding or 'plain'}): ETag {etag} is not the body's"
        plain = decode(body, sent_encoding)
        problem = well_formed(path, plain)
        if path == CHURN_FEED and not problem:
            check_churn(self.tally, plain)
        return f"{path} ({encoding or 'plain'}): {problem}" if problem else ""


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def url_list(port: int) -> list[str]:
    """Every channel's three feeds (from the catalog) and the main pages."""
    prefix = f"http://127.0.0.1:{port}"
    channels = json.loads(get(port, "/topics.json")[1])["channels"]
    paths = ["/", "/topics/", "/feeds.opml", "/topics.json"]
    for channel in channels:
        paths += [url.removeprefix(prefix) for url in channel["feeds"].values()]
    return paths


def start_server(work: Path, port: int, interval: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
    env.update(FEEDSERVER_BASE_URL=f"http://127.0.0.1:{port}/",
               FEEDSERVER_SEEDS_DIR=str(work / "seeds"),
               FEEDSERVER_OUTPUT_DIR=str(work / "public"),
               FEEDSERVER_STATE_DIR=str(work / "state"),
               FEEDSERVER_REFRESH_INTERVAL=str(interval),
               # The clients poll in a tight loop, which the poll budget exists to refuse
               # (429): it is off here, as in serve_bench, and has tests of its own.
               FEEDSERVER_POLL_BUDGET="0")
    with (work / "serve.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "feedserver", "serve", "--port",
                                    str(port), "--workers", "2"], cwd=work, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if get(port, "/healthz")[0] == 200:
                return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise SystemExit(f"serve did not start; see {work / 'serve.log'}")


def settle(port: int, churn: Churn, timeout: float) -> tuple[list[str], float]:
    """Wait until every live churn article is published in its last version."""
    started = time.monotonic()
    expected = churn.expected()
    missing: list[str] = []
    while time.monotonic() - started < timeout:
        status, body = get(port, CHURN_FEED)
        seen = {} if status != 200 else {
            m[1]: int(m[2]) for item in json.loads(body)["items"]
            if (m := TITLE.match(item["title"]))}
        missing = sorted(f"{key} v{version} (published: {seen.get(key)})"
                         for key, version in expected.items() if seen.get(key) != version)
        gone = sorted(set(seen) - set(expected))
        if not missing and not gone:
            return [], time.monotonic() - started
        missing += [f"{key}: deleted, still published" for key in gone]
        time.sleep(0.5)
    return missing, time.monotonic() - started


def scheduler_runs(log: Path) -> list[float]:
    """Seconds of every scheduler run, from its log lines."""
    return [float(m[3]) for m in RUN.finditer(log.read_text(errors="replace"))]


def wait_for_watcher(log: Path, timeout: float = 60.0) -> None:
    """Until the scheduler watches seeds/: a writer that opened a file before that and
    pauses longer than the settle time is published half-way (the watcher's known gap;
    ``--churn-at-start`` measures it)."""
    deadline = time.monotonic() + timeout
    while "feedserver.schedule.scheduler: watching" not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise SystemExit(f"the scheduler never started watching; see {log}")
        time.sleep(0.1)


def prepare(args: argparse.Namespace) -> tuple[Path, Churn]:
    """A fresh work folder: config, generated corpus, the churn's first articles."""
    from .corpus import generate

    work = args.work or Path(tempfile.mkdtemp(prefix="feedserver-load-"))
    if (work / "seeds").exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "config.toml", work / "config.toml")
    generate(work / "seeds", args.articles)
    churn = Churn(work / "seeds", quiet=args.quiet)
    churn.populate(args.churn_articles)
    return work, churn


def poll(port: int, churn: Churn, args: argparse.Namespace) -> tuple[Tally, float]:
    """Clients for ``args.seconds`` while the churn runs; returns the tally and duration."""
    tally, paths = Tally(), url_list(port)
    churner = threading.Thread(target=churn.run, name="churn")
    churner.start()
    deadline = time.monotonic() + args.seconds
    budget = threading.Semaphore(args.max_requests)
    threads = [threading.Thread(target=Client(port, paths, tally, i).run,
                                args=(deadline, budget)) for i in range(args.clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    churn.stop.set()
    churner.join()
    return tally, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="how long clients poll")
    parser.add_argument("--clients", type=int, default=16, help="client threads")
    parser.add_argument("--articles", type=int, default=500, help="generated corpus size")
    parser.add_argument("--churn-articles", type=int, default=15, help="churn articles at start")
    parser.add_argument("--quiet", type=float, default=3.0,
                        help="seconds an article is left alone after each change (0: none)")
    parser.add_argument("--churn-at-start", action="store_true",
                        help="start changing files before the scheduler watches them")
    parser.add_argument("--max-requests", type=int, default=2_000_000, help="stop after these")
    parser.add_argument("--interval", type=int, default=10, help="refresh_interval (s)")
    parser.add_argument("--work", type=Path, help="folder to keep (default: a temp folder)")
    args = parser.parse_args()
    work, churn = prepare(args)
    port = free_port()
    server = start_server(work, port, args.interval)
    try:
        if not args.churn_at_start:
            wait_for_watcher(work / "serve.log")
        print(f"serving {work} on 127.0.0.1:{port}; {args.clients} clients for "
              f"{args.seconds:.0f} s", file=sys.stderr)
        tally, elapsed = poll(port, churn, args)
        missing, settled = settle(port, churn, timeout=60)
    finally:
        stop(server)
    print(report(tally, churn, elapsed, missing, settled, scheduler_runs(work / "serve.log"),
                 args.clients))
    (work / "churn.log").write_text("\n".join(churn.journal) + "\n", encoding="utf-8")
    print(f"\nwork folder: {work} (serve.log, churn.log)", file=sys.stderr)


if __name__ == "__main__":
    main()

"""What a combined or filtered feed costs against a plain one, from a real ``feedserver serve``.

Generates the benchmark corpus (``corpus.py``, seeded) into ``benchmarks/.work/query``,
starts ``feedserver serve --workers 1`` on 127.0.0.1 (which builds it first; poll budget
off) and times, over one keep-alive HTTP connection and interleaved so every case sees
the same machine load:

* **plain**: the biggest topic's published ``feed.atom`` (a file read from the cache);
* **filtered, first**: the same feed with a ``limit`` (1 to 49) and ``since`` not asked
  together before (computed: items chosen over the topic's history, the document
  drawn, validated, then cached).  Its items were all in the warm-up's ``limit=50``
  answer, so their renders and feedparser readings are kept: what is new is the
  document around them (its own ``rel="self"``: split by expat, its envelope read by
  feedparser);
* **first, 49 items**: the same with ``limit=49`` every round (a ``since`` older than
  every article, new each round): how that cost grows with the document's size;
* **filtered, repeated**: one filtered URL asked again (the answer cache);
* **combined, first** and **q, first**: ``topics/a,b/feed.atom?limit=n`` and
  ``feed.atom?limit=n&q=<word>``, each URL new.  The combined channel's newest 50 were
  asked for once before (as the topic's for "filtered, first"), so what is new is the
  document around read items; ``q`` reaches across the whole history, so some of its
  items are new to the worker;
* **combined, new items**: another pair of topics, never asked for before: each round's
  ``limit`` is one more than the last, so each answer holds one item this worker has
  not read (rendered, cut by expat and read by feedparser for the first time);
* **since, nothing new**: what a poller asks (the topic's feed updated since its last
  poll, a time of its own, after the newest article): an empty feed, found over the
  topic's whole history;
* **q, nothing found**: a word no article holds, a new one each round: the search reads
  every article's text of the whole history (kept by the worker after the first);
* **plain, JSON** and **first, JSON**: the same topic's ``feed.json`` and a first
  answer of it (as "filtered, first"), each against the other: JSON Feed is read back
  by its own check (a strict JSON parse of the envelope, and of each item once a
  worker), not feedparser, and its items do not come with the records.

The first filtered request a worker answers also imports the renderers; it is timed
once on its own.  Prints median, min and max in milliseconds and each median's ratio to
the plain one (the target: filtered <= 3x plain at the median).

    python -m benchmarks.query_bench [--articles 1000] [--rounds 40]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "query"
WORDS = ("gas", "rail", "steppe", "trade", "pipeline", "summit", "export", "solar", "bank",
         "water", "grain", "port", "oil", "wind", "power", "road")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(articles: int) -> Path:
    """The corpus and a config for it (made once per size)."""
    from benchmarks.corpus import generate

    site = WORK / f"n{articles}"
    if not (site / "seeds").is_dir():
        generate(site / "seeds", articles, seed=1)
    config = (ROOT / "config.toml").read_text(encoding="utf-8")
    for key, value in (("seeds_dir", "seeds"), ("output_dir", "public"),
                       ("state_dir", "state")):
        config = re.sub(rf"^{key} = .*$", f'{key} = "{value}"', config, flags=re.MULTILINE)
    (site / "config.toml").write_text("poll_budget = 0\n" + config, encoding="utf-8")
    return site


def serve(site: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
    env["FEEDSERVER_BASE_URL"] = f"http://127.0.0.1:{port}/"
    log = (site / "serve.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "feedserver", "serve", "--config",
                                str(site / "config.toml"), "--port", str(port),
                                "--workers", "1"], cwd=site, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve exited: see {site / 'serve.log'}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process
        except OSError:
            time.sleep(0.5)
    process.terminate()
    raise SystemExit("serve was not ready")


# What browsers and many feed readers send (Apple's URLSession, Chromium, Firefox).
COMPRESSED = "gzip, deflate, br"


def timed(conn: http.client.HTTPConnection, path: str, encodings: str = "identity") -> float:
    """Milliseconds from sending the request to the last byte of the answer (a canonical
    URL: any other spelling is a 308, which stops the run)."""
    began = time.perf_counter()
    conn.request("GET", path, headers={"Accept": "application/atom+xml",
                                       "Accept-Encoding": encodings})
    response = conn.getresponse()
    response.read()
    took = (time.perf_counter() - began) * 1000
    if response.status != 200:
        raise SystemExit(f"{path}: {response.status}")
    return took


def topics(port: int) -> list[str]:
    """Topic slugs, the most items first."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/topics.json", timeout=30) as r:
        channels = json.loads(r.read())["channels"]
    ranked = sorted((c for c in channels if c["kind"] not in ("all", "language")),
                    key=lambda c: -c["items"])
    return [c["slug"] for c in ranked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    site = prepare(args.articles)
    port = free_port()
    process = serve(site, port)
    try:
        run(port, args.rounds)
    finally:
        process.terminate()
        process.wait(timeout=30)


def run(port: int, rounds: int) -> None:
    a, b, c, d = topics(port)[:4]
    pair = ",".join(sorted((a, b)))
    other = ",".join(sorted((c, d)))
    plain = f"/topics/{a}/feed.atom"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    timed(conn, plain)
    warm = timed(conn, f"/topics/{a}/feed.atom?limit=50")  # the renderers' import
    cases: dict[str, list[float]] = {name: [] for name in (
        "plain", "filtered, first", "first, 49 items", "filtered, repeated",
        "combined, first", "combined, new items", "q, first", "since, nothing new",
        "q, nothing found", "plain, compressed", "first, compressed", "plain, JSON",
        "first, JSON")}
    timed(conn, f"/topics/{a}/feed.atom?limit=7")
    timed(conn, f"/topics/{a}/feed.atom?limit=49")
    timed(conn, f"/topics/{pair}/feed.atom?limit=50")
    timed(conn, "/feed.atom?q=zzq")  # the worker reads every search text once
    timed(conn, f"/topics/{a}/feed.json?limit=50")  # JSON Feed's items drawn once
    for n in range(rounds):
        limit = 1 + n % 49
        cases["plain"].append(timed(conn, plain))
        cases["filtered, first"].append(timed(conn, f"/topics/{a}/feed.atom?limit={limit}"
                                              f"&since=200{n // 49}-01-01T00%3A00%3A00Z"))
        cases["first, 49 items"].append(timed(
            conn, f"/topics/{a}/feed.atom?limit=49"
                  f"&since=1990-01-01T00%3A{n // 60:02}%3A{n % 60:02}Z"))
        cases["filtered, repeated"].append(timed(conn, f"/topics/{a}/feed.atom?limit=7"))
        cases["combined, first"].append(timed(conn, f"/topics/{pair}/feed.atom?limit={limit}"
                                              f"&since=200{n // 49}-01-01T00%3A00%3A00Z"))
        cases["combined, new items"].append(timed(
            conn, f"/topics/{other}/feed.atom?limit={limit}"
                  f"&since=200{n // 49}-01-01T00%3A00%3A00Z"))
        cases["q, first"].append(timed(conn, f"/feed.atom?limit={1 + n // len(WORDS)}"
                                       f"&q={WORDS[n % len(WORDS)]}"))
        cases["since, nothing new"].append(timed(
            conn, f"/topics/{a}/feed.atom?since=2099-01-01T00%3A{n // 60:02}%3A{n % 60:02}Z"))
        cases["q, nothing found"].append(timed(conn, f"/feed.atom?q=zzq{n}x"))
        cases["plain, compressed"].append(timed(conn, plain, COMPRESSED))
        cases["first, compressed"].append(timed(
            conn, f"/topics/{a}/feed.atom?limit={limit}&since=201{n // 49}-01-01T00%3A00%3A00Z",
            COMPRESSED))
        cases["plain, JSON"].append(timed(conn, f"/topics/{a}/feed.json"))
        cases["first, JSON"].append(timed(
            conn, f"/topics/{a}/feed.json?limit={limit}&since=200{n // 49}-01-01T00%3A00%3A00Z"))
    base = statistics.median(cases["plain"])
    print(f"topic {a!r} ({rounds} rounds; first filtered request of the worker, "
          f"with the import: {warm:.1f} ms)")
    print(f"{'case':<20} {'median':>8} {'min':>8} {'max':>8} {'x plain':>8}")
    bases = {"compressed": statistics.median(cases["plain, compressed"]),
             "JSON": statistics.median(cases["plain, JSON"])}
    for name, values in cases.items():
        median = statistics.median(values)
        kind = name.rpartition(", ")[2]
        print(f"{name:<20} {median:8.2f} {min(values):8.2f} {max(values):8.2f} "
              f"{median / bases.get(kind, base):8.1f}")


if __name__ == "__main__":
    WORK.mkdir(parents=True, exist_ok=True)
    main()

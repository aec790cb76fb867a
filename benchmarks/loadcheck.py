"""What the load test checks in every answer, and the table it prints (see load.py)."""

from __future__ import annotations

import gzip
import json
import threading
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import brotli

from .churn import TITLE, Churn, marker


@dataclass
class Tally:
    """Everything the clients saw; one lock, taken once per request."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    torn: list[str] = field(default_factory=list)
    half_written: Counter[str] = field(default_factory=Counter)  # item -> times seen
    ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    churn_items_checked: int = 0

    def record(self, status: str, seconds: float, problem: str = "") -> None:
        with self.lock:
            self.statuses[status] += 1
            self.latencies.append(seconds)
            if problem:
                self.torn.append(problem)


def decode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    return brotli.decompress(body) if encoding == "br" else body


def well_formed(path: str, body: bytes) -> str:
    """'' if the body is a whole document of its kind, else why not."""
    try:
        if path.endswith(".json"):
            json.loads(body)
        elif path.endswith((".rss", ".atom", ".opml")):
            ET.fromstring(body)
        elif path.endswith("/") and not body.rstrip().endswith(b"</html>"):
            return "page does not end with </html>"
    except (ValueError, ET.ParseError) as exc:
        return f"does not parse: {exc}"
    return ""


def check_churn(tally: Tally, body: bytes) -> None:
    """Half-written items and ids by key, from the churn channel's JSON Feed."""
    for item in json.loads(body)["items"]:
        match = TITLE.match(item["title"])
        if match is None:
            continue
        key, version = match[1], int(match[2])
        with tally.lock:
            tally.churn_items_checked += 1
            tally.ids[key].add(item["id"])
            if marker(key, version) not in item["content_html"]:
                tally.half_written[f"{item['title']} ({item['id']})"] += 1


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def report(tally: Tally, churn: Churn, seconds: float, missing: list[str], settled: float,
           runs: list[float], clients: int) -> str:
    served = tally.statuses["200"] + tally.statuses["304"]
    # 410: a topic channel or page whose last article the churn deleted (what a reader
    # of a removed feed must get), not a failure.
    failed = {status: n for status, n in tally.statuses.items()
              if status not in ("200", "304", "410")}
    errors = sum(failed.values())
    changed = {key: ids for key, ids in tally.ids.items() if len(ids) > 1}
    ms = [s * 1000 for s in tally.latencies]
    rows = [
        ("duration, clients", f"{seconds:.0f} s, {clients} threads", ""),
        ("requests served (200 / 304)",
         f"{served} ({tally.statuses['200']} / {tally.statuses['304']}), "
         f"{served / seconds:.0f}/s", ""),
        ("gone (410: a channel or page the churn removed)", str(tally.statuses["410"]), ""),
        ("errors", f"{errors} {failed}" if errors else "0", "0"),
        ("latency p50 / p99 / max", f"{percentile(ms, .5):.1f} / {percentile(ms, .99):.1f} / "
         f"{max(ms, default=0):.0f} ms", ""),
        ("torn bodies or ETag not matching the body", str(len(tally.torn)), "0"),
        ("churn items checked (JSON Feed)", str(tally.churn_items_checked), ""),
        ("items published half-written (times seen)",
         f"{len(tally.half_written)} ({sum(tally.half_written.values())})", "0"),
        ("churn articles seen / with a changed id", f"{len(tally.ids)} / {len(changed)}",
         "0 changed"),
        ("churn operations", ", ".join(f"{k} {v}" for k, v in sorted(churn.done.items()))
         + f" (an article left alone {churn.quiet:g} s after each change)", ""),
        ("live churn articles not published as last written", f"{len(missing)} "
         f"(settled in {settled:.1f} s)", "0"),
        ("scheduler runs, build p50 / max", f"{len(runs)}, {percentile(runs, .5):.3f} / "
         f"{max(runs, default=0):.3f} s", ""),
    ]
    lines = ["| figure | value | goal |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {goal} |" for name, value, goal in rows]
    for title, found in (("torn", tally.torn), ("half-written", list(tally.half_written)),
                         ("not settled", missing),
                         ("changed ids", [f"{k}: {sorted(v)}" for k, v in changed.items()])):
        lines += [f"{title}: {item}" for item in found[:10]]
    return "\n".join(lines)

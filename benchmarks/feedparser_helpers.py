"""``python -m benchmarks.feedparser_helpers OUTPUT [--docs 120] [--rounds 5]``: what the
gate's replacements of feedparser's helpers save (:mod:`feedserver.render.formats.gate_parser`).

OUTPUT is a built site's output folder (``public/``, or ``out/`` of a ``python -m
benchmarks`` corpus).  A seeded sample of its RSS and Atom documents is read whole by the
gate's feedparser as the gate calls it (sanitizer and URI resolver off), once with the
helpers feedparser ships and once with the replacements, the two alternating document
by document in this one process (each first in turn), so a shared machine's changing load
falls on both alike.  Prints each round's CPU seconds, the medians and their ratio.
The cp1252 table stays on for both: it has its own figures.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from feedserver.render.formats import gate_parser

TYPES = {".rss": "application/rss+xml", ".atom": "application/atom+xml"}


def sample(output: Path, count: int) -> list[tuple[bytes, str]]:
    """``count`` RSS and Atom documents of ``output`` (a seeded choice), with media types."""
    found = sorted(p for p in output.rglob("feed.*") if p.suffix in TYPES and p.is_file())
    if not found:
        raise SystemExit(f"no feed.rss or feed.atom under {output}")
    chosen = random.Random(1).sample(found, min(count, len(found)))
    return [(path.read_bytes(), TYPES[path.suffix]) for path in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--docs", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    library = gate_parser.feedparser()
    docs = sample(args.output, args.docs)
    sides: dict[str, Callable[[], Any]] = {"shipped": gate_parser.shipped,
                                           "gate": contextlib.nullcontext}
    print(f"{len(docs)} documents, {sum(len(d) for d, _ in docs) / 1e6:.1f} MB")
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides)
    for _ in range(args.rounds):
        spent = dict.fromkeys(sides, 0.0)
        for body, media_type in docs:
            order.reverse()  # document by document, each side first in turn
            for name in order:
                with sides[name]():
                    started = time.process_time()
                    library.parse(io.BytesIO(body), response_headers={"content-type": media_type},
                                  sanitize_html=False, resolve_relative_uris=False)
                    spent[name] += time.process_time() - started
        for name, value in spent.items():
            cpu[name].append(value)
    for name, values in cpu.items():
        print(f"{name:<8} " + " ".join(f"{v:.2f}" for v in values)
              + f"  median {statistics.median(values):.2f} s CPU")
    ratio = statistics.median(cpu["gate"]) / statistics.median(cpu["shipped"])
    print(f"gate / shipped: {ratio:.2f}")


if __name__ == "__main__":
    main()

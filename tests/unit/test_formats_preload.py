"""What drawing and reading a feed imports is imported once in a process about to fork
the build's Pool, for every worker to share.

The format modules import feedgen, lxml and feedparser inside their functions (a
process that never renders never loads them), so each Pool worker of a cold build
imported them on its first channel: about 6 MiB of its own memory, ten workers a build
(benchmarks/README.md, "The staged files held as bytes, one Pool for every file, the
renderers imported once").  After :func:`preload`, rendering a channel in every format
and reading it back through the gate must import nothing more; and the Pool calls it
before it forks.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from feedserver.build import parallel

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import sys
from datetime import UTC, datetime, timedelta
from feedserver.core.records import Article, Channel
from feedserver.render import feeds
from feedserver.render.formats import FORMATS, preload
from feedserver.build.render_gate import render_checked

when = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ctx = feeds.Context("S", "https://x.example/", "en", "", 30, {"t": "T"})
articles = tuple(
    Article(f"urn:x:{n}", f"s{n}", f"s{n}.txt", f"Story {n}", f"https://x.example/s{n}/",
            f"<p>Body {n}</p>", f"Body {n}", when - timedelta(hours=n), when,
            topics=("t",), media=(("https://x.example/a.mp3", "audio/mpeg", "1200"),)
            if n == 1 else ())
    for n in range(4))
channel = Channel("all", "All", "About all", "", "https://x.example/", articles, when)
if sys.argv[1] == "preload":
    preload()
before = set(sys.modules)
for fmt in FORMATS.values():
    body, problems = render_checked(channel, fmt, ctx, feeds.ItemCache())
    assert body and not problems, (fmt.name, problems)
print(" ".join(sorted(set(sys.modules) - before)))
"""


def _imported(mode: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], check=True, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    return done.stdout.split()


def test_after_preload_rendering_and_reading_every_format_imports_nothing() -> None:
    assert {"feedgen.feed", "lxml.etree", "feedparser"} <= set(_imported("plain"))
    assert _imported("preload") == []


def test_the_pool_preloads_before_it_forks(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def forked(*_: object, **__: object) -> None:
        calls.append("fork")
        raise RuntimeError("forked")

    monkeypatch.setattr(parallel, "preload", lambda: calls.append("preload"))
    monkeypatch.setattr(parallel, "_forked_pool", forked)
    with pytest.raises(RuntimeError, match="forked"):
        parallel._pooled(parallel._Job(None, Path("."), {}, parallel.ItemCache(1)),  # type: ignore[arg-type]
                         [[(0, "rss")]], 2)
    assert calls == ["preload", "fork"]

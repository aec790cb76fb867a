"""Shared fixtures: a temporary site (seeds, output, state) built from the real config."""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient

from feedserver.build import forkcost
from feedserver.build.run import BuildReport, run_build
from feedserver.config import Settings, load_settings
from feedserver.render.formats import rss_atom
from feedserver.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
SEED = "000_cfeb5347e8c7329a.txt"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
# When the bundled seeds "were copied": before NOW, whatever the real date (a copy
# carries the kernel's real time, which a test's pinned NOW may precede).
SEEDED = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


MEMORY_TMP = Path("/dev/shm")  # Linux's tmpfs
MEMORY_TMP_FREE = 2 * 1024**3  # bytes it must have free to hold the tests' folders


def pytest_configure(config: pytest.Config) -> None:
    """Temporary folders in memory (tmpfs) when the machine has one and TMPDIR is not set.

    The tests build sites by the hundred, and a build writes a file per feed, page and
    record: on this project's CI disk a file costs about 0.27 ms to create and rename
    into place, on tmpfs 0.03 ms (measured), and the suite's time is most of CI's
    10 minutes.  The code under test is the same (the same calls, fsync included);
    what a disk costs is for ``benchmarks/``.  The servers and builds the tests start
    inherit TMPDIR.  Set TMPDIR to keep them anywhere else.
    """
    if os.environ.get("TMPDIR") or not MEMORY_TMP.is_dir() or \
            not os.access(MEMORY_TMP, os.W_OK | os.X_OK):
        return
    stats = os.statvfs(MEMORY_TMP)
    if stats.f_bavail * stats.f_frsize >= MEMORY_TMP_FREE:
        os.environ["TMPDIR"] = str(MEMORY_TMP)
        tempfile.tempdir = None  # gettempdir() looks again, and finds TMPDIR


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """A copy of the bundled seeds and config.toml in a temporary folder."""
    shutil.copytree(ROOT / "seeds", tmp_path / "seeds")
    for copied in (tmp_path / "seeds").rglob("*"):
        os.utime(copied, (SEEDED.timestamp(), SEEDED.timestamp()))
    # Tests fetch one feed many times from one address: the poll budget (429s) has its
    # own tests, which set it through the environment (it wins over the file).
    config = (ROOT / "config.toml").read_text(encoding="utf-8")
    (tmp_path / "config.toml").write_text("poll_budget = 0\n" + config, encoding="utf-8")
    return tmp_path


@pytest.fixture
def settings(site_dir: Path) -> Settings:
    # Flask-client tests fetch one feed in full many times from one address: the poll
    # budget is off here and has tests of its own (test_politeness, test_polling_e2e).
    return load_settings(site_dir / "config.toml", env={"FEEDSERVER_POLL_BUDGET": "0"})


@pytest.fixture
def build(settings: Settings) -> Callable[..., BuildReport]:
    """Run a build of the temporary site at a fixed `now` (overridable)."""

    def run(now: datetime = NOW, **overrides: Any) -> BuildReport:
        return run_build(settings, now=now, **overrides)

    return run


@pytest.fixture(autouse=True)
def small_enough_to_fork() -> Iterator[None]:
    """Every test process counts as small enough to fork for a small job, whatever it has
    grown to over the tests before (a worker passes 256 MiB): a build's helper programs
    (feedserver.build.helper) are for the tests that set ``forkcost.RESIDENT_MAX`` low.
    A patch of its own: the test's ``monkeypatch`` must be undone in the test's order."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(forkcost, "RESIDENT_MAX", 1 << 50)
        yield


@pytest.fixture
def app(build: Callable[..., BuildReport], settings: Settings) -> Flask:
    """The web app over a freshly built temporary site (Flask test client units)."""
    report = build()
    assert report.published and not report.errors
    return create_app({"FEEDSERVER_SETTINGS": settings})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def entries_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many items feedparser reads in this process (the gate's parses), from now on:
    what a kept reading spares it is counted here."""
    read = [0]
    parse = rss_atom._parse

    def counting(body: bytes, media_type: str) -> Any:
        parsed = parse(body, media_type)
        read[0] += len(parsed.entries)
        return parsed

    monkeypatch.setattr(rss_atom, "_parse", counting)
    yield read


# The real clock's hour when the tests started: every call of recent() in one run gives
# the same text, so writing "the same" article twice never changes its date.
_STARTED = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def recent(days: float = 7) -> str:
    """A front matter date ``days`` before the real clock's now (this run's hour): an
    article a test served by a process on the real clock (scheduler, serve, watch) must
    be due on any date, also a year before or after the bundled seeds' dates."""
    return (_STARTED - timedelta(days=days)).isoformat()


def due_by_now(seeds: Path) -> None:
    """Move the copied seeds' front matter dates back by whole years while the real clock
    is before them (NOW), for a test served by a process on the real clock; on any later
    date nothing changes."""
    now, years = datetime.now(UTC), 0
    while NOW - timedelta(days=366 * years) > now:
        years += 1
    if years:
        for path in seeds.rglob("*.md"):
            text = re.sub(r"^(date|updated)(\s*[:=]\s*)(\d{4})",
                          lambda m: f"{m[1]}{m[2]}{int(m[3]) - years}",
                          path.read_text(encoding="utf-8"), flags=re.MULTILINE)
            path.write_text(text, encoding="utf-8")


def parse_feed(path: Path) -> Any:
    """feedparser over the file's bytes (never a path string: it could fetch)."""
    media = {".rss": "application/rss+xml", ".atom": "application/atom+xml"}[path.suffix]
    return feedparser.parse(io.BytesIO(path.read_bytes()), response_headers={"content-type": media})


def write(path: Path, text: str | bytes, mtime: float | None = None) -> Path:
    """Write an article file, creating folders; optionally set its mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under ``tests/system`` (real servers, processes, browsers, faults) is
    ``slow``: ``pytest -m "not slow"`` runs the unit and integration tests alone."""
    system = Path(__file__).resolve().parent / "system"
    for item in items:
        if system in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.slow)


def misread_title(monkeypatch: pytest.MonkeyPatch, title: str, shown: str) -> Callable[[], None]:
    """feedparser reading the item titled ``title`` as ``shown`` (a reader that sees it
    otherwise: the gate must leave that item out); forked build workers inherit it.
    Returns what puts the real parser back, to read the output with."""
    real = feedparser.parse

    def quirky(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        for entry in result.entries:
            if entry.get("title") == title:
                entry["title"] = shown
        return result

    monkeypatch.setattr(feedparser, "parse", quirky)
    return lambda: monkeypatch.setattr(feedparser, "parse", real)

"""A web worker's computed answers take the readings the build kept in the state folder
(feedserver/publish/readings_store.py; those its item records carry are set aside here):
an item the build had feedparser read, in the
context it is served in, is not read again by a worker that has never seen it; the
answer is the same, byte for byte, as one that reads every item; and the worker never
writes the store, nor takes readings that are damaged or of another version of the code.
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
from pathlib import Path

import feedparser
import pytest

from feedserver.build.run import run_build
from feedserver.config import Settings, load_settings
from feedserver.publish import readings_store
from feedserver.publish.readings_store import ReadingsStore
from feedserver.web.app import create_app
from tests.query_site import MAX_ITEMS, newest_first, seeds, write_site

BASE = "http://127.0.0.1:8000/"
# A combined channel, a search across the whole history (archive pages included), a
# filtered topic feed, in the two XML formats feedparser reads at the gate.
URLS = ("/topics/alpha,beta/feed.atom", "/feed.rss?limit=4&q=pipeline",
        "/topics/gamma/feed.atom?limit=2", "/topics/beta+gamma/feed.rss")


@pytest.fixture(autouse=True)
def store_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The readings an item record carries (``Engine._learn``) left untaken: these tests
    are of the store alone (the records' readings: tests/integration/test_query_web.py)."""
    from feedserver.query.answer import Engine

    monkeypatch.setattr(Engine, "_learn", lambda self, made, fmt: None)


@pytest.fixture
def built(tmp_path: Path) -> Settings:
    settings = load_settings(write_site(tmp_path, BASE), env={})
    report = run_build(settings)
    assert report.published and not report.errors, report.problems
    return settings


def _store(settings: Settings) -> Path:
    return Path(settings.state_dir) / readings_store.FILENAME


def answers(settings: Settings, urls: tuple[str, ...] = URLS) -> list[bytes]:
    """What a worker started now serves for ``urls`` (a new app: nothing read yet)."""
    client = create_app({"FEEDSERVER_SETTINGS": settings}).test_client()
    bodies = []
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, (url, response.data[:300])
        bodies.append(response.data)
    return bodies


def every_item_read(monkeypatch: pytest.MonkeyPatch, settings: Settings,
                    entries_read: list[int]) -> tuple[list[bytes], int]:
    """The answers of a worker without the store, and how many items feedparser read."""
    with monkeypatch.context() as patch:
        patch.setattr(ReadingsStore, "get", lambda self, key: None)
        entries_read[0] = 0
        bodies = answers(settings)
        return bodies, entries_read[0]


def test_a_new_worker_reads_no_item_the_build_read(
        built: Settings, monkeypatch: pytest.MonkeyPatch, entries_read: list[int]) -> None:
    entries_read[0] = 0
    taken = answers(built)
    assert entries_read[0] == 0  # only the envelopes around them
    reference, read = every_item_read(monkeypatch, built, entries_read)
    assert read >= len(URLS)
    assert taken == reference
    parsed = feedparser.parse(io.BytesIO(taken[0]))
    assert not parsed.bozo
    assert [e.title for e in parsed.entries] == [
        s.title for s in newest_first([s for s in seeds() if {"alpha", "beta"} & set(s.topics)])
    ][:MAX_ITEMS]


def content(store: Path) -> str:
    """A digest of every row and of the version the table is of."""
    h = hashlib.sha256()
    with sqlite3.connect(store) as db:
        for table in ("readings", "meta"):
            for row in db.execute(f"SELECT * FROM {table} ORDER BY 1"):
                h.update(repr(row).encode())
    db.close()
    return h.hexdigest()


def test_the_worker_never_writes_the_store(
        built: Settings, monkeypatch: pytest.MonkeyPatch, entries_read: list[int]) -> None:
    store = _store(built)
    before = content(store)
    answers(built)
    assert content(store) == before
    with pytest.raises(PermissionError):
        ReadingsStore(built.state_dir, writes=False).add({})
    store.unlink()
    reference, _ = every_item_read(monkeypatch, built, entries_read)
    entries_read[0] = 0
    assert answers(built) == reference  # no store: every item read, nothing lost
    assert entries_read[0] > 0
    assert not store.exists()  # and none made


def test_a_damaged_reading_is_read_again(
        built: Settings, monkeypatch: pytest.MonkeyPatch, entries_read: list[int]) -> None:
    with sqlite3.connect(_store(built)) as db:  # one byte of every reading changed
        db.execute("UPDATE readings SET value = substr(value, 1, length(value) - 1) "
                   "|| CASE WHEN substr(value, -1) = X'00' THEN X'01' ELSE X'00' END")
    db.close()
    reference, read = every_item_read(monkeypatch, built, entries_read)
    entries_read[0] = 0
    assert answers(built) == reference
    assert entries_read[0] == read


def test_another_versions_readings_are_neither_taken_nor_emptied(
        built: Settings, monkeypatch: pytest.MonkeyPatch, entries_read: list[int]) -> None:
    with sqlite3.connect(_store(built)) as db:
        db.execute("UPDATE meta SET value = 'another version' WHERE name = 'code'")
        rows = db.execute("SELECT count(*) FROM readings").fetchone()[0]
    db.close()
    reference, read = every_item_read(monkeypatch, built, entries_read)
    entries_read[0] = 0
    assert answers(built) == reference
    assert entries_read[0] == read
    with sqlite3.connect(_store(built)) as db:
        assert db.execute("SELECT count(*) FROM readings").fetchone()[0] == rows
        assert db.execute("SELECT value FROM meta").fetchone()[0] == "another version"
    db.close()


def test_a_store_made_after_the_worker_started_is_taken_at_the_next_publish(
        built: Settings, entries_read: list[int]) -> None:
    store = _store(built)
    aside = store.with_suffix(".aside")
    store.rename(aside)
    client = create_app({"FEEDSERVER_SETTINGS": built}).test_client()
    assert client.get(URLS[0]).status_code == 200  # no store yet: read by feedparser
    aside.rename(store)
    edited = next(Path(built.seeds_dir).glob("*.md"))
    edited.write_text(edited.read_text(encoding="utf-8") + "One line more.\n",
                      encoding="utf-8")
    assert run_build(built).published  # a new publish (it adds the edited item's readings)
    entries_read[0] = 0
    for url in URLS[1:]:
        assert client.get(url).status_code == 200
    assert entries_read[0] == 0


def test_many_apps_in_one_process_hold_one_readers_descriptors(built: Settings) -> None:
    """Apps are garbage only when the collector finds their reference cycles: a reader per
    app kept its descriptors until then (the test suite ran out of them)."""
    import gc
    import os

    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    answers(built, URLS[:1])
    before = descriptors()
    gc.disable()
    try:
        for _ in range(30):
            answers(built, URLS[:1])
        grown = descriptors() - before
    finally:
        gc.enable()
    assert grown <= 3

"""The SQLite ledger: stable ids, slugs and dates, plus the parse cache.

An article's id is minted once, the first time its file is seen, and kept
forever: edits, title changes, reformatting and renames (same content, new
path) never change it, so no reader ever shows a duplicate.  The ledger also
remembers when content *significantly* changed (its fingerprint, which ignores
whitespace and debris), and the last good parse of every file, so a file that
turns bad keeps its last good version published and an unchanged file is not
read again.  Every write is one transaction in WAL mode; a crash leaves the
previous state.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from feedserver.core.errors import FeedserverError
from feedserver.core.fieldwise import Codec
from feedserver.core.records import Body, Identity, Stub
from feedserver.identify.rules import BODY, ID, Book, Kept

log = logging.getLogger(__name__)
T = TypeVar("T")
SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    path TEXT UNIQUE,
    last_path TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    changed TEXT NOT NULL,
    gone TEXT
);
CREATE INDEX IF NOT EXISTS articles_fingerprint ON articles (fingerprint);
-- Each article's body print (feedserver.parse.article.body_print): a table of its own,
-- so that the articles table keeps the columns an older feedserver writes.
CREATE TABLE IF NOT EXISTS bodies (id TEXT PRIMARY KEY, print TEXT NOT NULL);
DROP TABLE IF EXISTS files;
CREATE TABLE IF NOT EXISTS sources (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    settings TEXT NOT NULL,
    layout TEXT NOT NULL,
    stub BLOB NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# PRAGMA user_version: bump when the sources table's columns change.  Not when a record
# gains a field: each row names the layout of the records it holds (see Records).
CACHE_FORMAT = 3
_COLUMNS = ("id", "path", "last_path", "slug", "fingerprint", "first_seen", "changed", "gone")
# The book's rows: the articles' columns and the body print (NULL until a build learns it).
_READ = (f"SELECT {', '.join('a.' + c for c in _COLUMNS)}, b.print FROM articles a "
         "LEFT JOIN bodies b ON b.id = a.id ORDER BY a.rowid")


class LedgerBusy(FeedserverError):
    """Another process kept the ledger locked for longer than we were willing to wait."""


@dataclass(frozen=True, slots=True)
class CachedFile:
    """The last good parse of a file (its stub) and the stat/hash it was made from."""

    size: int
    mtime_ns: int
    sha256: str
    settings: str
    stub: Stub


class Records:
    """How the parse cache stores a file's stub and body: by their dataclass fields.

    A row holds each record as the JSON list of its field values
    (:class:`~feedserver.core.fieldwise.Codec`) and the ``layout`` of both, a
    hash of their field names and types.  A row of another layout (written
    before a field was added, or by another version) is a cache miss: the file
    is parsed again and the row replaced.
    """

    def __init__(self, stub: type[Stub] = Stub, body: type[Body] = Body) -> None:
        self.stub, self.body = Codec(stub), Codec(body)
        self.layout = f"{self.stub.layout}/{self.body.layout}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


_RECORDS = Records()


def _locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class Ledger:
    """One SQLite database in WAL mode; use as a context manager to close it.

    Every unit of work is one transaction.  When another process holds the
    database locked, a unit is retried with exponential backoff for up to
    ``patience`` seconds (each attempt waits ``timeout`` seconds in SQLite's
    own busy handler) before :class:`LedgerBusy` says so; the scheduler then
    simply runs again at its next interval.  ``records`` says how the parse
    cache stores stubs and bodies (tests give it records with more fields).
    """

    records: Records = _RECORDS  # class defaults: a subclass may open its own database
    _stale: Collection[str] = frozenset()  # rows of another layout, gone at the next write

    def __init__(self, path: Path, timeout: float = 2.0, patience: float = 180.0,
                 records: Records | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.patience = patience
        if records is not None:
            self.records = records
        self.db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        try:
            self._retry(self._setup)
        except BaseException:
            self.db.close()
            raise

    def _setup(self) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        if self.db.execute("PRAGMA user_version").fetchone()[0] < CACHE_FORMAT:
            # The parse cache is only a cache: an older layout is dropped and refilled.
            self.db.execute("DROP TABLE IF EXISTS sources")
            self.db.execute(f"PRAGMA user_version = {CACHE_FORMAT}")
        self.db.executescript(SCHEMA)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def _retry(self, unit: Callable[[], T]) -> T:
        """Run ``unit``; while the database is locked, wait and try again."""
        deadline = time.monotonic() + self.patience
        pause = 0.05
        while True:
            try:
                return unit()
            except sqlite3.OperationalError as exc:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                if not _locked(exc):
                    raise
                if time.monotonic() + pause > deadline:
                    raise LedgerBusy(f"{self.path} stayed locked by another process for "
                                     f"{self.patience:.0f}s; will try again") from None
                log.warning("ledger %s is locked (%s); retrying in %.2fs", self.path, exc, pause)
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

    def _write(self, unit: Callable[[], T]) -> T:
        """``unit`` inside BEGIN IMMEDIATE ... COMMIT, retried while locked."""
        def attempt() -> T:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                result = unit()
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
            return result
        return self._retry(attempt)

    # -- parse cache -----------------------------------------------------------------------

    def cached_files(self) -> dict[str, CachedFile]:
        """Every file's last good stub and the stat it was made from (no content).

        A row of another layout is left out (a miss: the file is parsed again)
        and deleted at the next :meth:`store_files`.
        """
        layout, load = self.records.layout, self.records.stub.load

        def read() -> dict[str, CachedFile]:
            rows = self.db.execute("SELECT path, size, mtime_ns, sha256, settings, layout, stub "
                                   "FROM sources")
            found, stale = {}, set()
            for path, size, mtime, sha, settings, shape, data in rows:
                stub = load(data) if shape == layout else None
                if stub is None:
                    stale.add(path)
                else:
                    found[path] = CachedFile(size, mtime, sha, settings, stub)
            self._stale = stale
            return found
        return self._retry(read)

    def bodies(self, paths: Iterable[str] | None = None) -> dict[str, Body]:
        """The content of the given files (all cached files when ``paths`` is None);
        a row of another layout has none."""
        layout, load = self.records.layout, self.records.body.load

        def loaded(rows: Iterable[tuple[str, bytes]]) -> dict[str, Body]:
            return {path: body for path, data in rows if (body := load(data)) is not None}

        def read() -> dict[str, Body]:
            if paths is None:
                return loaded(self.db.execute("SELECT path, body FROM sources WHERE layout = ?",
                                              (layout,)))
            found: dict[str, Body] = {}
            wanted = list(paths)
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                found.update(loaded(self.db.execute(
                    "SELECT path, body FROM sources WHERE layout = ? "
                    f"AND path IN ({', '.join('?' * len(chunk))})", [layout, *chunk])))
            return found
        return self._retry(read)

    def store_files(self, rows: Iterable[tuple[str, CachedFile, Body]],
                    removed: Iterable[str] = (),
                    touched: Mapping[str, tuple[int, int]] | None = None) -> str:
        """Record new parses, new stats of unchanged bytes and forget removed files
        (and rows of another layout that :meth:`cached_files` left out).

        One transaction.  Returns the cache's generation after the write (see
        :meth:`generation`).
        """
        records = self.records
        dump_stub, dump_body, layout = records.stub.dump, records.body.dump, records.layout
        gone = [(p,) for p in removed]
        parses = list(rows)
        # Encoded row by row as SQLite takes them: a batch's encoded bodies are never all
        # held at once (a cold build's peak memory), and a retried unit encodes anew.
        def values() -> Iterator[tuple[object, ...]]:
            for p, c, b in parses:
                yield p, c.size, c.mtime_ns, c.sha256, c.settings, layout, dump_stub(c.stub), \
                    dump_body(b)

        stats = [(size, mtime, p) for p, (size, mtime) in (touched or {}).items()]
        stale = [(p, layout) for p in self._stale]

        def write() -> str:
            self.db.executemany("DELETE FROM sources WHERE path = ?", gone)
            self.db.executemany("DELETE FROM sources WHERE path = ? AND layout != ?", stale)
            self.db.executemany("UPDATE sources SET size = ?, mtime_ns = ? WHERE path = ?", stats)
            self.db.executemany("INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                values())
            if gone or stats or parses or stale:
                self.db.execute("INSERT INTO meta VALUES ('generation', 1) ON CONFLICT(key) "
                                "DO UPDATE SET value = CAST(value AS INTEGER) + 1")
            row = self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            return str(row[0]) if row else "0"
        result = self._write(write)
        self._stale = frozenset()
        return result

    def generation(self) -> str:
        """Changes whenever any process changes the parse cache (see :class:`Warm`)."""
        return self.get_meta("generation") or "0"

    # -- identities ------------------------------------------------------------------------

    def reconcile(self, parsed: Mapping[str, Stub], present: set[str],
                  seen_at: Mapping[str, datetime], now: datetime,
                  moves: Mapping[str, str] | None = None,
                  kept: Kept | None = None) -> dict[str, Identity]:
        """Identities for every parsed file, minting, moving and retiring as needed.

        ``present`` holds every article path on disk, parsable or not: a file
        that exists but fails to parse is not gone.  ``seen_at`` gives each
        path's modification time, used (capped at ``now``) as the first-seen
        and changed times, so an imported archive keeps its order.  The whole
        table is read once and only the rows that change are written back;
        with ``kept`` (a long-lived process), not even read while no other
        process changed it.
        """
        def unit() -> tuple[dict[str, Identity], Book, str]:
            generation = self._meta_in_transaction("identities")
            book = kept.book if kept is not None and kept.generation == generation else None
            if kept is not None:
                kept.book = None  # until this transaction commits
            if book is None:
                book = Book(self.db.execute(_READ), moves)
            else:
                book.begin(moves)
            book.depart(present, _iso(now))
            result = book.identify_all(parsed, lambda path: min(seen_at.get(path, now), now))
            if book.touched():
                save_rows(self.db, *book.changes())
                self.db.execute("INSERT INTO meta VALUES ('identities', 1) ON CONFLICT(key) "
                                "DO UPDATE SET value = CAST(value AS INTEGER) + 1")
                generation = self._meta_in_transaction("identities")
            return result, book, generation
        result, book, generation = self._write(unit)
        if kept is not None:
            kept.book, kept.generation = book, generation
        return result

    def _meta_in_transaction(self, key: str) -> str:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else "0"

    # -- meta --------------------------------------------------------------------------------

    def created(self, now: datetime) -> datetime:
        """When this state's first build ran (``now`` the first time it is asked, kept from
        then on): what dates a site with nothing published, which no article dates, so
        that its feeds say something plausible and stay the same bytes build after build."""
        kept = self.get_meta("created")
        if kept is None:
            self._write(lambda: self.db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('created', ?)", (_iso(now),)))
            kept = self.get_meta("created") or _iso(now)
        return datetime.fromisoformat(kept)

    def get_meta(self, key: str) -> str | None:
        row = self._retry(lambda: self.db.execute("SELECT value FROM meta WHERE key = ?",
                                                  (key,)).fetchone())
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._write(lambda: self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                            (key, value)))


def save_rows(db: sqlite3.Connection, changed: list[list[str | None]],
              new: list[list[str | None]]) -> None:
    """Write an identity book's changed and new rows (inside the caller's transaction)."""
    # Free every unique value first, so two rows trading a path or slug never clash.
    db.executemany("UPDATE articles SET path = NULL, slug = id WHERE id = ?",
                   [(row[0],) for row in changed])
    db.executemany("UPDATE articles SET path = ?, last_path = ?, slug = ?, fingerprint = ?, "
                   "first_seen = ?, changed = ?, gone = ? WHERE id = ?",
                   [(*row[1:BODY], row[0]) for row in changed])
    db.executemany(f"INSERT INTO articles ({', '.join(_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   [row[:BODY] for row in new])
    db.executemany("INSERT INTO bodies VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET print = "
                   "excluded.print", [(row[ID], row[BODY]) for row in (*changed, *new)
                                      if row[BODY] is not None])

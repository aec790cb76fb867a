"""The gate's readings kept between processes, in ``<state_dir>/readings.sqlite3``.

The gate parses an item fragment with feedparser once, in the context it is served in,
and keeps what feedparser read (:class:`~feedserver.render.formats.base.Seen`) under the
digest of that context and the fragment's exact bytes
(:mod:`feedserver.render.formats.readings`).  In memory that lasts as long as the
process: a ``feedserver build`` after one edit, or a scheduler's first build after a
restart, had feedparser read again every item of every channel it re-renders, items no
byte of which had changed.  Here the readings outlive the process.

What a row may be trusted for:

* its key is the gate's own digest of the exact bytes and their context, so a fragment
  that differs by one byte, or sits in another context, finds nothing;
* the table holds the readings of one version of the code that makes them (feedparser,
  the gate's modules and this one, hashed as for channel signatures, with Python's and
  expat's versions: :data:`MODULES`): a store of another version is emptied when it is
  opened.  A new version of the renderers alone keeps them: it re-renders every channel,
  and feedparser reads only the items whose bytes it changed;
* each value carries a checksum of its key and its bytes, and a value that fails it, or
  does not decode to a reading's shape, is a miss: feedparser reads the fragment again.

A miss never costs more than feedparser's reading, and a store that cannot be opened or
read (a read-only state folder, a damaged file) is no store: the build goes on as if
there were none, reading everything, and says so once in the log.  Only the build's own
process writes, once per publish, the readings it and its workers made; the workers
read, each through a connection of its own (a connection never crosses a fork).  Rows are
kept newest written first, :data:`KEEP` at most.

The web workers read it too (``writes=False``): a combined or filtered answer lists items
the worker has never drawn, and the build has had feedparser read nearly every one of
them, in the same context, in a published channel or archive page.  A reader opens the
file read-only and never creates, empties or writes it; it takes rows only when the
table is of its own code's version; a missing or unreadable store, or a busy moment, is
a miss, and :meth:`ReadingsStore.refresh` (at each publish) looks again.  The table is in
WAL mode, so a build's write never makes a reader wait.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import pyexpat
import sqlite3
import sys
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import quote

from feedserver.publish.codedigest import digest
from feedserver.render.formats.base import Seen
from feedserver.render.formats.readings import pack, unpack

log = logging.getLogger(__name__)

FILENAME = "readings.sqlite3"
# Rows kept: two readings (RSS and Atom) of every item of a 10,000-article site, twice
# over, for the contexts and the edits since (about 0.2 kB a row).
KEEP = 80_000
CHECK = 8  # bytes of BLAKE2b over key and value, before the value
# How long a web worker's lookup may wait for the file (seconds): a request is waiting.
READER_TIMEOUT = 0.2
# Readers a process keeps open (one per state folder: see :func:`reader`).
READERS = 4

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (key BLOB PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


# What makes a reading and its key, and nothing else: feedparser as the gate sets it up
# and calls it, what the gate takes from its entries, how the items' context is found and
# keyed, this module (the stored form) and how the code is hashed (codedigest).  Not the
# renderers: a new version of them re-renders every channel (their signatures change)
# but an item drawn to the same bytes in the same context is read the same, so those
# readings still hold.
MODULES = ("render/formats/gate_parser.py", "render/formats/rss_atom.py",
           "render/formats/base.py", "render/formats/enclosures.py",
           "render/formats/xml_items.py", "render/formats/readings.py",
           "publish/readings_store.py", "publish/codedigest.py")
# feedparser guesses an encoding with cchardet or chardet when they are installed (it
# imports whichever it finds), so their versions are part of what it reads.
LIBRARIES = ("feedparser", "sgmllib3k", "cchardet", "chardet")


def code_version() -> str:
    """The version of the code that makes readings (:data:`MODULES`, :data:`LIBRARIES`)
    and of the Python and expat that run it."""
    return _version(MODULES, LIBRARIES)


@functools.cache
def _version(modules: tuple[str, ...], libraries: tuple[str, ...]) -> str:
    """Computed once per process, as :mod:`~feedserver.build.codeversion`'s are (a few
    files read, a few installed versions looked up: 2-5 ms)."""
    return hashlib.sha256(f"{digest(modules, libraries)}\0{sys.version}\0"
                          f"{pyexpat.EXPAT_VERSION}".encode()).hexdigest()[:24]


def encode(key: bytes, seen: Seen, canonical: bool = False) -> bytes | None:
    """The stored form of a reading, or None for one of a shape the store does not keep
    (it stays in memory only); ``canonical``: as :func:`pack` says."""
    payload = pack(seen, canonical)
    return _check(key, payload) + payload if payload is not None else None


def decode(key: bytes, value: bytes) -> Seen | None:
    """A stored reading, or None when its checksum or its shape is wrong."""
    payload = value[CHECK:]
    if value[:CHECK] != _check(key, payload):
        return None
    return unpack(payload)


def _check(key: bytes, payload: bytes) -> bytes:
    return hashlib.blake2b(key + b"\0" + payload, digest_size=CHECK).digest()


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (the connection is in autocommit mode otherwise)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class ReadingsStore:
    """The table, opened lazily in each process that asks (see the module's docstring).

    ``writes=False`` makes a reader (a web worker's): see :meth:`refresh`.  A writer is
    one in the process that made it: a fork of that process (a build's worker) reads,
    through a read-only connection of its own, and never makes the file.  Forks opening
    a new file as writers beside the build's own process lost to it ("database is
    locked", at ``PRAGMA journal_mode=WAL``) in most cold builds of a few articles.
    """

    def __init__(self, state_dir: str | Path, code: str | None = None,
                 writes: bool = True) -> None:
        self.path = Path(state_dir) / FILENAME
        self.code = code or code_version()
        self.writes = writes
        self._owner = os.getpid()  # the process that may write (see the class)
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        self._inherited: list[sqlite3.Connection] = []  # never closed in a child
        self._broken = False
        self._empty = False  # nothing stored at opening: no lookup is worth making

    def get(self, key: bytes) -> Seen | None:
        """The reading kept under ``key``, or None."""
        db = self._connection()
        if db is None or self._empty:
            return None
        try:
            row = db.execute("SELECT value FROM readings WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            self._give_up(exc)
            return None
        return decode(key, row[0]) if row is not None else None

    def add(self, found: Mapping[bytes, Seen],
            packed: Mapping[bytes, bytes] | None = None) -> int:
        """Keep ``found`` (the readings a build made) and ``packed`` (readings as
        :func:`~feedserver.render.formats.readings.pack` made them), and drop the oldest
        rows past :data:`KEEP`; how many were written."""
        if not self._writer():
            raise PermissionError(f"{self.path} is opened to read only here")
        rows = [(key, value) for key, seen in found.items()
                if (value := encode(key, seen)) is not None]
        rows += [(key, _check(key, payload) + payload)
                 for key, payload in (packed or {}).items()]
        db = self._connection()
        if db is None or not rows:
            return 0
        try:
            with _transaction(db):
                db.executemany("INSERT OR REPLACE INTO readings (key, value) VALUES (?, ?)",
                               rows)
                db.execute("DELETE FROM readings WHERE rowid <= "
                           "(SELECT max(rowid) FROM readings) - ?", (KEEP,))
        except sqlite3.Error as exc:
            self._give_up(exc)
            return 0
        self._empty = False
        return len(rows)

    def ready(self) -> None:
        """Open now: the build's own process, before it forks, so that the file and its
        WAL mode are made before any worker reads it."""
        self._connection()

    def refresh(self) -> None:
        """A reader's look again, at a publish: the store may have been made, replaced
        or written since, or been unreadable a moment ago.  (A writer keeps its state:
        it is the one that changes the file.)"""
        if not self.writes:
            self.close()
            self._broken = False

    def close(self) -> None:
        if self._db is not None and self._pid == os.getpid():
            self._db.close()
        self._db = None

    def _connection(self) -> sqlite3.Connection | None:
        if self._broken:
            return None
        if self._db is not None and self._pid == os.getpid():
            return self._db
        if self._db is not None:  # the parent's, forked: left alone, never used here
            self._inherited.append(self._db)
            self._db = None
        try:
            self._db = self._open() if self._writer() else self._open_to_read()
        except (OSError, sqlite3.Error, LookupError) as exc:
            self._give_up(exc)
            return None
        self._pid = os.getpid()
        return self._db

    def _writer(self) -> bool:
        return self.writes and os.getpid() == self._owner

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a write
            db.executescript(SCHEMA)
            with _transaction(db):
                row = db.execute("SELECT value FROM meta WHERE name = 'code'").fetchone()
                if row is None or row[0] != self.code:  # another version's readings
                    db.execute("DELETE FROM readings")
                    db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('code', ?)",
                               (self.code,))
            self._empty = db.execute("SELECT 1 FROM readings LIMIT 1").fetchone() is None
        except BaseException:
            db.close()
            raise
        return db

    def _open_to_read(self) -> sqlite3.Connection:
        """The file as it is, read-only; no connection when it holds another version's
        readings (a worker of older code while the build runs newer, or the reverse)."""
        if not self.path.is_file():
            raise FileNotFoundError(f"no {FILENAME} yet")
        db = sqlite3.connect(f"file:{quote(str(self.path))}?mode=ro", uri=True,
                             timeout=READER_TIMEOUT, isolation_level=None,
                             check_same_thread=False)
        try:
            row = db.execute("SELECT value FROM meta WHERE name = 'code'").fetchone()
            if row is None or row[0] != self.code:
                raise LookupError(f"readings of another version of the code ({self.code} "
                                  f"here, {row[0] if row else 'none'} there)")
            self._empty = db.execute("SELECT 1 FROM readings LIMIT 1").fetchone() is None
        except BaseException:
            db.close()
            raise
        return db

    def _give_up(self, exc: BaseException) -> None:
        """No store (for a writer: for the rest of this process; for a reader: until its
        next :meth:`refresh`): every fragment is read by feedparser."""
        if not self._writer():
            log.debug("readings store %s not read (%s): feedparser reads new items",
                      self.path, exc)
        elif not self._broken:
            log.warning("readings store %s unusable (%s): feedparser reads every item",
                        self.path, exc)
        self._broken = True


_READERS: OrderedDict[tuple[int, Path], ReadingsStore] = OrderedDict()


def reader(state_dir: str | Path) -> ReadingsStore:
    """This process's reader of ``state_dir``'s store, shared by every engine that asks.

    A web worker makes one app, so one engine and one reader.  A process that makes many
    apps (the tests, an app factory called per request by some host) would otherwise
    keep a connection (two or three descriptors, in WAL mode) per app until the garbage
    collector found the app's reference cycles: past 1,024 descriptors, ``select()``
    fails.  Here a state folder has one reader per process, and past :data:`READERS`
    folders the least recently asked is closed (it opens again at its next lookup).
    """
    key = (os.getpid(), Path(state_dir).resolve())
    found = _READERS.get(key)
    if found is None:
        found = _READERS[key] = ReadingsStore(state_dir, writes=False)
        while len(_READERS) > READERS:
            _READERS.popitem(last=False)[1].close()
    else:
        _READERS.move_to_end(key)
    return found

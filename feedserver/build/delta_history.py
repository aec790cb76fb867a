"""The versions of each feed a poller may still hold: what RFC 3229 deltas start from.

A client polling with ``A-IM: feed`` sends the ETag of the version it holds; the
build can only make it a delta if it remembers what that version listed.  So, per
feed file, the last ``keep`` published versions are kept in
``<state_dir>/deltas.sqlite3``: every ETag a client may hold for the version (the
plain body's and each precompressed body's, since a client that asked for gzip
holds the gzip body's ETag) and the items it listed, by id, each with a stamp of
what the item showed (:func:`feedserver.build.deltas.stamp`).

Only the build writes it (under the build lock); the web workers never read it:
they find the deltas the build published through the manifest.  Losing the file
loses nothing but deltas: pollers get the full feed until new versions are seen.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

FILE = "deltas.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    feed TEXT NOT NULL,      -- the feed's output path: feed.atom, topics/x/feed.rss
    seq INTEGER NOT NULL,    -- higher is newer
    etag TEXT NOT NULL,      -- the plain body's ETag
    variants TEXT NOT NULL,  -- JSON list: every ETag a client may hold for this version
    items TEXT NOT NULL,     -- JSON object: item id -> stamp
    PRIMARY KEY (feed, seq)
)
"""


@dataclass(frozen=True)
class Version:
    """One published version of a feed: its ETags and what it listed."""

    etag: str
    variants: tuple[str, ...]
    items: dict[str, str]


class History:
    """The remembered versions of every feed, ``keep`` at most per feed (newest kept).

    Used as a context manager, every record made in the block is one transaction,
    committed when the block ends (rolled back if it raises): a cold build records a
    version of every feed (1,728 at 10,000 articles), and a commit per feed (a journal
    written, synced and removed each time) took 1.7 s in the build's process after the
    publish.  A record made outside a block commits on its own.
    """

    def __init__(self, state_dir: Path | str, keep: int) -> None:
        self.path = Path(state_dir) / FILE
        self.keep = keep
        self._db: sqlite3.Connection | None = None
        self._batched = False

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.execute(_SCHEMA)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> History:
        self._batched = True
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        try:
            if self._db is not None and self._db.in_transaction:
                if kind is None:
                    self._db.commit()
                else:
                    self._db.rollback()
        finally:
            self._batched = False
            self.close()

    def versions(self, feed: str) -> list[Version]:
        """The versions of ``feed`` remembered, newest first (none when unreadable)."""
        try:
            rows = self._connect().execute(
                "SELECT etag, variants, items FROM versions WHERE feed = ? ORDER BY seq DESC",
                (feed,)).fetchall()
        except sqlite3.DatabaseError:
            return []
        found = []
        for etag, variants, items in rows:
            try:
                found.append(Version(etag, tuple(json.loads(variants)), json.loads(items)))
            except ValueError:
                continue  # a damaged row: that version gets the full feed
        return found

    def record(self, feed: str, variants: tuple[str, ...], items: dict[str, str]) -> None:
        """Remember that ``feed`` is now published as ``variants`` (the plain ETag first),
        listing ``items``; the same version seen before moves to the front, and only the
        newest ``keep`` stay."""
        if not variants:
            return
        db = self._connect()
        with contextlib.nullcontext() if self._batched else db:  # a block commits once
            db.execute("DELETE FROM versions WHERE feed = ? AND etag = ?", (feed, variants[0]))
            (top,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM versions WHERE feed = ?",
                                (feed,)).fetchone()
            db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?)",
                       (feed, top + 1, variants[0], json.dumps(list(variants)),
                        json.dumps(items, sort_keys=True, separators=(",", ":"))))
            db.execute("DELETE FROM versions WHERE feed = ? AND seq NOT IN (SELECT seq FROM "
                       "versions WHERE feed = ? ORDER BY seq DESC LIMIT ?)",
                       (feed, feed, self.keep))

    def newest(self, feed: str) -> str | None:
        """The plain ETag of the newest version remembered of ``feed``."""
        try:
            row = self._connect().execute(
                "SELECT etag FROM versions WHERE feed = ? ORDER BY seq DESC LIMIT 1",
                (feed,)).fetchone()
        except sqlite3.DatabaseError:
            return None
        return row[0] if row else None

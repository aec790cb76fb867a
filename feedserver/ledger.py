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

import json
import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .models import Identity, Parsed
from .topics import slugify

ID_NAMESPACE = uuid.UUID("6f1c2f0e-6d55-4c8a-9a57-4b1b3f0d2a10")
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
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    settings TEXT NOT NULL,
    parsed TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class CachedFile:
    """The last good parse of a file and the stat/hash it was made from."""

    size: int
    mtime_ns: int
    sha256: str
    settings: str
    parsed: Parsed


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def dump_parsed(parsed: Parsed) -> str:
    """Parsed -> JSON text (dates as ISO strings) for the cache table."""
    data = asdict(parsed)
    for key in ("date", "updated"):
        if data[key] is not None:
            data[key] = data[key].isoformat()
    return json.dumps(data, ensure_ascii=False)


def load_parsed(text: str) -> Parsed:
    """JSON text from the cache table -> Parsed."""
    data: dict[str, Any] = json.loads(text)
    for key in ("date", "updated"):
        if data[key] is not None:
            data[key] = _dt(data[key])
    data["topics"] = tuple(data["topics"])
    return Parsed(**data)


class Ledger:
    """One SQLite database; use as a context manager to close it."""

    def __init__(self, path: Path, timeout: float = 60.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    # -- parse cache -----------------------------------------------------------------------

    def cached_files(self) -> dict[str, CachedFile]:
        rows = self.db.execute("SELECT path, size, mtime_ns, sha256, settings, parsed FROM files")
        return {path: CachedFile(size, mtime, sha, settings, load_parsed(parsed))
                for path, size, mtime, sha, settings, parsed in rows}

    def store_files(self, rows: dict[str, CachedFile], removed: Iterable[str]) -> None:
        with self._transaction():
            self.db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in removed])
            self.db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                [(p, c.size, c.mtime_ns, c.sha256, c.settings, dump_parsed(c.parsed))
                 for p, c in rows.items()])

    # -- identities ------------------------------------------------------------------------

    def reconcile(self, parsed: dict[str, Parsed], present: set[str],
                  seen_at: dict[str, datetime], now: datetime) -> dict[str, Identity]:
        """Identities for every parsed file, minting, moving and retiring as needed.

        ``present`` holds every article path on disk, parsable or not: a file
        that exists but fails to parse is not gone.  ``seen_at`` gives each
        path's modification time, used (capped at ``now``) as the first-seen
        and changed times, so an imported archive keeps its order.
        """
        with self._transaction():
            rows = {r[0]: r for r in self.db.execute(
                "SELECT id, path, last_path, slug, fingerprint, first_seen, changed, gone "
                "FROM articles")}
            by_path = {r[1]: r[0] for r in rows.values() if r[1] is not None}
            departed = [r for r in rows.values() if r[1] is not None and r[1] not in present]
            for row in departed:
                self.db.execute("UPDATE articles SET path = NULL, gone = ? WHERE id = ?",
                                (_iso(now), row[0]))
                del by_path[row[1]]
            result: dict[str, Identity] = {}
            for path in sorted(parsed):
                item = parsed[path]
                stamp = min(seen_at.get(path, now), now)
                result[path] = self._identify(item, path, stamp, by_path)
            return result

    def _identify(self, item: Parsed, path: str, stamp: datetime,
                  by_path: dict[str, str]) -> Identity:
        current = by_path.get(path)
        if item.explicit_id:
            current = item.explicit_id
        elif current is None:
            current = self._renamed_from(item.fingerprint)
        row = self.db.execute("SELECT id, path, slug, fingerprint, first_seen, changed "
                              "FROM articles WHERE id = ?", (current,)).fetchone() \
            if current else None
        if row is None:
            return self._mint(item, path, stamp, by_path)
        ident, old_path, slug, fingerprint, first_seen, changed = row
        if old_path != path:
            if path in by_path and by_path[path] != ident:
                self.db.execute("UPDATE articles SET path = NULL WHERE id = ?", (by_path[path],))
            self.db.execute("UPDATE articles SET path = ?, last_path = ?, gone = NULL "
                            "WHERE id = ?", (path, path, ident))
            by_path[path] = ident
        if fingerprint != item.fingerprint:
            changed = _iso(stamp)
            self.db.execute("UPDATE articles SET fingerprint = ?, changed = ? WHERE id = ?",
                            (item.fingerprint, changed, ident))
        if item.explicit_slug and slugify(item.explicit_slug) not in ("", slug):
            slug = self._free_slug(slugify(item.explicit_slug), ident)
            self.db.execute("UPDATE articles SET slug = ? WHERE id = ?", (slug, ident))
        return Identity(ident, slug, _dt(first_seen), _dt(changed))

    def _renamed_from(self, fingerprint: str) -> str | None:
        """An article that left its path with exactly this content: a rename."""
        row = self.db.execute("SELECT id FROM articles WHERE path IS NULL AND fingerprint = ? "
                              "ORDER BY gone DESC LIMIT 1", (fingerprint,)).fetchone()
        return row[0] if row else None

    def _mint(self, item: Parsed, path: str, stamp: datetime,
              by_path: dict[str, str]) -> Identity:
        ident = item.explicit_id or self._free_id(path)
        slug = self._free_slug(slugify(item.explicit_slug or item.title) or "article", ident)
        if path in by_path:
            self.db.execute("UPDATE articles SET path = NULL WHERE id = ?", (by_path[path],))
        self.db.execute("INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                        (ident, path, path, slug, item.fingerprint, _iso(stamp), _iso(stamp)))
        by_path[path] = ident
        moment = _dt(_iso(stamp))
        return Identity(ident, slug, moment, moment)

    def _free_id(self, path: str) -> str:
        """A URN derived from the path it was first seen at; never reused."""
        for attempt in range(1_000_000):
            name = path if attempt == 0 else f"{path}#{attempt}"
            candidate = f"urn:uuid:{uuid.uuid5(ID_NAMESPACE, name)}"
            if not self.db.execute("SELECT 1 FROM articles WHERE id = ?",
                                   (candidate,)).fetchone():
                return candidate
        raise RuntimeError("no free id")  # pragma: no cover - a million collisions

    def _free_slug(self, wanted: str, ident: str) -> str:
        slug, n = wanted, 1
        while True:
            owner = self.db.execute("SELECT id FROM articles WHERE slug = ?", (slug,)).fetchone()
            if owner is None or owner[0] == ident:
                return slug
            n += 1
            slug = f"{wanted}-{n}"

    # -- meta --------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")

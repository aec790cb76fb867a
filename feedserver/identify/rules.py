"""The ledger's identity rules, worked out in memory over the whole ``articles`` table.

The ledger reads every row once, this book applies the rules (a path keeps its
id; an explicit id wins; a new path whose fingerprint matches an article that
left its path is a rename; otherwise a new id and slug are minted), and only
the rows that changed are written back (by the ledger: the book only says which,
:meth:`Book.changes`).  One query per article made an incremental build of
10,000 files spend its time in SQLite round trips.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import partial

from feedserver.core.records import Identity, Stub
from feedserver.core.slugs import is_device_name, slugify
from feedserver.identify.dates import GitDates

ID_NAMESPACE = uuid.UUID("6f1c2f0e-6d55-4c8a-9a57-4b1b3f0d2a10")
ID, PATH, LAST_PATH, SLUG, FINGERPRINT, FIRST_SEEN, CHANGED, GONE, BODY = range(9)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


class Book:
    """The ``articles`` table as rows in memory, plus the indexes the rules need."""

    def __init__(self, rows: Iterable[tuple[object, ...]],
                 moves: Mapping[str, str] | None = None) -> None:
        self.rows: dict[str, list[str | None]] = {}
        self.by_path: dict[str, str] = {}
        self.slugs: dict[str, str] = {}
        self.orphans: dict[str, dict[str, None]] = {}
        self.order: dict[str, int] = {}
        self.dirty: set[str] = set()
        self.new: set[str] = set()
        self.departed: dict[str, list[str]] = {}  # slug -> ids that left their path just now
        self.moves = dict(moves or {})  # new path -> old path, as the watcher saw renames
        self.known: dict[str, Identity] = {}  # identities made from unchanged rows
        self._left_at: dict[str, list[str]] | None = None  # see returned_to
        self._departed_bodies: dict[str, list[str]] | None = None  # see moved_and_retitled
        self.present: Mapping[str, object] = {}  # the paths of this build (identify_all)
        self._sorted: tuple[frozenset[str], list[str]] | None = None  # see _in_order
        for row in rows:
            values: list[str | None] = list(row)  # type: ignore[arg-type] - TEXT columns
            ident = str(values[ID])
            self.rows[ident] = values
            self.order[ident] = len(self.order)
            self.slugs[str(values[SLUG])] = ident
            if values[PATH] is not None:
                self.by_path[values[PATH]] = ident
            else:
                self.orphans.setdefault(str(values[FINGERPRINT]), {})[ident] = None
        for ident in [i for i, row in self.rows.items() if is_device_name(str(row[SLUG]))]:
            # Minted before device names were refused ('con'): the one slug that changes.
            self._take_slug(ident, self.free_slug(slugify(str(self.rows[ident][SLUG])), ident))

    def begin(self, moves: Mapping[str, str] | None = None) -> None:
        """Start another build on a book kept in memory (it saved its rows last time)."""
        self.dirty, self.new, self.departed = set(), set(), {}
        self._left_at = self._departed_bodies = None
        self.moves = dict(moves or {})

    def touched(self) -> bool:
        """Whether this build changed or added rows."""
        return bool(self.dirty or self.new)

    def _set(self, ident: str, column: int, value: str | None) -> None:
        self.known.pop(ident, None)
        row = self.rows[ident]
        if column == PATH:
            homeless = self.orphans.setdefault(str(row[FINGERPRINT]), {})
            if value is None:
                homeless[ident] = None
            else:
                homeless.pop(ident, None)
        row[column] = value
        if ident not in self.new:
            self.dirty.add(ident)

    def depart(self, present: set[str], now: str) -> None:
        """Articles whose file is no longer on disk leave their path (a later rename may
        claim them again)."""
        self._left_at = self._departed_bodies = None
        # In C, and most builds lose no file: a subset test, not a set of every path.
        gone = frozenset() if self.by_path.keys() <= present \
            else self.by_path.keys() - present
        for path, ident in list(self.by_path.items()) if gone else ():
            if path in gone:
                self._set(ident, PATH, None)
                self._set(ident, GONE, now)
                del self.by_path[path]
                self.departed.setdefault(str(self.rows[ident][SLUG]), []).append(ident)

    def renamed_from(self, fingerprint: str) -> str | None:
        """The article that left its path most recently with exactly this content."""
        candidates = self.orphans.get(fingerprint)
        if not candidates:
            return None
        return max(candidates, key=lambda i: (self.rows[i][GONE] or "", -self.order[i]))

    def moved_here(self, path: str) -> str | None:
        """The homeless article the watcher saw being renamed (maybe in hops) to ``path``."""
        hops: list[str] = []
        while path in self.moves and path not in hops:
            hops.append(path)
            path = self.moves[path]
            found = [i for i, row in self.rows.items()
                     if row[PATH] is None and row[LAST_PATH] == path]
            if found:
                return found[-1]
        return None

    def returned_to(self, path: str) -> str | None:
        """The homeless article whose file last lived at ``path``: a file deleted and
        later re-created there (edited or not) is the same article, with its id and
        URL, not a new one with a ``-2`` slug beside the old URL's 410.

        The index of homeless rows by last path is made on first need in a build
        (a cold build of new files never needs it) and checked on use.
        """
        if self._left_at is None:
            self._left_at = {}
            for homeless in self.orphans.values():
                for ident in homeless:
                    self._left_at.setdefault(str(self.rows[ident][LAST_PATH]), []).append(ident)
        found = [i for i in self._left_at.get(path, ())
                 if self.rows[i][PATH] is None and self.rows[i][LAST_PATH] == path]
        if not found:
            return None
        return max(found, key=lambda i: (self.rows[i][GONE] or "", self.order[i]))

    def moved_and_edited(self, item: Stub) -> str | None:
        """An article renamed *and* edited before one build saw either change.

        Its content no longer matches, so the rename rule misses it; but if exactly
        one article left its path in this very build and its slug is what this
        title makes, it is the same article (title kept, file moved and edited).
        Nothing left in this build (every cold one, most others): no slug to make (the
        slugs of a cold build's 10,000 new articles were made twice, once here).
        """
        if not self.departed:
            return None
        wanted = slugify(item.explicit_slug or item.title) or "article"
        candidates = [i for i in self.departed.get(wanted, ()) if self.rows[i][PATH] is None]
        return candidates[0] if len(candidates) == 1 else None

    def moved_and_retitled(self, item: Stub) -> str | None:
        """An article renamed *and* retitled before one build saw either change.

        Its fingerprint and its title's slug changed, so the rules above miss it;
        but if exactly one article left its path in this very build with this
        text (a body print: long enough to tell articles apart), it is that one.
        """
        if not item.body_print:
            return None
        if self._departed_bodies is None:
            self._departed_bodies = {}
            for ident in (i for ids in self.departed.values() for i in ids):
                body = self.rows[ident][BODY]
                if body:
                    self._departed_bodies.setdefault(body, []).append(ident)
        candidates = [i for i in self._departed_bodies.get(item.body_print, ())
                      if self.rows[i][PATH] is None]
        return candidates[0] if len(candidates) == 1 else None

    def identify_all(self, items: Mapping[str, Stub],
                     moment: Callable[[str], datetime]) -> dict[str, Identity]:
        """Every path's identity, in path order (the rules depend on it).

        An unchanged file (its row holds its path and fingerprint, no explicit id
        or slug to apply) gets its identity straight from :attr:`known`, which is
        exactly what :meth:`identify` would return: 10,000 of those are most of
        what a long-lived process's build asks.
        """
        by_path, rows, known = self.by_path, self.rows, self.known
        self.present = items  # an explicit id held by another present file is not moved
        result: dict[str, Identity] = {}
        for path in self._in_order(items):
            item = items[path]
            ident = by_path.get(path)
            if ident is not None and item.explicit_id is None and item.explicit_slug is None:
                found = known.get(ident)
                row = rows[ident]
                if found is not None and row[FINGERPRINT] == item.fingerprint \
                        and row[BODY] == item.body_print:
                    result[path] = found
                    continue
            result[path] = self.identify(item, path, partial(moment, path))
        return result

    def _in_order(self, items: Mapping[str, Stub]) -> list[str]:
        """The paths of ``items`` sorted: those of the last build again when the set is
        the same (a comparison in C; sorting 50,000 paths is not)."""
        last = self._sorted
        if last is None or len(last[0]) != len(items) or items.keys() != last[0]:
            last = self._sorted = (frozenset(items), sorted(items))
        return last[1]

    def identify(self, item: Stub, path: str, moment: Callable[[], datetime]) -> Identity:
        """The identity of the file at ``path``; ``moment`` says when it was seen to change
        (asked only when something is minted or changed)."""
        return self._identify(item, path, lambda: _iso(moment()))

    def _identify(self, item: Stub, path: str, stamp: Callable[[], str]) -> Identity:
        # ``stamp`` is only formatted when something is minted or changed.
        current = self.by_path.get(path)
        if item.explicit_id:
            holder = self.rows[item.explicit_id][PATH] if item.explicit_id in self.rows else None
            if holder not in (None, path) and holder in self.present:
                return self._known(item.explicit_id)  # not taken: the build refuses this file
            current = item.explicit_id
        elif current is None:
            current = self.renamed_from(item.fingerprint) or self.moved_here(path) \
                or self.moved_and_edited(item) or self.moved_and_retitled(item) \
                or self.returned_to(path)
        row = self.rows.get(current) if current else None
        if row is None:
            return self.mint(item, path, stamp())
        ident = str(row[ID])
        if row[PATH] != path:
            if path in self.by_path and self.by_path[path] != ident:
                self._set(self.by_path[path], PATH, None)
            self._set(ident, PATH, path)
            self._set(ident, LAST_PATH, path)
            self._set(ident, GONE, None)
            self.by_path[path] = ident
        if row[FINGERPRINT] != item.fingerprint:
            self._set(ident, FINGERPRINT, item.fingerprint)
            self._set(ident, CHANGED, stamp())
        if row[BODY] != item.body_print:  # learnt, or the text changed: not an update itself
            self._set(ident, BODY, item.body_print)
        wanted = slugify(item.explicit_slug) if item.explicit_slug else ""
        if wanted and wanted != row[SLUG]:
            self._take_slug(ident, self.free_slug(wanted, ident))
        return self._known(ident)

    def _known(self, ident: str) -> Identity:
        known = self.known.get(ident)
        if known is None:
            row = self.rows[ident]
            known = self.known[ident] = Identity(
                ident, str(row[SLUG]), datetime.fromisoformat(str(row[FIRST_SEEN])),
                datetime.fromisoformat(str(row[CHANGED])))
        return known

    def mint(self, item: Stub, path: str, stamp: str) -> Identity:
        ident = item.explicit_id or self.free_id(path)
        slug = self.free_slug(slugify(item.explicit_slug or item.title) or "article", ident)
        if path in self.by_path:
            self._set(self.by_path[path], PATH, None)
        self.rows[ident] = [ident, path, path, slug, item.fingerprint, stamp, stamp, None,
                            item.body_print]
        self.order[ident] = len(self.order)
        self.new.add(ident)
        self.slugs[slug] = ident
        self.by_path[path] = ident
        moment = datetime.fromisoformat(stamp)
        self.known[ident] = Identity(ident, slug, moment, moment)
        return self.known[ident]

    def _take_slug(self, ident: str, slug: str) -> None:
        self.slugs.pop(str(self.rows[ident][SLUG]), None)
        self.slugs[slug] = ident
        self._set(ident, SLUG, slug)

    def free_id(self, path: str) -> str:
        """A URN derived from the path it was first seen at; never reused."""
        for attempt in range(1_000_000):
            name = path if attempt == 0 else f"{path}#{attempt}"
            candidate = f"urn:uuid:{uuid.uuid5(ID_NAMESPACE, name)}"
            if candidate not in self.rows:
                return candidate
        raise RuntimeError("no free id")  # pragma: no cover - a million collisions

    def free_slug(self, wanted: str, ident: str) -> str:
        slug, n = wanted, 1
        while self.slugs.get(slug, ident) != ident:
            n += 1
            slug = f"{wanted}-{n}"
        return slug

    def changes(self) -> tuple[list[list[str | None]], list[list[str | None]]]:
        """The rows this build changed and the rows it added (a value: the ledger writes
        them in its transaction, see :func:`feedserver.identify.ledger.save_rows`)."""
        return [self.rows[i] for i in sorted(self.dirty)], [self.rows[i] for i in sorted(self.new)]


class Kept:
    """A :class:`Book` kept by a long-lived process between builds (its ``BuildMemory``).

    Reading and indexing every row is a large part of a one-file build.  The
    book is trusted only while the ledger's ``identities`` generation (bumped
    by every reconcile that writes, in any process) is the one it saved at.
    """

    def __init__(self) -> None:
        self.book: Book | None = None
        self.generation: str | None = None
        self.dates = GitDates()  # the seeds' git history, while HEAD stays (see origins)

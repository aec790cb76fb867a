"""What feedparser read from item fragments it has parsed, by the digest of their exact bytes.

The gate (:func:`feedserver.render.formats.rss_atom.read_back`) parses an item with
feedparser once per build, inside the real envelope of the first document that lists
it, and keeps the reading (:class:`~.base.Seen`) here under a SHA-256 digest of the
envelope's context (prolog, ancestors' tags, namespaces, media type) and the
fragment's exact bytes.  Any other document whose bytes hold the very same fragment in
the same context (the 'all' channel, a topic channel and their archive pages list the
same items) takes that reading instead of feedparser reading it again; a fragment that
differs by one byte has another digest and is parsed afresh, so a corrupted item is
never mistaken for a checked one.

The readings are a memo of a pure function (the parser's reading of exact bytes), so
one is never stale.  An :class:`~feedserver.render.feeds.ItemCache` holds one, so it
lives as long as the rendered items do (across builds in a long-lived process) and
is forked into the build's workers with them; what a worker learns goes back to the
parent (:meth:`Readings.learned`, :meth:`Readings.teach`) so the next worker forked
starts with it.  Behind the memo a build puts the state folder's store
(:meth:`Readings.back`, :mod:`feedserver.publish.readings_store`): what an earlier
process read is asked there before feedparser reads it again, and what this one read is
handed to it after the publish (:meth:`Readings.unsaved`).  A web worker's engine puts
the same store behind its memo, to read only.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import hashlib

    from feedserver.render.formats.base import Seen

# Readings kept, the least recently used going first: every item of a 10,000-article
# site in both XML formats and a second context (about 0.5 KB each).
LIMIT = 40_000


# Envelopes kept: a document's own bytes without its items, read alone (see below), and
# the elements of envelopes, each read once in its context (rss_atom._read): about ten
# an envelope, three or four of them new in each archive page or filtered answer.
ENVELOPES = 16_384


class Backing(Protocol):
    """Readings kept beyond this process (the build's store in the state folder:
    :mod:`feedserver.publish.readings_store`), asked when this memo has none."""

    def get(self, key: bytes) -> Seen | None: ...


class Readings:
    """A bounded memo: digest of (context, fragment bytes) -> what feedparser read.

    Beside the items, it remembers envelopes that feedparser read and found sound on
    their own (no ``bozo``, the expected version, no entry), and each element of theirs
    so read in its context: a document whose every item has a reading needs only its
    envelope read, or only the elements of it not read before, and a build draws the
    very same envelope again and again (each RFC 3229 delta of a feed is the feed's
    envelope with fewer items, one per version a client may hold).  Same exact bytes, same
    reading; these stay in the process that read them.
    """

    def __init__(self, limit: int = LIMIT, keys: int = 0) -> None:
        self._seen: OrderedDict[bytes, Seen] = OrderedDict()
        self._learned: dict[bytes, Seen] = {}
        self._limit = limit
        self._envelopes: OrderedDict[bytes, None] = OrderedDict()
        # (context digest, fragment) -> that fragment's key: see :meth:`key_of`.
        self._keys: OrderedDict[tuple[bytes, bytes], bytes] = OrderedDict()
        self._keys_limit = keys
        # Readings kept beyond this process, and those made here (or taught) that it
        # lacks: see :meth:`back` and :meth:`unsaved`.
        self.backing: Backing | None = None
        self._saving = False
        self._unsaved: dict[bytes, Seen] = {}

    def back(self, backing: Backing, saving: bool = True) -> None:
        """Ask ``backing`` for the readings this memo lacks.  With ``saving``, note the
        readings made or taught here for it (:meth:`unsaved`): the build's process
        writes those after a publish; a web worker only reads what the build wrote."""
        self.backing, self._saving = backing, saving

    def key_of(self, prefix: hashlib._Hash, context: bytes, fragment: bytes) -> bytes:
        """The key of ``fragment``'s reading under ``prefix`` (whose digest is ``context``).

        The renderer's item cache hands the very same bytes object to every document
        listing an item, and a bytes object keeps its own (Python) hash: looking the
        pair up here costs a dict probe and an identity test where SHA-256 went over the
        fragment's every byte again (about 0.1 ms for a 25-item answer).  An equal
        fragment in another object matches too (compared byte for byte), and the key is
        the same digest either way.  It holds the fragments it keys, so it is kept only
        where asked for (``keys``: how many; the web's engine, whose item cache holds
        as many): a build worker's item cache is smaller than this memo would grow, and
        a build hashes each document's fragments once anyway.
        """
        pair = (context, fragment)
        key = self._keys.get(pair) if self._keys_limit else None
        if key is None:
            digest = prefix.copy()
            digest.update(fragment)
            key = digest.digest()
            if self._keys_limit:
                self._keys[pair] = key
                if len(self._keys) > self._keys_limit:
                    self._keys.popitem(last=False)
        return key

    def envelope_read(self, key: bytes) -> bool:
        """Whether the envelope with this digest was read alone and found sound."""
        if key in self._envelopes:
            self._envelopes.move_to_end(key)
            return True
        return False

    def envelope_sound(self, key: bytes) -> None:
        """Remember an envelope feedparser read alone and found sound."""
        self._envelopes[key] = None
        if len(self._envelopes) > ENVELOPES:
            self._envelopes.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)

    def get(self, key: bytes) -> Seen | None:
        found = self._seen.get(key)
        if found is not None:
            self._seen.move_to_end(key)
        elif self.backing is not None:
            found = self.backing.get(key)
            if found is not None:
                self._store(key, found)
        return found

    def put(self, key: bytes, seen: Seen) -> None:
        """Keep a reading this process made (and note it for :meth:`learned`)."""
        self._store(key, seen)
        if len(self._learned) < self._limit:  # nobody drains a sequential build's notes
            self._learned[key] = seen
        self._note(key, seen)

    def unsaved(self) -> dict[bytes, Seen]:
        """The readings made here or taught since the last call, for the backing store
        (the build's process writes them after a publish)."""
        found, self._unsaved = self._unsaved, {}
        return found

    def _note(self, key: bytes, seen: Seen) -> None:
        if self._saving and len(self._unsaved) < self._limit:
            self._unsaved[key] = seen

    def learned(self) -> dict[bytes, Seen]:
        """The readings made here since the last call (a worker sends them to the parent)."""
        found, self._learned = self._learned, {}
        return found

    def teach(self, found: dict[bytes, Seen]) -> None:
        """Keep readings another process made (processes forked later inherit them)."""
        for key, seen in found.items():
            self._store(key, seen)
            self._note(key, seen)

    def _store(self, key: bytes, seen: Seen) -> None:
        self._seen[key] = seen
        self._seen.move_to_end(key)
        if len(self._seen) > self._limit:
            self._seen.popitem(last=False)

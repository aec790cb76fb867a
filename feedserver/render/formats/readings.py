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

import itertools
import marshal
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from feedserver.render.formats.base import Seen

if TYPE_CHECKING:
    import hashlib

    from feedserver.core.records import Article

# Readings kept, the least recently used going first: every item of a 10,000-article
# site in both XML formats and a second context (about 0.5 KB each).
LIMIT = 40_000


# Envelopes kept: a document's own bytes without its items, read alone (see below), and
# the elements of envelopes, each read once in its context (rss_atom._read): about ten
# an envelope, three or four of them new in each archive page or filtered answer.
ENVELOPES = 16_384


def pack(seen: Seen, canonical: bool = False) -> bytes | None:
    """A reading as bytes (the readings store's form, without its checksum), or None for
    one of a shape they do not hold: strings or None, dates as (name, six integers or
    None), enclosure URLs or None (what feedparser gives for RSS and Atom).

    About 0.25 kB where the reading's objects take about 1.6.  ``canonical``: the same
    reading always as the same bytes (marshal's version 2, which :func:`unpack` reads as
    well): from version 3 on, marshal marks an object referenced elsewhere (its reference
    count) to be shared, so equal readings could be written apart (an item record, which
    holds readings and must not change while its article does not, asks for this).
    """
    fields = (seen.id, seen.title, seen.link, tuple(sorted(seen.dates.items())),
              seen.enclosures)
    return marshal.dumps(fields, 2 if canonical else 4) if _shaped(fields) else None


def split_packed(found: dict[bytes, Seen]) -> tuple[dict[bytes, bytes], dict[bytes, Seen]]:
    """``found`` as bytes (:func:`pack`), and the readings of a shape they cannot hold.

    A Pool worker sends its readings so to a parent that keeps them as bytes
    (:meth:`Readings.teach_bytes`): sent as objects, the parent made 1.6 kB of them for
    each only to pack it and drop them, and the holes they left in its heap stayed
    (benchmarks/README.md, "A kept row, 4 KiB, ...": readings sent packed)."""
    packed: dict[bytes, bytes] = {}
    odd: dict[bytes, Seen] = {}
    for key, seen in found.items():
        value = pack(seen)
        if value is None:
            odd[key] = seen
        else:
            packed[key] = value
    return packed, odd


def unpack(payload: bytes) -> Seen | None:
    """The reading :func:`pack` made these bytes of, or None when they are not such."""
    try:
        fields = marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return None
    if not _shaped(fields):
        return None
    id_, title, link, dates, enclosures = fields
    return Seen(id_, title, link, dict(dates), enclosures)


def _text(value: object) -> bool:
    return value is None or type(value) is str


def _shaped(fields: object) -> bool:
    """Strings or None, dates as (name, six integers or None), enclosure URLs or None."""
    if type(fields) is not tuple or len(fields) != 5:
        return False
    id_, title, link, dates, enclosures = fields
    if not (_text(id_) and _text(title) and _text(link)):
        return False
    if type(dates) is not tuple or not all(
            type(pair) is tuple and len(pair) == 2 and type(pair[0]) is str
            and (pair[1] is None or (type(pair[1]) is tuple and len(pair[1]) == 6
                                     and all(type(n) is int for n in pair[1])))
            for pair in dates):
        return False
    return enclosures is None or (type(enclosures) is tuple
                                  and all(type(url) is str for url in enclosures))


class Agreed(dict[int, "tuple[Seen, Article, Callable[[str], str] | None]"]):
    """Readings found equal to their articles (:func:`feedserver.validate.compare`), by
    the reading's ``id``: each entry holds the reading, the article and the title mapping
    compared, so an id is never reused while its entry stands and a hit is checked by
    identity.  Bounded: past ``limit`` entries the oldest half goes."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def keep(self, seen: Seen, article: Article,
             shown: Callable[[str], str] | None) -> None:
        """Note that ``seen`` read back as ``article`` (under ``shown``)."""
        self[id(seen)] = (seen, article, shown)
        if len(self) > self.limit:
            for key in list(itertools.islice(self, len(self) // 2)):
                del self[key]


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
        # Readings compared equal to their articles (:class:`Agreed`), kept where the
        # keys are: the web's engine.  A build compares most items once per channel and
        # format, and holding their articles would hold its memory too.
        self.agreed: Agreed | None = Agreed(keys) if keys else None
        # Readings kept beyond this process, and those made here (or taught) that it
        # lacks: see :meth:`back` and :meth:`unsaved`.
        self.backing: Backing | None = None
        self._saving = False
        self._unsaved: dict[bytes, Seen] = {}
        # Readings other processes made, kept as bytes (:meth:`teach_bytes`), oldest
        # first, and those of them not written to the backing store yet.
        self._packed: dict[bytes, bytes] = {}
        self._unsaved_packed: dict[bytes, bytes] = {}

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
        elif (packed := self._packed.get(key)) is not None and \
                (found := unpack(packed)) is not None:
            self._store(key, found)
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

    def unsaved_packed(self) -> dict[bytes, bytes]:
        """:meth:`unsaved`'s readings taught as bytes (:meth:`teach_bytes`): what
        :func:`pack` made of each."""
        found, self._unsaved_packed = self._unsaved_packed, {}
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

    def teach_bytes(self, found: dict[bytes, bytes]) -> None:
        """:meth:`teach` for readings packed by the worker that read them
        (:func:`split_packed`), kept as those bytes until a process asks for one
        (:meth:`get` makes it an object again, there).

        For a process that builds once: it asks for few readings itself, and those its
        Pool's workers send back were the largest thing it grew while they rendered (41
        MiB of objects at 10,000 articles); sent as objects, it made each only to pack
        it.  The workers forked later inherit the bytes.
        """
        for key, packed in found.items():
            self._packed[key] = packed
            if len(self._packed) > self._limit:  # the oldest quarter goes, at once: a
                # dict drops its first key in O(1) only until its front is all removed
                keep = self._limit * 3 // 4
                self._packed = dict(list(self._packed.items())[-keep:])
            if self._saving and len(self._unsaved_packed) < self._limit:
                self._unsaved_packed[key] = packed

    def _store(self, key: bytes, seen: Seen) -> None:
        self._seen[key] = seen
        self._seen.move_to_end(key)
        if len(self._seen) > self._limit:
            self._seen.popitem(last=False)

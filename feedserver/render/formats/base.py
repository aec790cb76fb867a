"""What a feed format is: the facts and functions one format module defines.

A :class:`Format` owns everything the rest of the program needs to know about
a format (where its file goes, how it is served and labelled, how an item and
a channel are drawn, how its bytes are read back for the validation gate, what
it costs the build's workers, whether other sites' scripts may read it), so
adding a format is writing one module and registering its value
(:mod:`feedserver.render.formats`), with no table elsewhere to keep in step.

The gate's comparison of items with the articles (:mod:`feedserver.validate`) is
the same for every format; what differs is only how the bytes are read back,
so a format's ``check`` returns what a reader's parser sees (:class:`ReadBack`)
and leaves the judging to the gate.  Nothing here imports a renderer's library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from feedserver.core.records import Article, Channel

if TYPE_CHECKING:
    from feedserver.render.feeds import Context
    from feedserver.render.formats.readings import Readings

Date = tuple[int, ...]


@dataclass(frozen=True)
class Finding:
    """One difference; ``item`` is the 0-based index of the item at fault, or None when
    the document as a whole is wrong (not well-formed, wrong version, items missing)."""

    reason: str
    item: int | None = None


@dataclass(frozen=True)
class Seen:
    """One item as a reader's parser reads it back from the rendered bytes.

    The values are whatever the parser gave (not necessarily strings: a JSON
    document may hold anything).  ``dates`` has a key for each date the format
    carries ('published', 'updated'), as UTC (year, month, day, hour, minute,
    second), or None when it could not be read.
    """

    id: object
    title: object
    link: object
    dates: dict[str, Date | None] = field(default_factory=dict)
    # The enclosure and attachment URLs read back (sorted); None: the format was not asked.
    enclosures: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ReadBack:
    """What a format's check read from one rendered document.

    ``findings``: what is wrong with the document itself (not well-formed, the
    wrong version, a field of the wrong type), listed before any difference in
    the items.  ``items``: the items in document order, or None when the
    document could not be read far enough to compare them.  ``shown``: how a
    reader displays a title (RSS and Atom readers re-decode mojibake), for a
    second look at a title that differs; None compares titles exactly.
    """

    findings: list[Finding]
    items: list[Seen] | None = None
    shown: Callable[[str], str] | None = None


@dataclass(frozen=True)
class Drafted:
    """A hint about a document's envelope: ``parts`` (its bytes before and after the
    items, drawn once with a run of its own URL's query string written as ``hole``) with
    every ``hole`` replaced by ``own``.  What a computed feed's envelope is
    (:class:`feedserver.query.envelopes.Envelopes`); a reader checks it before use."""

    parts: tuple[bytes, bytes]
    hole: bytes
    own: bytes


class CachedReader(Protocol):
    """``check`` reusing readings; ``spliced`` is the renderer's item fragments and
    ``drafted`` how its envelope was drawn, hints the reader may use only after checking
    them against the bytes."""

    def __call__(self, chan: Channel, body: bytes, readings: Readings,
                 spliced: list[bytes] | None = None,
                 drafted: Drafted | None = None) -> ReadBack: ...


@dataclass(frozen=True)
class CachedCheck:
    """A cheaper way to the very reading ``check`` gives, reusing the parser's readings of
    items (:class:`~.readings.Readings`).  It stands for ``check`` only: a format whose
    ``check`` is replaced (a plugin, a test) is checked by its own ``check``."""

    check: Callable[[Channel, bytes], ReadBack]
    cached: CachedReader
    # The envelope's bytes before and after the items, and one item -> what gives the key
    # ``cached`` looks an item's reading up under in documents of that envelope, or None
    # (rss_atom.reading_keyer).
    keyer: Callable[[bytes, bytes, bytes], Callable[[bytes], bytes] | None] | None = None

    def of(self, fmt: Format) -> CachedReader | None:
        """``cached`` if it still stands for ``fmt``'s check, else None."""
        return self.cached if fmt.check is self.check else None


@dataclass(frozen=True)
class Format:
    """One feed format: where it goes, how it is served, drawn, read back and scheduled.

    ``item`` renders one article to the bytes every channel listing it splices
    in (:class:`feedserver.render.feeds.ItemCache`); ``channel`` wraps a channel's
    items into the whole document.  ``check`` reads the document back
    (:class:`ReadBack`); ``checked_by`` names it in a problem when it raises.
    ``cost`` is the relative time of validating and compressing one item, which
    the build's workers use to start the longest tasks first.  ``cors``: other
    sites' scripts may read the file (recorded in the manifest for the server).
    ``check_cached``, when a format has one, gives what ``check`` gives for the same
    bytes, reusing :class:`~.readings.Readings` the gate keeps across documents.
    """

    name: str
    filename: str
    media_type: str
    label: str
    item: Callable[[Article, Context], bytes]
    channel: Callable[[Channel, Context, list[bytes]], bytes]
    check: Callable[[Channel, bytes], ReadBack]
    cost: int
    checked_by: str
    cors: bool = True
    # ``check`` again, told what the parser already read from item fragments it has
    # parsed (by their bytes' digest), so each distinct item is parsed once (RSS, Atom).
    check_cached: CachedCheck | None = None
    # The document's bytes before and after its items, which ``channel`` puts between
    # them joined by ``separator``; None (or a None answer): ``channel`` makes more of it
    # than that.  It shows of the channel's articles only whether any carries media, so
    # whoever draws many documents of one channel head may draw its envelope once.
    envelope: Callable[[Channel, Context], tuple[bytes, bytes] | None] | None = None
    separator: bytes = b""

    @property
    def mime(self) -> str:
        """The media type without parameters (``application/rss+xml``), as links name it."""
        return self.media_type.split(";")[0]


_PROBE = 64  # bytes of the first fragment spliced_at searches for


@lru_cache(maxsize=16_384)
def utc(moment: datetime) -> Date:
    """A date as the gate compares it: UTC, to the second.

    Remembered: the gate compares each item's two dates in every document listing it,
    and ``utctimetuple`` cost about 1 us a call (40 us of a 25-item filtered answer);
    a datetime is hashed and compared in C, and equal instants give equal tuples."""
    return tuple(moment.utctimetuple()[:6])


def around(before: bytes, after: bytes, items: list[bytes], separator: bytes = b"") -> bytes:
    """A document of its envelope and its items: the items, joined by ``separator``,
    between the envelope's two parts (what ``Format.channel`` draws from
    ``Format.envelope``; copied once when nothing separates them)."""
    if not separator:
        return b"".join((before, *items, after))
    return before + separator.join(items) + after


def spliced_at(body: bytes, fragments: list[bytes], separator: bytes = b""
               ) -> tuple[int, int] | None:
    """Where the run of ``fragments`` (joined by ``separator``) lies in ``body``, as
    (start, end), found from the first one and compared in place; None when ``body``
    does not hold them so.

    Not a search for the joined run, nor for the whole first fragment: a long needle
    costs its whole length before the search starts (most of this function's time when it
    searched for the first fragment, and a filtered answer calls it twice), and slicing a
    copy of 100 kB to compare costs more than comparing.  The first :data:`_PROBE` bytes
    are searched for instead, and the whole fragment compared where they are: the first
    place it matches is the first place the fragment occurs, as a search for it finds."""
    at = -1
    if fragments:
        first = fragments[0]
        probe = first[:_PROBE]
        at = body.find(probe)
        while at >= 0 and not body.startswith(first, at):
            at = body.find(probe, at + 1)
    end = at
    for n, fragment in enumerate(fragments):
        if n and separator:
            if not body.startswith(separator, end):
                return None
            end += len(separator)
        if at < 0 or not body.startswith(fragment, end):
            return None
        end += len(fragment)
    return at, end

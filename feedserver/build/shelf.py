"""The articles a cold build's Pool workers render, as bytes they decode their own copies from.

Why: a cold build forks its workers (feeds, then pages and item records) from a parent
that holds every article as
Python objects, and CPython writes the reference count of every object it touches, so
a worker that draws, looks up and checks an article copies the pages of the article's
object and of each of its strings: a page holds a few dozen small objects of all kinds
(the stubs', the ledger's, the articles'), and each worker of a cold 10,000-article
build ended up with about 31 MiB of the parent's pages, most of them for the articles
(benchmarks/README.md, "Which pages a worker copies").

:func:`shelve` writes each article the channels list, once, into one ``bytes`` buffer
(``marshal`` of its fields: the text of its content and summary stays where it was
packed, :mod:`feedserver.core.packed`, and only the handle's place is written), and
gives each channel a :class:`Shelved` list of article numbers in place of its tuple of
articles.  A worker reads the buffer, which it never writes to, and decodes the articles
it meets into objects of its own, kept in a bounded memo while its runs go along the
history (:data:`KEPT`); the parent's article objects are never touched there.  A decoded
article equals the one it was made from (every field, hash included), so everything a
worker keys by an article (its item cache, the gate) is unchanged, and so is every byte
it renders.  :class:`Shipping` makes one shelf per build and moves onto it what the
pages' Pool renders too: the channels and archive pages its makers list, and each maker
that is one call on one article (its page, its item record).
"""

from __future__ import annotations

import marshal
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields, replace
from datetime import datetime
from functools import partial
from typing import Any, overload

from feedserver.core.packed import Packed
from feedserver.core.records import Article, Channel
from feedserver.render.site import Site

# Articles a worker keeps decoded: more than its item cache keeps items
# (``feedserver.build.parallel.ITEM_CACHE``), so an item found there finds its article
# here too, and a run (a stretch of the history) decodes each article about once.
KEPT = 4000


class Shelf:
    """Every article of a job, encoded one after the other in one buffer."""

    def __init__(self, articles: Sequence[Article]) -> None:
        self._holders: list[object] = []  # the buffers (or spills) packed texts lie in
        known: dict[int, int] = {}  # id of a holder -> its place in _holders
        pieces = [marshal.dumps(_fields(article, self._holders, known))
                  for article in articles]
        self._buffer = b"".join(pieces)
        self._ends = array("Q")
        end = 0
        for piece in pieces:
            end += len(piece)
            self._ends.append(end)
        self._kept: OrderedDict[int, Article] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ends)

    def get(self, number: int) -> Article:
        """Article ``number``, decoded (or as this process decoded it lately)."""
        kept = self._kept
        found = kept.get(number)
        if found is not None:
            kept.move_to_end(number)
            return found
        start = self._ends[number - 1] if number else 0
        found = kept[number] = _article(
            marshal.loads(memoryview(self._buffer)[start:self._ends[number]]), self._holders)
        if len(kept) > KEPT:
            kept.popitem(last=False)
        return found


class Shelved(Sequence[Article]):
    """A channel's articles as numbers on a :class:`Shelf`: a sequence of the articles,
    each decoded when read (equal, item for item, to the tuple it stands for)."""

    __slots__ = ("_numbers", "_shelf")

    def __init__(self, shelf: Shelf, numbers: array[int]) -> None:
        self._shelf = shelf
        self._numbers = numbers

    def __len__(self) -> int:
        return len(self._numbers)

    @overload
    def __getitem__(self, index: int) -> Article: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Article, ...]: ...

    def __getitem__(self, index: int | slice) -> Article | tuple[Article, ...]:
        if isinstance(index, slice):
            return tuple(map(self._shelf.get, self._numbers[index]))
        return self._shelf.get(self._numbers[index])

    def __iter__(self) -> Iterator[Article]:
        return map(self._shelf.get, self._numbers)

    def __eq__(self, other: object) -> bool:
        """Equal as the tuples they stand for (on one shelf, by their numbers)."""
        if isinstance(other, Shelved) and self._shelf is other._shelf:
            return self._numbers == other._numbers
        if isinstance(other, (Shelved, tuple)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))  # as the tuple's: a channel hashes as it did


class Shipping:
    """One build's articles on one :class:`Shelf`: its sites' channels and its file makers
    moved onto it for the workers (see the module).

    Every article of the site it is made from is written once: those of its channels
    and archive pages and its article list.  Articles are known by identity (the site
    holds them while the build lasts); a channel listing one that is not on the shelf
    is left as it is, as is any maker that is not one call on one article.
    """

    def __init__(self, site: Site) -> None:
        self._number: dict[int, int] = {}
        listed: list[Article] = []
        for articles in (site.articles, *(c.articles for c in site.channels),
                         *(c.articles for c in site.archives)):
            for article in articles:
                if id(article) not in self._number:
                    self._number[id(article)] = len(listed)
                    listed.append(article)
        self.shelf = Shelf(listed)
        # Held, so that no id above is ever another object's (this process only reads
        # the list: the workers never touch it).
        self._listed = listed

    def site(self, site: Site) -> Site:
        """``site`` with its channels and archive pages listing shelved articles (its
        article list as it is: the makers of its pages pick from it in this process)."""
        return replace(site, channels=tuple(map(self._channel, site.channels)),
                       archives=tuple(map(self._channel, site.archives)))

    def maker(self, maker: Callable[[], Any]) -> Callable[[], Any]:
        """``partial(make, article)`` (an article's page, its item record) as the same
        call on the article decoded from the shelf; any other maker as it is."""
        if type(maker) is partial and len(maker.args) == 1 and not maker.keywords \
                and type(maker.args[0]) is Article:
            number = self._number.get(id(maker.args[0]))
            if number is not None:
                return partial(_decoded, maker.func, self.shelf, number)
        return maker

    def _channel(self, channel: Channel) -> Channel:
        if isinstance(channel.articles, Shelved):
            return channel
        numbers = [self._number.get(id(a)) for a in channel.articles]
        if None in numbers:
            return channel
        return replace(channel, articles=Shelved(  # type: ignore[arg-type]
            self.shelf, array("Q", numbers)))  # type: ignore[arg-type]


def shelve(site: Site) -> Site:
    """``site`` with each channel's articles on one :class:`Shelf` (see the module)."""
    return Shipping(site).site(site)


def _decoded(make: Callable[[Article], Any], shelf: Shelf, number: int) -> Any:
    return make(shelf.get(number))


# Every field, in the order Article takes them: a field added to the model travels too.
_FIELDS = tuple(f.name for f in fields(Article))


def _fields(article: Article, buffers: list[object], known: dict[int, int]) -> tuple[Any, ...]:
    """An article as values ``marshal`` writes: a packed text as a list of its place, a
    date as the bytes of its ISO form (no field of an article is a list or bytes), any
    other value as it is."""
    return tuple(_encoded(getattr(article, name), buffers, known) for name in _FIELDS)


def _encoded(value: Any, buffers: list[object], known: dict[int, int]) -> Any:
    if isinstance(value, Packed):
        holder, start, stop, text_hash = value.place()
        at = known.get(id(holder))
        if at is None:
            at = known[id(holder)] = len(buffers)
            buffers.append(holder)
        return [at, start, stop, text_hash]
    if isinstance(value, datetime):
        return value.isoformat().encode()
    return value


def _article(values: tuple[Any, ...], buffers: list[object]) -> Article:
    return Article(*(_decoded_value(value, buffers) for value in values))


def _decoded_value(value: Any, buffers: list[object]) -> Any:
    if type(value) is list:
        at, start, stop, text_hash = value
        return Packed(buffers[at], start, stop, text_hash)  # type: ignore[arg-type]
    if type(value) is bytes:
        return datetime.fromisoformat(value.decode())
    return value

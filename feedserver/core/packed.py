"""Article content packed into a few large buffers, with one small handle per article.

Why: a cold build renders its feeds, pages and records in worker processes forked from
the parent, which share the parent's memory until they write to it, and CPython writes
to every object it touches (its reference count).  An article's content as a ``str`` is
one object, header and text together: a worker that renders the article copies the page
of the string's header, and with content of a few kilobytes that is most of the text.
Each worker of a cold 10,000-article build copied about 30 MiB of content so
(benchmarks/README.md, "Where a cold build's memory goes").

A :class:`Packed` handle is a small object among others of its kind, and the text it
stands for lies in a large ``bytes`` buffer shared by many articles (:func:`pack`).  A
worker reads the buffer (``str(handle)`` decodes a copy of its own, freed once
used) and writes only to the handle and the buffer's header, so the text itself stays
shared between all the processes.

A build may also pack its texts into a file (``feedserver.build.spill.Spill``, a
:class:`Holder`): the handles are the same, and the text is then held by the kernel's
page cache rather than by any process; this module does no I/O itself.

A handle is equal to its text and hashes as it does, so an article holding one is equal
to the same article holding the string, and a pickled handle arrives as that string.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

# Lone surrogates survive the trip (a str holds any code point; content_digest encodes
# them the same way).
ERRORS = "surrogatepass"


class Packed:
    """One text held in a shared buffer: ``str(packed)`` is the text."""

    __slots__ = ("_buffer", "_hash", "_start", "_stop")

    def __init__(self, buffer: bytes | Holder, start: int, stop: int,
                 text_hash: int | None = None) -> None:
        self._buffer = buffer
        self._start = start
        self._stop = stop
        self._hash = text_hash

    def __str__(self) -> str:
        return str(self._bytes(), "utf-8", ERRORS)

    def place(self) -> tuple[bytes | Holder, int, int, int]:
        """Where the text lies (its buffer or spill, start, stop) and its hash: what
        ``Packed(*handle.place())`` makes the same handle again from."""
        return self._buffer, self._start, self._stop, hash(self)

    def _bytes(self) -> memoryview | bytes:
        buffer = self._buffer
        if type(buffer) is bytes:
            return memoryview(buffer)[self._start:self._stop]
        return buffer.read(self._start, self._stop)  # type: ignore[union-attr]  # a Holder

    def __bool__(self) -> bool:
        return self._stop > self._start

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Packed):
            # UTF-8 is one-to-one: equal bytes, equal texts
            return self._bytes() == other._bytes()
        if isinstance(other, str):
            return str(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        # The text's own hash, so that a handle and its string are interchangeable keys;
        # :func:`pack` gives it, so that no worker decodes the text to hash its article.
        if self._hash is None:
            self._hash = hash(str(self))
        return self._hash

    def __repr__(self) -> str:
        return f"Packed({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return str, (str(self),)


class Holder(Protocol):
    """Where texts packed elsewhere than in a buffer lie (the build's spill file,
    ``feedserver.build.spill.Spill``): a handle asks it for its bytes."""

    def read(self, start: int, stop: int) -> bytes:
        """The bytes from ``start`` to ``stop``."""


def pack(texts: Sequence[str]) -> list[Packed]:
    """A handle for each of ``texts``, in order, all in one new buffer."""
    pieces = [text.encode("utf-8", ERRORS) for text in texts]
    buffer = b"".join(pieces)
    handles: list[Packed] = []
    start = 0
    for text, piece in zip(texts, pieces, strict=True):
        stop = start + len(piece)
        handles.append(Packed(buffer, start, stop, hash(text)))
        start = stop
    return handles

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

A build may also pack its texts into a file (:class:`Spill`): the handles are the same,
and the text is then held by the kernel's page cache rather than by any process.

A handle is equal to its text and hashes as it does, so an article holding one is equal
to the same article holding the string, and a pickled handle arrives as that string.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

# Lone surrogates survive the trip (a str holds any code point; content_digest encodes
# them the same way).
_ERRORS = "surrogatepass"


class Packed:
    """One text held in a shared buffer: ``str(packed)`` is the text."""

    __slots__ = ("_buffer", "_hash", "_start", "_stop")

    def __init__(self, buffer: bytes | Spill, start: int, stop: int,
                 text_hash: int | None = None) -> None:
        self._buffer = buffer
        self._start = start
        self._stop = stop
        self._hash = text_hash

    def __str__(self) -> str:
        return str(self._bytes(), "utf-8", _ERRORS)

    def place(self) -> tuple[bytes | Spill, int, int, int]:
        """Where the text lies (its buffer or spill, start, stop) and its hash: what
        ``Packed(*handle.place())`` makes the same handle again from."""
        return self._buffer, self._start, self._stop, hash(self)

    def _bytes(self) -> memoryview | bytes:
        buffer = self._buffer
        if type(buffer) is bytes:
            return memoryview(buffer)[self._start:self._stop]
        return buffer.read(self._start, self._stop)  # type: ignore[union-attr]

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


class Spill:
    """Texts packed into an unlinked file (:meth:`pack`) instead of a buffer in memory.

    A handle of it reads its text with ``os.pread``, in whichever process it is, so the
    bytes are held by the kernel's page cache, which it may drop under pressure and
    read back from the disk, and not by the build's processes: a cold 10,000-article
    build held its 43 MiB of packed content and summaries in its own memory, shared by
    the workers it forked but counted in its peak all the same (benchmarks/README.md,
    "Which pages a worker copies").  The file has no name (``O_TMPFILE`` where the
    filesystem has it, else it is unlinked at once) and is gone when the last handle
    is.  Only the process that made it writes to it, before it forks; ``pread`` moves no
    shared offset, so any number of forked readers may read at once.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        # Open as long as the spill lives (its handles hold it): closed when it goes.
        self._file = tempfile.TemporaryFile(  # noqa: SIM115
            dir=folder, prefix=".feedserver-packed-")
        self._fd = self._file.fileno()
        self._end = 0

    def pack(self, texts: Sequence[str]) -> list[Packed]:
        """A handle for each of ``texts``, in order, their bytes appended to the file
        one text at a time (no buffer of them all is ever held)."""
        handles: list[Packed] = []
        start = self._end
        for text in texts:
            piece = memoryview(text.encode("utf-8", _ERRORS))
            done = 0
            while done < len(piece):
                done += os.pwrite(self._fd, piece[done:], start + done)
            handles.append(Packed(self, start, start + len(piece), hash(text)))
            start += len(piece)
        self._end = start
        return handles

    def __del__(self) -> None:
        file = getattr(self, "_file", None)  # None: the file could not be made
        if file is not None:
            file.close()

    def read(self, start: int, stop: int) -> bytes:
        """The file's bytes from ``start`` to ``stop``."""
        chunk = os.pread(self._fd, stop - start, start)
        if len(chunk) == stop - start:
            return chunk
        chunks = [chunk]
        start += len(chunk)
        while start < stop:  # a short read (a signal): the rest
            chunk = os.pread(self._fd, stop - start, start)
            if not chunk:
                raise OSError(f"a packed text ends past the end of its file ({start})")
            chunks.append(chunk)
            start += len(chunk)
        return b"".join(chunks)


def pack(texts: Sequence[str]) -> list[Packed]:
    """A handle for each of ``texts``, in order, all in one new buffer."""
    pieces = [text.encode("utf-8", _ERRORS) for text in texts]
    buffer = b"".join(pieces)
    handles: list[Packed] = []
    start = 0
    for text, piece in zip(texts, pieces, strict=True):
        stop = start + len(piece)
        handles.append(Packed(buffer, start, stop, hash(text)))
        start = stop
    return handles

"""The build's packed texts in a nameless file: :class:`Spill` (see its docstring).

I/O at the edge: :mod:`feedserver.core.packed` only asks a holder for bytes; this is the
holder a build made once packs its content and summaries into.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

from feedserver.core.packed import ERRORS, Packed


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
            piece = memoryview(text.encode("utf-8", ERRORS))
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

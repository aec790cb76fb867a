"""A computed answer's gzip body, spliced from its items' compressed bytes kept across answers.

A filtered or combined feed is compressed when a client first asks for it compressed
(:mod:`feedserver.web.filtered`), and most clients ask so.  Compressing the whole body again
was the largest step of such a first answer after the gate: ISA-L took 0.36 ms for a
132 kB answer and 0.7 ms for a 49-item one, while the answer's items were the very bytes
other answers of the same channel had listed and compressed before.

Deflate lets the pieces be compressed apart and joined: each piece ends with a sync
flush (its last block padded to a byte and closed by an empty stored block), so the
pieces' bytes concatenate into one stream, and gzip wraps that stream with the CRC-32
and length of the whole body (RFC 1951 section 3.2.3, RFC 1952).  An item is compressed
with the item before it in the answer as its dictionary, which is what lies right before
it in the stream (a decoder's window holds it), so repeated markup between neighbours
still shrinks as it would in one pass.  A piece depends only on the item, the one before
it and the separator between them, so it is kept under their digests (the engine's
:class:`~feedserver.query.pieces.Pieces` carry them) and made once however
many answers list the pair: answers of one channel list its items in one order, so a
new answer mostly reuses its neighbours' pieces.  The envelope around the items (its own
URL in it) and the end are new with every answer and small (a few hundred bytes): they
go in stored blocks (:func:`_stored`), which cost about 1 us where compressing them cost
7-16 (ISA-L sets up its level's tables for each), for about 300 bytes more a body.

The bytes are the same for the same answer in any worker (the same pieces, made the same
way on the same machine), so its ETag is too.  Pieces restart their Huffman tables, so a
spliced body is 6.5-9.3% larger than one compressed in one pass; a first answer in gzip
buys that with a fifth of its time (benchmarks/README.md, "gzip spliced from the items'
kept pieces").
"""

from __future__ import annotations

import functools
import hashlib
import struct
import threading
import zlib
from collections import OrderedDict

from feedserver.publish.codedigest import digest
from feedserver.query.pieces import Pieces

LEVEL = 2  # ISA-L levels are 0-3; the level an answer's whole body was compressed at
SEGMENT_BYTES = 8 * 1024 * 1024  # compressed pieces one worker keeps
WINDOW = 32 * 1024  # deflate's window: how far back a dictionary can reach
# gzip's header: deflate, no name or comment, mtime 0 (a body's bytes depend on it
# alone), extra flags 0, OS unknown.
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
# A stored block's header (byte, LEN, NLEN), the empty block a sync flush ends with, and
# the most bytes _stored writes itself (see there).
_BLOCK = struct.Struct("<BHH")
_EMPTY = b"\x00\x00\x00\xff\xff"
STORED_BY_HAND = 16 * 1024


class Segments:
    """Compressed pieces of items, least recently used out first, bounded in bytes."""

    def __init__(self, limit: int = SEGMENT_BYTES) -> None:
        self._kept: OrderedDict[tuple[bytes, bytes, bytes], bytes] = OrderedDict()
        self._limit = limit
        self._bytes = 0
        self._lock = threading.Lock()
        self.made = 0  # pieces compressed (the rest were kept ones)

    def gzip(self, body: bytes, pieces: Pieces | None) -> bytes:
        """``body`` as gzip: spliced from kept pieces when ``pieces`` tell where its items
        lie (and they do), else compressed whole."""
        spliced = self.spliced(body, pieces)
        if spliced is None:
            from isal import igzip

            return igzip.compress(body, compresslevel=LEVEL, mtime=0)
        return spliced

    def spliced(self, body: bytes, pieces: Pieces | None) -> bytes | None:
        """``body`` as gzip spliced from kept pieces, or None when ``pieces`` do not tell
        where its items lie (or they do not lie there)."""
        if pieces is None or not pieces.items or not pieces.lie_in(body):
            return None
        from isal import isal_zlib

        items, keys, sep = pieces.items, pieces.keys, pieces.separator
        pairs = [(b"", b"", keys[0]), *((keys[n - 1], sep, keys[n])
                                        for n in range(1, len(keys)))]
        with self._lock:  # the kept ones, all under one hold of the lock
            kept = self._kept
            found = [kept.get(pair) for pair in pairs]
            for pair, piece in zip(pairs, found, strict=True):
                if piece is not None:
                    kept.move_to_end(pair)
        parts = [HEADER, _stored(body[:pieces.at], final=False)]
        for n, piece in enumerate(found):
            if piece is None:  # made now, with the item before it as the dictionary
                piece = self._piece(pairs[n], items[n - 1] if n else b"", items[n])
            parts.append(piece)
        parts.append(_stored(body[pieces.end:], final=True))
        parts.append(isal_zlib.crc32(body).to_bytes(4, "little"))
        parts.append((len(body) & 0xFFFFFFFF).to_bytes(4, "little"))
        return b"".join(parts)

    def held(self) -> int:
        """Bytes of the pieces kept."""
        return self._bytes

    def _piece(self, pair: tuple[bytes, bytes, bytes], before: bytes, item: bytes) -> bytes:
        """The piece ``pair`` names (the digest of the item before, empty for the first;
        the separator; the item's digest): the separator and ``item`` compressed after
        ``before``, made now and kept."""
        sep = pair[1]
        made = _deflate(sep + item, before[-WINDOW:], final=False)
        with self._lock:
            self.made += 1
            if pair not in self._kept:
                self._kept[pair] = made
                self._bytes += len(made)
                while len(self._kept) > 1 and self._bytes > self._limit:
                    self._bytes -= len(self._kept.popitem(last=False)[1])
        return made


@functools.cache
def version() -> str:
    """What a spliced body's bytes depend on besides the answer it is made of: this
    module and :mod:`~feedserver.query.pieces` (how pieces are cut and joined, the level),
    ISA-L's version (how a piece is compressed) and zlib's (the stored blocks past
    :data:`STORED_BY_HAND`).  The same answer gives the same bytes wherever these are the
    same, so an answer's gzip ETag may be named from its plain one and this
    (:func:`etag_from`) instead of hashing the compressed bytes again."""
    return digest(["web/gzipped.py", "query/pieces.py"], ["isal"]) + zlib.ZLIB_RUNTIME_VERSION


def etag_from(plain_etag: str) -> str:
    """The strong ETag of the gzip body :meth:`Segments.spliced` made of an answer whose
    ETag is ``plain_etag`` (the engine's, made from where its items lie).

    Equal plain ETags are equal bodies with their items at the same places (the engine's
    ETag names where they lie and each item's digest: ``Engine._signed``), and
    :meth:`Segments.spliced` is a function of those and :func:`version` alone (every piece
    is kept under the digests of what it is made of), so equal names are equal gzip
    bytes.  SHA-256 over the compressed body cost 25-57 us of a first compressed answer
    (1-50 items); this costs about 1.  A body compressed whole is named by its bytes."""
    named = hashlib.sha256(f"gzip\0{version()}\0{plain_etag}".encode())
    return '"' + named.hexdigest()[:32] + '"'


def _stored(data: bytes, final: bool) -> bytes:
    """``data`` as stored (uncompressed) deflate blocks (RFC 1951 section 3.2.4), ended by
    a sync flush or as the stream's last block: byte for byte what zlib's level 0 writes
    (tests/unit/test_gzipped.py compares them).

    Up to :data:`STORED_BY_HAND` bytes zlib writes one block: a header byte (1 on the
    stream's last block, else 0), the length and its one's complement, the bytes; a sync
    flush then adds an empty block (the only one when there are no bytes).  Written here:
    zlib set up a compressor for it (its window and hash tables, 20-36 us), twice an
    answer, for a few hundred bytes.  Longer data goes to zlib, which cuts its blocks
    its own way."""
    size = len(data)
    if size > STORED_BY_HAND:
        packer = zlib.compressobj(0, zlib.DEFLATED, -15)
        return packer.compress(data) + packer.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)
    if final:
        return _BLOCK.pack(1, size, size ^ 0xFFFF) + data
    return (_BLOCK.pack(0, size, size ^ 0xFFFF) + data + _EMPTY) if size else _EMPTY


def _deflate(data: bytes, dictionary: bytes, final: bool) -> bytes:
    """Raw deflate of ``data``, which follows ``dictionary``'s bytes in the stream; ended
    by a sync flush (more pieces follow) or as the stream's last block."""
    from isal import isal_zlib

    if dictionary:
        packer = isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, -15, zdict=dictionary)
    else:
        packer = isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush(
        isal_zlib.Z_FINISH if final else isal_zlib.Z_SYNC_FLUSH)

"""A computed answer's gzip body spliced from kept pieces inflates to the very body.

Answers are built as the engine draws them (an envelope around items joined by a
separator) from seeded random items that share markup, and every spliced body is
inflated by the standard library's gzip and zlib (what clients run) and compared with
the plain body byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import zlib

import pytest

from feedserver.query.pieces import Pieces
from feedserver.web import gzipped
from feedserver.web.gzipped import Segments


def item(rng: random.Random, n: int) -> bytes:
    """An item fragment: shared markup around text of a few hundred to a few thousand
    bytes (some of it not ASCII)."""
    words = ["steppe", "gas", "pipeline", "Астана", "café", "rail", "<b>", "&amp;"]
    text = " ".join(rng.choice(words) for _ in range(rng.randint(20, 900)))
    return (f'<entry><id>https://example.org/articles/a-{n}</id><title>{n}</title>'
            f'<link rel="alternate" href="https://example.org/articles/a-{n}.html"/>'
            f"<content type=\"html\">{text}</content></entry>\n").encode()


def answer(items: list[bytes], separator: bytes = b"", own: str = "?limit=3"
           ) -> tuple[bytes, Pieces]:
    head = f'<?xml version="1.0" encoding="utf-8"?>\n<feed><id>x{own}</id>\n'.encode()
    tail = b"</feed>\n"
    body = head + separator.join(items) + tail
    keys = tuple(hashlib.sha256(i).digest() for i in items)
    return body, Pieces(len(head), len(body) - len(tail), tuple(items), keys, separator)


def inflated(packed: bytes) -> bytes:
    by_gzip = gzip.decompress(packed)
    by_zlib = zlib.decompressobj(wbits=31)
    assert by_zlib.decompress(packed) == by_gzip and by_zlib.eof and not by_zlib.unused_data
    return by_gzip


@pytest.mark.parametrize("separator", [b"", b","])
def test_every_spliced_answer_inflates_to_its_body(separator: bytes) -> None:
    rng = random.Random(7)
    channel = [item(rng, n) for n in range(60)]
    segments = Segments()
    for round_ in range(80):
        # what answers of one channel list: its items in order, some left out, cut
        chosen = [i for i in channel if rng.random() < 0.8][:rng.randint(1, 49)]
        body, pieces = answer(chosen, separator, own=f"?limit={round_}")
        assert inflated(segments.gzip(body, pieces)) == body


def test_answers_of_one_channel_reuse_their_neighbours_pieces() -> None:
    rng = random.Random(3)
    channel = [item(rng, n) for n in range(30)]
    segments = Segments()
    body, pieces = answer(channel[:20])
    segments.gzip(body, pieces)
    assert segments.made == 20
    body, pieces = answer(channel[:21], own="?limit=21")  # one item more, at the end
    assert inflated(segments.gzip(body, pieces)) == body
    assert segments.made == 21
    body, pieces = answer(channel[:5] + channel[6:12], own="?q=x")  # one left out
    assert inflated(segments.gzip(body, pieces)) == body
    assert segments.made == 22  # only the pair that was never neighbours


def test_the_same_answer_is_the_same_bytes_in_a_fresh_worker() -> None:
    """Its ETag is made of its bytes: a worker that kept other pieces, or none, must
    give the same ones."""
    rng = random.Random(5)
    channel = [item(rng, n) for n in range(25)]
    warm = Segments()
    for limit in range(1, 26):
        warm.gzip(*answer(channel[:limit], own=f"?limit={limit}"))
    body, pieces = answer(channel[3:17], own="?since=x")
    assert warm.gzip(body, pieces) == Segments().gzip(body, pieces)


def test_pieces_that_do_not_lie_in_the_body_compress_it_whole() -> None:
    rng = random.Random(9)
    channel = [item(rng, n) for n in range(6)]
    body, pieces = answer(channel)
    segments = Segments()
    for wrong in (body.replace(b"<title>3<", b"<title>4<"), b" " + body,
                  body[:pieces.end - 1]):
        assert inflated(segments.gzip(wrong, pieces)) == wrong
    assert segments.made == 0
    assert inflated(segments.gzip(body, None)) == body
    tail_changed = body + b" "  # the items still lie where the pieces say
    assert inflated(segments.gzip(tail_changed, pieces)) == tail_changed
    assert segments.made == 6


def test_kept_pieces_stay_within_their_bound() -> None:
    rng = random.Random(11)
    channel = [item(rng, n) for n in range(40)]
    segments = Segments(limit=20_000)
    for start in range(0, 35, 5):
        body, pieces = answer(channel[start:start + 5], own=f"?s={start}")
        assert inflated(segments.gzip(body, pieces)) == body
        assert segments.held() <= 20_000


def test_the_envelope_is_stored_and_the_items_compressed() -> None:
    """The envelope (new with every answer, a few hundred bytes) goes in stored blocks:
    its bytes lie in the stream as they are; the items are still compressed."""
    rng = random.Random(11)
    channel = [item(rng, n) for n in range(12)]
    body, pieces = answer(channel, own="?limit=12&q=stored")
    packed = Segments().gzip(body, pieces)
    assert inflated(packed) == body
    assert body[:pieces.at] in packed and body[pieces.end:] in packed
    assert len(packed) < len(body) / 2


def zlib_stored(data: bytes, final: bool) -> bytes:
    """What zlib's level 0 writes for ``data``: the reference of the envelope's blocks."""
    packer = zlib.compressobj(0, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


SIZES = [*range(0, 300), *range(300, gzipped.STORED_BY_HAND + 1, 97),
         gzipped.STORED_BY_HAND - 1, gzipped.STORED_BY_HAND, gzipped.STORED_BY_HAND + 1,
         40_000, 70_000, 200_000]


@pytest.mark.parametrize("final", [False, True])
def test_stored_blocks_are_zlibs_bytes_and_small_ones_made_without_a_compressor(
        final: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    data = bytes(rng.randrange(256) for _ in range(max(SIZES)))
    expected = {size: zlib_stored(data[:size], final) for size in SIZES}
    made: list[int] = []
    real = zlib.compressobj

    def counted(*args: object) -> object:
        made.append(1)
        return real(*args)

    monkeypatch.setattr(gzipped.zlib, "compressobj", counted)
    for size in SIZES:
        before = len(made)
        assert gzipped._stored(data[:size], final) == expected[size], size
        # An envelope's few hundred bytes cost no compressor's set-up (its window and
        # hash tables: 20-36 us, twice an answer); only long data goes to zlib.
        assert len(made) - before == (size > gzipped.STORED_BY_HAND), size


def test_a_spliced_answers_etag_is_named_from_its_plain_one() -> None:
    """An answer's gzip body spliced from pieces is named from the engine's plain ETag
    (which names where its items lie and what they are) and the code that splices, not
    by hashing the compressed bytes; a body compressed whole is named by its bytes."""
    from datetime import UTC, datetime

    from feedserver.publish.manifest import etag_of
    from feedserver.web.filtered import Cached

    rng = random.Random(11)
    chosen = [item(rng, n) for n in range(5)]
    body, pieces = answer(chosen)
    made = Cached(body, "application/atom+xml", datetime(2026, 1, 1, tzinfo=UTC), 60,
                  "https://example.org/feed.atom?limit=3", size=len(body), pieces=pieces)
    made.bodies[""] = ('"plain-etag"', body)
    segments = Segments()
    etag, packed = made.variant("gzip", segments)
    assert inflated(packed) == body
    assert etag == gzipped.etag_from('"plain-etag"') != etag_of(packed)
    assert etag != gzipped.etag_from('"another answer"')
    assert etag.startswith('"') and len(etag) == 34
    # Pieces that do not lie in the body: compressed whole, named by its bytes.
    odd = Cached(body, "application/atom+xml", datetime(2026, 1, 1, tzinfo=UTC), 60,
                 "https://example.org/feed.atom?limit=3", size=len(body),
                 pieces=Pieces(pieces.at + 1, pieces.end, pieces.items, pieces.keys))
    odd.bodies[""] = ('"plain-etag"', body)
    etag, packed = odd.variant("gzip", segments)
    assert inflated(packed) == body and etag == etag_of(packed)


def test_the_splicing_codes_version_names_its_modules_and_libraries(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What a gzip ETag is named with changes with ISA-L's version (how pieces are
    compressed), so two workers running different ones never share a name for
    different bytes."""
    gzipped.version.cache_clear()
    now = gzipped.version()
    monkeypatch.setattr(gzipped, "digest", lambda modules, libraries: "|".join(
        [*modules, *(f"{name}=other" for name in libraries)]))
    gzipped.version.cache_clear()
    try:
        assert gzipped.version() != now
        assert "isal=other" in gzipped.version() and "web/gzipped.py" in gzipped.version()
    finally:
        gzipped.version.cache_clear()

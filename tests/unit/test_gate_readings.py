"""The gate's cheap path says what the full feedparser round trip says, for less.

Each distinct item is parsed by feedparser once in a context (its bytes' digest keys
the reading), and so is each element of the document's envelope (the channel's title,
links, dates: read with the items new to it, or alone when there are none), and expat
reads the whole document.
These tests pin what that must never lose: the cheap path's findings equal
the full parse's for clean documents and for every kind of corruption the mutation
test injects; an item that differs by one byte is parsed again; the same bytes in
another context are parsed again; and shared items really are parsed only once.
When the renderer says which item fragments it spliced in (a filtered answer, a build's
channel), expat reads the envelope with one of them instead of the whole document: the
hint is checked against the bytes, and any hint that does not hold changes nothing.
"""

from __future__ import annotations

import io
import random
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import pytest

from feedserver.core.records import Article, Channel
from feedserver.render import feeds
from feedserver.render.formats import FORMATS, rss_atom
from feedserver.render.formats.base import Seen
from feedserver.render.formats.readings import Readings, pack, split_packed, unpack
from feedserver.render.formats.xml_items import Elements, elements, probe, split
from feedserver.validate import findings
from tests.integration.test_gate_mutations import KINDS, _mutate_xml

WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CTX = feeds.Context("S", "https://x.example/", "en", "", 30, {"t": "T"})
ITEM = {"rss": ("item", 3), "atom": ("http://www.w3.org/2005/Atom entry", 2)}


def article(n: int) -> Article:
    when = WHEN - timedelta(hours=n)
    return Article(f"urn:x:{n}", f"s{n}", f"s{n}.txt", f"Story {n} & <more>",
                   f"https://x.example/articles/s{n}/", f"<p>Body {n}</p>", f"Body {n}",
                   when, when + timedelta(minutes=n), topics=("t",))


ARTICLES = tuple(article(n) for n in range(12))


def channel(slug: str, articles: tuple[Article, ...]) -> Channel:
    path = "" if slug == "all" else f"topics/{slug}"
    return Channel(slug, slug.title(), f"About {slug}", path, f"https://x.example/{path}",
                   articles, articles[0].updated)


ALL = channel("all", ARTICLES)
TOPIC = channel("t", ARTICLES[::2])


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """The documents feedparser is given, in order."""
    seen: list[bytes] = []
    real = feedparser.parse

    def counting(source: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(source.getvalue() if isinstance(source, io.BytesIO) else b"")
        return real(source, *args, **kwargs)

    monkeypatch.setattr(feedparser, "parse", counting)
    yield seen


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_the_document_is_its_envelope_and_items(fmt: str) -> None:
    body = feeds.render(ALL, FORMATS[fmt], CTX)
    cut = split(body, *ITEM[fmt])
    assert cut is not None and len(cut.items) == len(ARTICLES)
    assert cut.head + b"".join(cut.items) + cut.tail == body
    assert all(f"urn:x:{n}<".encode() in one for n, one in enumerate(cut.items))


@pytest.mark.parametrize("fmt", ["rss", "atom"])
@pytest.mark.parametrize("change", ["broken", "text between", "comment between",
                                    "doctype", "nested", "no items"])
def test_a_document_not_shaped_as_rendered_is_not_cut(fmt: str, change: str) -> None:
    body = feeds.render(ALL, FORMATS[fmt], CTX)
    cut = split(body, *ITEM[fmt])
    assert cut is not None
    first, second = cut.items[0], cut.items[1]
    join = len(cut.head) + len(first)
    tag = b"<item>" if fmt == "rss" else b"<entry>"
    changed = {
        "broken": body.replace(b"</title>", b"<b></title>", 3),
        "text between": body[:join] + b" " + body[join:],
        "comment between": body[:join] + b"<!-- x -->" + body[join:],
        "doctype": body.replace(b"?>\n", b"?>\n<!DOCTYPE x>", 1),
        "nested": body.replace(second, second.replace(tag, tag + first, 1), 1),
        "no items": cut.head + cut.tail,
    }[change]
    assert split(changed, *ITEM[fmt]) is None


def envelope_of(body: bytes, fmt: str) -> Elements:
    """The document without its items, cut around its own elements."""
    cut = split(body, *ITEM[fmt])
    assert cut is not None
    found = elements(cut.head + cut.tail, ITEM[fmt][1])
    assert found is not None
    return found


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_shared_items_and_envelope_elements_are_parsed_once(
        fmt: str, parses: list[bytes]) -> None:
    readings = Readings()
    for chan in (ALL, TOPIC, ALL):
        body = feeds.render(chan, FORMATS[fmt], CTX)
        assert findings(chan, fmt, body, readings) == []
    first, topic = parses  # ALL again: nothing of it is new
    assert first == feeds.render(ALL, FORMATS[fmt], CTX)  # every item, in its envelope
    known = envelope_of(first, fmt).elements
    own = envelope_of(feeds.render(TOPIC, FORMATS[fmt], CTX), fmt)
    assert any(e in known for e in own.elements)  # (the generator, the author...)
    assert topic == own.opening + b"".join(e for e in own.elements if e not in known) \
        + own.closing  # no item: each was read in ALL


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_an_envelope_read_alone_is_not_read_again(fmt: str, parses: list[bytes]) -> None:
    """Every RFC 3229 delta of a feed is the feed's envelope with fewer items: once the
    envelope has been read alone, a document with it and items already read costs no
    parse; one that differs by a byte, or holds an item not read yet, does."""
    readings = Readings()
    body = feeds.render(ALL, FORMATS[fmt], CTX)
    assert findings(ALL, fmt, body, readings) == []  # items and envelope, read together
    assert findings(ALL, fmt, body, readings) == []  # its elements were read: no parse
    assert len(parses) == 1
    for fewer in (ARTICLES[:3], ARTICLES[5:6]):  # (a document with none is read whole)
        partial = replace(ALL, articles=fewer)
        assert findings(partial, fmt, feeds.render(partial, FORMATS[fmt], CTX), readings) == []
    assert len(parses) == 1
    described = replace(ALL, description="About all of it")
    assert findings(described, fmt, feeds.render(described, FORMATS[fmt], CTX), readings) == []
    assert len(parses) == 2 and b"About all of it" in parses[-1]
    assert b"<title>All</title>" not in parses[-1]  # only what changed is read
    newer = replace(ALL, articles=(article(99), *ARTICLES[:2]))
    assert findings(newer, fmt, feeds.render(newer, FORMATS[fmt], CTX), readings) == []
    assert len(parses) == 3 and b"urn:x:99<" in parses[-1]
    broken = body.replace(b"<title>All</title>", b"<title>All</titel>", 1)
    assert broken != body and findings(ALL, fmt, broken, readings)  # never vouched for


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_one_changed_byte_is_parsed_again_and_caught(fmt: str, parses: list[bytes]) -> None:
    readings = Readings()
    clean = feeds.render(ALL, FORMATS[fmt], CTX)
    assert findings(ALL, fmt, clean, readings) == []
    body = clean.replace(b"Story 3 ", b"Story 3!", 1)
    found = findings(ALL, fmt, body, readings)
    assert [f.item for f in found] == [3] and "title" in found[0].reason
    assert b"Story 3!" in parses[-1] and b"Story 4 " not in parses[-1]


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_the_same_item_in_another_context_is_parsed_again(fmt: str,
                                                          parses: list[bytes]) -> None:
    readings = Readings()
    body = feeds.render(ALL, FORMATS[fmt], CTX)
    assert findings(ALL, fmt, body, readings) == []
    root = b"<rss " if fmt == "rss" else b"<feed "
    based = body.replace(root, root + b'xml:base="https://elsewhere.example/" ', 1)
    assert findings(ALL, fmt, based, readings) == []
    cut = split(body, *ITEM[fmt])
    assert cut is not None and all(one in parses[-1] for one in cut.items)


def corruptions(fmt: str) -> Iterator[tuple[str, bytes]]:
    """Every kind the mutation test injects, several times each, seeded."""
    clean = feeds.render(ALL, FORMATS[fmt], CTX)
    rng = random.Random(f"readings/{fmt}")
    for kind in KINDS:
        for _ in range(4):
            yield kind, _mutate_xml(clean, fmt, kind, rng)


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_the_cheap_path_finds_what_the_full_parse_finds(fmt: str) -> None:
    readings = Readings()
    for chan in (ALL, TOPIC):  # every clean item read already, as in a build
        assert findings(chan, fmt, feeds.render(chan, FORMATS[fmt], CTX), readings) == []
    for kind, body in corruptions(fmt):
        full = findings(ALL, fmt, body)
        assert full, kind  # each is a fault the gate must see
        assert findings(ALL, fmt, body, readings) == full, kind
        assert findings(ALL, fmt, body, Readings()) == full, kind  # and with nothing read


def test_a_fragment_in_the_envelope_of_another_format_is_not_reused() -> None:
    readings = Readings()
    one = replace(ALL, articles=ARTICLES[:1])
    for fmt in ("rss", "atom"):
        assert findings(one, fmt, feeds.render(one, FORMATS[fmt], CTX), readings) == []
    assert len(readings) == 2


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_the_gate_reads_with_expat_whatever_sax_drivers_are_installed(
        fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """feedparser prefers libxml2's SAX driver (``drv_libxml2``) where its bindings are
    installed (Debian's python3-libxml2): the gate's reading must not hang on what a
    machine happens to have (and, where the driver is absent, must not pay a failed
    import of it on every parse)."""
    import types
    from xml.sax import expatreader

    used: list[str] = []

    def create_parser() -> Any:
        used.append("drv_libxml2")
        return expatreader.create_parser()

    driver = types.ModuleType("drv_libxml2")
    driver.create_parser = create_parser  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "drv_libxml2", driver)
    for chan in (ALL, TOPIC):
        assert findings(chan, fmt, feeds.render(chan, FORMATS[fmt], CTX)) == []
    assert used == []


def spliced(chan: Channel, fmt: str, cache: feeds.ItemCache) -> tuple[bytes, list[bytes]]:
    """The channel's document and the item fragments the renderer spliced into it."""
    items = [cache.get(FORMATS[fmt], a, CTX) for a in chan.articles]
    return FORMATS[fmt].channel(chan, CTX, items), items


@pytest.fixture
def cuts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The size of each document expat is asked to cut, in order (a probe's document is
    the envelope with the witness)."""
    sizes: list[int] = []
    real, real_probe = rss_atom.split, rss_atom.probe

    def counting(body: bytes, name: str, depth: int) -> Any:
        sizes.append(len(body))
        return real(body, name, depth)

    def probing(head: bytes, witness: bytes, tail: bytes, name: str, depth: int) -> Any:
        sizes.append(len(head + witness + tail))
        return real_probe(head, witness, tail, name, depth)

    monkeypatch.setattr(rss_atom, "split", counting)
    monkeypatch.setattr(rss_atom, "probe", probing)
    yield sizes


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_the_renderers_items_spare_expat_the_whole_document(
        fmt: str, parses: list[bytes], cuts: list[int]) -> None:
    cache = feeds.ItemCache()
    body, items = spliced(ALL, fmt, cache)
    assert findings(ALL, fmt, body, cache.readings, items) == []  # new items: cut whole
    assert cuts[-1] == len(body) and len(parses) == 1
    for chan in (TOPIC, replace(ALL, articles=ARTICLES[3:5])):
        body, items = spliced(chan, fmt, cache)
        assert findings(chan, fmt, body, cache.readings, items) == []
        assert len(parses) == 2 and b"urn:x:" not in parses[-1]  # TOPIC's own elements
        cut = split(body, *ITEM[fmt])
        assert cut is not None
        tag = b"item" if fmt == "rss" else b"entry"  # an empty one stands for the items
        assert cuts[-1] == len(cut.head + cut.tail) + len(b"<%s></%s>" % (tag, tag)) < len(body)


def read_already(fmt: str) -> tuple[feeds.ItemCache, list[bytes]]:
    """An item cache whose readings hold every clean item and envelope of ALL and TOPIC
    (as in a build), and ALL's clean fragments."""
    cache = feeds.ItemCache()
    for chan in (ALL, TOPIC):
        body, items = spliced(chan, fmt, cache)
        assert findings(chan, fmt, body, cache.readings, items) == []
    return cache, spliced(ALL, fmt, cache)[1]


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_a_hint_that_does_not_hold_changes_no_finding(fmt: str) -> None:
    """Corrupted bytes with the clean fragments as the hint, and corrupted fragments
    spliced and named as the hint: the findings are the full parse's, every time."""
    cache, clean = read_already(fmt)
    for kind, body in corruptions(fmt):
        full = findings(ALL, fmt, body)
        assert findings(ALL, fmt, body, cache.readings, clean) == full, kind
        cut = split(body, *ITEM[fmt])
        if cut is not None:  # the corruption in the fragments the hint names
            assert findings(ALL, fmt, body, cache.readings, cut.items) == full, kind
    body, items = spliced(ALL, fmt, cache)
    for hint in (items[::-1], items[1:], [items[0] + items[1], *items[2:]], [b"", *items]):
        assert findings(ALL, fmt, body, cache.readings, hint) == [], "a clean document"
    cut = split(body, *ITEM[fmt])
    assert cut is not None
    deeper = cut.head + b"<x>" + b"".join(items) + b"</x>" + cut.tail  # not where items go
    assert findings(ALL, fmt, deeper, cache.readings, items) == findings(ALL, fmt, deeper)


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_only_fragments_expat_cut_as_one_item_vouch_for_one(fmt: str,
                                                             parses: list[bytes]) -> None:
    """Two items glued into one 'fragment' have no reading of their own: a hint naming
    them so is not vouched for, and the document is cut by expat (each item read alone)."""
    readings = Readings()
    two = replace(ALL, articles=ARTICLES[:2])
    cache = feeds.ItemCache(readings=readings)
    body, items = spliced(two, fmt, cache)
    glued = [items[0] + items[1]]
    assert findings(two, fmt, body, readings, glued) == []
    assert rss_atom._spliced(body, FORMATS[fmt].media_type, "rss20" if fmt == "rss"
                             else "atom10", ("published",) if fmt == "rss"
                             else ("published", "updated"), ITEM[fmt], readings,
                             glued) is None
    assert len(readings) == 2 and len(parses) == 1


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_items_new_to_the_gate_are_read_without_the_others(
        fmt: str, parses: list[bytes], cuts: list[int]) -> None:
    """A document of some items read and some not (a filtered answer reaching further
    back): expat and feedparser read the envelope with only the new ones."""
    cache = feeds.ItemCache()
    older = replace(ALL, articles=ARTICLES[6:])
    body, items = spliced(older, fmt, cache)
    assert findings(older, fmt, body, cache.readings, items) == []
    body, items = spliced(ALL, fmt, cache)
    assert findings(ALL, fmt, body, cache.readings, items) == []
    cut = split(body, *ITEM[fmt])
    assert cut is not None
    envelope = envelope_of(body, fmt)  # the same as older's: read with older's items
    assert parses[-1] == envelope.opening + b"".join(items[:6]) + envelope.closing
    assert cuts[-1] == len(cut.head + b"".join(items[:6]) + cut.tail) < len(body)
    assert findings(ALL, fmt, body, cache.readings, items) == []  # all read, envelope too
    assert len(parses) == 2


@pytest.mark.parametrize("kept", [0, 2])
def test_a_fragments_key_is_its_digest_remembered_or_not(kept: int) -> None:
    import hashlib

    readings = Readings(keys=kept)
    prefix = hashlib.sha256(b"context")
    fragments = [b"<item>%d</item>" % n for n in range(4)]
    for fragment in fragments * 2 + [bytes(bytearray(fragments[0]))]:  # equal, not same
        expected = hashlib.sha256(b"context" + fragment).digest()
        assert readings.key_of(prefix, prefix.digest(), fragment) == expected
    assert len(readings._keys) == kept


def _spliced_at_by_search(body: bytes, fragments: list[bytes]) -> tuple[int, int] | None:
    """The definition ``spliced_at`` must keep: the whole first fragment searched for, and
    the joined run where it is ((-1, -1) for no fragment, as answer ETags were made)."""
    if not fragments:
        return -1, -1
    at, run = body.find(fragments[0]), b"".join(fragments)
    return (at, at + len(run)) if at >= 0 and body.startswith(run, at) else None


def test_where_the_items_lie_is_found_as_a_search_for_the_first_would() -> None:
    from feedserver.render.formats.base import spliced_at

    rng = random.Random(7)
    long = b"<entry><id>https://x.example/articles/" + b"a" * 70 + b"</id>"
    cases: list[tuple[bytes, list[bytes]]] = [(b"<feed></feed>", [])]
    for _ in range(400):
        items = [long + bytes(rng.choice(b"xyz<>/") for _ in range(rng.randint(0, 90)))
                 for _ in range(rng.randint(1, 4))]
        # a head holding the first item's first 64 bytes (or all but its last byte) first
        decoy = rng.choice([b"", items[0][:64], items[0][:-1], long[:20]])
        run = b"".join(items)
        if rng.random() < 0.2:  # not side by side
            run = items[0] + b"<gap/>" + b"".join(items[1:])
        body = b"<feed>" + decoy + b"<t/>" + run + b"</feed>"
        cases.append((body, items))
        cases.append((body, [items[0][:10]]))  # a fragment shorter than the probe
    for body, items in cases:
        assert spliced_at(body, items) == _spliced_at_by_search(body, items)


def envelope_faults(fmt: str) -> Iterator[tuple[str, bytes]]:
    """Faults in the envelope's own elements (what a channel says, not an item), each next
    to elements the gate has read before; and text between them, which feedparser takes
    (not a fault) but which is not how the renderer writes an envelope."""
    clean = feeds.render(ALL, FORMATS[fmt], CTX)
    title = b"<title>All</title>"
    assert title in clean
    for kind, instead in (("entity", b"<title>All &bogus;</title>"),
                          ("unbound prefix", title + b"<x:y>z</x:y>"),
                          ("control character", b"<title>All\x01</title>"),
                          ("unclosed", b"<title>All"),
                          ("bad bytes", b"<title>All \xff\xfe</title>"),
                          ("text between elements", title + b"loose text"),
                          ("an element split", b"<title>All</title></x>")):
        yield kind, clean.replace(title, instead, 1)


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_an_envelope_is_read_element_by_element_each_once(fmt: str,
                                                          parses: list[bytes]) -> None:
    """A filtered answer's envelope differs from its channel's only in a few elements (its
    own URL as id and self link, its date): feedparser reads those, in the envelope's
    context, and not again the elements it has read there before."""
    readings = Readings()
    assert findings(ALL, fmt, feeds.render(ALL, FORMATS[fmt], CTX), readings) == []
    later = replace(ALL, updated=ALL.updated + timedelta(hours=1))
    body = feeds.render(later, FORMATS[fmt], CTX)
    assert findings(later, fmt, body, readings) == []
    assert len(parses) == 2
    read = parses[-1]
    assert (b"<updated>" if fmt == "atom" else b"<lastBuildDate>") in read
    assert b"<title>All</title>" not in read and b"<generator" not in read  # read before
    assert b"urn:x:" not in read  # and the items too
    assert read.startswith(b"<?xml") and read.rstrip().endswith(
        b"</feed>" if fmt == "atom" else b"</channel></rss>")
    assert findings(later, fmt, body, readings) == [] and len(parses) == 2  # known whole


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_a_fault_beside_envelope_elements_read_before_is_found_as_the_full_parse_finds(
        fmt: str) -> None:
    cache, clean = read_already(fmt)
    for kind, body in envelope_faults(fmt):
        full = findings(ALL, fmt, body)
        assert bool(full) is (kind != "text between elements"), kind
        assert findings(ALL, fmt, body, cache.readings) == full, kind
        assert findings(ALL, fmt, body, cache.readings, clean) == full, kind


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_a_document_without_items_reads_only_envelope_elements_new_to_it(
        fmt: str, parses: list[bytes]) -> None:
    """An answer that holds no item (a poller's ``since`` after the newest article, a
    search that finds nothing) is its channel's envelope: feedparser reads only what it
    has not read in that context, as for an answer with items, not the whole document."""
    cache, _ = read_already(fmt)
    before = len(parses)
    empty = replace(ALL, articles=())
    body, items = spliced(empty, fmt, cache)
    assert items == [] and b"urn:x:" not in body
    assert findings(empty, fmt, body, cache.readings, items) == []
    assert len(parses) == before  # every element of it was read in ALL's document
    later = replace(empty, updated=ALL.updated + timedelta(days=1))
    body, items = spliced(later, fmt, cache)
    assert findings(later, fmt, body, cache.readings, items) == []
    assert len(parses) == before + 1
    read = parses[-1]
    assert (b"<updated>" if fmt == "atom" else b"<lastBuildDate>") in read
    assert b"<title>All</title>" not in read and b"<generator" not in read
    assert findings(later, fmt, body, cache.readings, items) == [] \
        and len(parses) == before + 1  # known whole


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_a_document_without_items_is_judged_as_the_full_parse_judges_it(fmt: str) -> None:
    """Faults in an itemless document's envelope, beside elements read before; a document
    whose items the hint leaves out; items where none may go: each gets the findings of
    the full parse."""
    cache, _ = read_already(fmt)
    empty = replace(ALL, articles=())
    clean, _ = spliced(empty, fmt, cache)
    title = b"<title>All</title>"
    for kind, instead in (("entity", b"<title>All &bogus;</title>"),
                          ("unbound prefix", title + b"<x:y>z</x:y>"),
                          ("control character", b"<title>All\x01</title>"),
                          ("unclosed", b"<title>All"),
                          ("text between elements", title + b"loose text"),
                          ("an element split", b"<title>All</title></x>")):
        body = clean.replace(title, instead, 1)
        assert findings(empty, fmt, body, cache.readings, []) == findings(empty, fmt, body), kind
    full, _ = spliced(ALL, fmt, cache)
    assert findings(empty, fmt, full, cache.readings, []) == findings(empty, fmt, full) != []
    closing = b"</channel>" if fmt == "rss" else b"</feed>"
    at = clean.rindex(closing)
    for odd in (b"<x></x>", b"<item></item>", b"<entry></entry>", b"<!-- x -->"):
        body = clean[:at] + odd + clean[at:]
        assert findings(empty, fmt, body, cache.readings, []) == findings(empty, fmt, body), odd


_ODD = [b"<", b">", b"&", b'"', b"'", b"\x00", b"\x01", b"\xff", b" ", b"x", b"/", b"="]


def random_edits(clean: bytes, seed: str, count: int) -> Iterator[tuple[str, bytes]]:
    """``count`` seeded edits of ``clean``, one byte each: replaced by markup, an entity,
    a quote, a control or a stray byte; deleted; doubled (where, and the edited bytes)."""
    rng = random.Random(seed)
    for _ in range(count):
        at = rng.randrange(len(clean))
        edit = rng.choice(("replace", "delete", "double"))
        if edit == "replace":
            body = clean[:at] + rng.choice(_ODD) + clean[at + 1:]
        elif edit == "delete":
            body = clean[:at] + clean[at + 1:]
        else:
            body = clean[:at + 1] + clean[at:]
        yield f"{edit} at {at}: {clean[at - 20:at + 20]!r}", body


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_random_faults_in_a_document_without_items_are_judged_as_the_full_parse_judges(
        fmt: str) -> None:
    """Seeded random edits of an itemless document, every element read before: the
    cheap path's findings are the full parse's, every time."""
    cache, _ = read_already(fmt)
    empty = replace(ALL, articles=())
    clean, _ = spliced(empty, fmt, cache)
    judged = 0
    for where, body in random_edits(clean, f"itemless/{fmt}", 300):
        full = findings(empty, fmt, body)
        judged += bool(full)
        assert findings(empty, fmt, body, cache.readings, []) == full, where
    assert judged > 100  # most edits are faults the gate must see


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_an_encoding_expat_cannot_read_is_judged_by_the_full_parse(fmt: str) -> None:
    """A declaration naming an encoding Python does not know, or one expat cannot take
    (multi-byte): expat raised from the gate's cutters, and the finding blamed feedparser,
    where the full parse reads the bytes as the HTTP charset says (the random edits above
    found it). The cheap paths hand such a document to the full parse."""
    cache, clean = read_already(fmt)
    empty = replace(ALL, articles=())
    bodies = [(ALL, spliced(ALL, fmt, cache)[0], clean),
              (empty, spliced(empty, fmt, cache)[0], [])]
    for chan, body, hint in bodies:
        for name in (b"UTF-88", b"shift_jis", b"utf-16", b"latin-1"):
            declared = body.replace(b"encoding='UTF-8'", b"encoding='" + name + b"'", 1)
            assert declared != body
            full = findings(chan, fmt, declared)
            assert findings(chan, fmt, declared, cache.readings, hint) == full, name
            assert findings(chan, fmt, declared, cache.readings) == full, name


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_random_faults_anywhere_in_a_document_are_judged_as_the_full_parse_judges(
        fmt: str) -> None:
    """The same seeded random edits anywhere in a document with items (its envelope, its
    items, between them), every clean item and element read before, with the renderer's
    hint and without: the cheap paths' findings are the full parse's, every time."""
    cache, _ = read_already(fmt)
    three = replace(ALL, articles=ARTICLES[:3])
    clean, items = spliced(three, fmt, cache)
    judged = 0
    for where, body in random_edits(clean, f"anywhere/{fmt}", 150):
        full = findings(three, fmt, body)
        judged += bool(full)
        for hint in (items, None):
            assert findings(three, fmt, body, cache.readings, hint) == full, where
    assert judged > 50


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_a_probe_is_the_witness_split_and_the_envelope_cut_in_one_pass(fmt: str) -> None:
    """``probe(head, witness, tail)`` is ``split`` of the envelope with the witness and
    ``elements`` of the envelope without it, exactly, for the renderers' envelopes, the
    same with elements around the witness moved, and seeded random edits of each."""
    name, depth = ITEM[fmt]
    tag = name.rpartition(" ")[2].encode()
    witness = b"<" + tag + b"></" + tag + b">"
    envelopes = []
    for chan in (ALL, TOPIC, replace(ALL, articles=())):
        body = feeds.render(chan, FORMATS[fmt], CTX)
        cut = split(body, name, depth)
        if cut is None:  # no items: the envelope ends with the items' parent
            own = elements(body, depth)
            assert own is not None
            cut_at = len(body) - len(own.closing)
            envelopes.append((body[:cut_at], body[cut_at:]))
        else:
            envelopes.append((cut.head, cut.tail))
    head, tail = envelopes[0]
    own = elements(head + tail, depth)
    assert own is not None and len(own.elements) > 3
    # The witness between the envelope's own elements, not only after them.
    middle = len(own.opening) + sum(len(e) for e in own.elements[:2])
    envelopes.append(((head + tail)[:middle], (head + tail)[middle:]))
    checked = 0
    for head, tail in envelopes:
        cases = [("clean", head + b"\0" + tail)]
        cases += random_edits(head + b"\0" + tail, f"probe/{fmt}/{len(head)}", 120)
        for where, edited in cases:
            if edited.count(b"\0") != 1:
                continue
            h, _, t = edited.partition(b"\0")
            expected = split(h + witness + t, name, depth)
            found = probe(h, witness, t, name, depth)
            if expected is None:
                assert found is None, where
                continue
            assert found is not None and found[0] == expected, where
            if expected.items == [witness] and expected.head == h:
                assert found[1] == elements(h + t, depth), where
                checked += 1
    assert checked > 100


def test_readings_taught_as_bytes_are_read_back_as_they_were() -> None:
    """A process that builds once keeps its workers' readings as the bytes they packed
    (split_packed, teach_bytes): each read back equal, written to the store as the store
    writes its own, and a reading the bytes cannot hold taught as it is."""
    rng = random.Random(3)
    taught: dict[bytes, Seen] = {}
    for n in range(200):
        dates = {"published": (2026, 1, rng.randint(1, 28), 1, 2, 3),
                 "updated": None if n % 3 else (2026, 2, 1, 0, 0, 0)}
        taught[b"%032d" % n] = Seen(f"urn:{n}", rng.choice(["T é", "", None]),
                                    f"http://x/{n}", dates,
                                    None if n % 2 else (f"http://x/{n}.mp3",))
    odd = Seen(["not", "a", "string"], "t", "l", {}, None)  # a shape the bytes cannot hold
    readings = Readings()
    readings.back(_Store())
    packed, objects = split_packed({**taught, b"odd" * 11: odd})
    assert objects == {b"odd" * 11: odd}
    readings.teach_bytes(packed)
    readings.teach(objects)
    assert len(readings) == 1  # only the odd one is an object here
    packed = readings.unsaved_packed()
    assert set(packed) == set(taught) and readings.unsaved() == {b"odd" * 11: odd}
    assert all(type(v) is bytes and len(v) < 300 for v in packed.values())
    for key, seen in taught.items():
        assert readings.get(key) == seen  # and now an object in this process's memo
    assert len(readings) == 201 and readings.get(b"odd" * 11) is odd
    assert unpack(b"not marshal") is None and pack(odd) is None


class _Store:
    """A backing store that has nothing (the memo's own bytes are asked first)."""

    def get(self, key: bytes) -> Any:
        return None


def test_readings_taught_as_bytes_stay_bounded_newest_kept() -> None:
    readings = Readings(limit=100)
    for n in range(1000):
        readings.teach_bytes(split_packed({b"%032d" % n: Seen(f"urn:{n}", "t", "l", {},
                                                            None)})[0])
    assert 75 <= len(readings._packed) <= 100
    assert readings.get(b"%032d" % 999) == Seen("urn:999", "t", "l", {}, None)
    assert readings.get(b"%032d" % 0) is None

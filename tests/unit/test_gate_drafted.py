"""A computed feed's envelope, filled in from its channel's template, is read as the template.

The gate reads a filtered answer's envelope as its template (read by expat once, its own
elements by feedparser once) with the answer's own query in place of the template's run of
it, when the hint says so and the bytes agree
(:func:`feedserver.render.formats.rss_atom._drafted`).  These tests pin that it is taken
for clean answers (expat reads no envelope of theirs, feedparser none of their bytes, with
items or without, for random canonical queries, which the full parse also finds clean),
and never where the answer's run could be read otherwise (a run the engine does not write,
an element holding other markup); and that no hint, true or forged, changes a finding: for bodies
filled with odd queries, for forged holes, for random edits of the answer and of the
template itself, the findings are the full parse's.  And the comparisons the gate
remembers (:class:`~feedserver.render.formats.readings.Agreed`) are kept for equal pairs
only, by identity.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest

from feedserver.query.envelopes import CANONICAL, Envelopes, QueryContext
from feedserver.render import feeds
from feedserver.render.formats import FORMATS, rss_atom
from feedserver.render.formats.base import Drafted, Seen
from feedserver.render.formats.readings import Agreed, Readings
from feedserver.validate import compare, findings
from tests.unit.test_gate_readings import (
    ALL,
    ARTICLES,
    CTX,
    ITEM,
    article,
    cuts,  # noqa: F401  (a fixture: the documents expat is asked to probe or cut)
    parses,  # noqa: F401  (a fixture)
    random_edits,
    read_already,
)

QUERIES = ("limit=3", "limit=2&since=2020-01-01T00%3A00%3A00Z", "q=caf%C3%A9", "limit=1")
THREE = replace(ALL, articles=ARTICLES[:3])


def answer(fmt: str, cache: feeds.ItemCache, query: str,
           envelopes: Envelopes) -> tuple[bytes, list[bytes], Drafted]:
    """A computed answer of THREE: its body, its items and the envelope's hint."""
    items = [cache.get(FORMATS[fmt], a, CTX) for a in THREE.articles]
    body, _, drafted = envelopes.drafted(FORMATS[fmt], THREE, QueryContext.of(CTX, query),
                                         CTX, items)
    assert drafted is not None
    return body, items, drafted


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_a_filled_envelope_is_read_as_its_template(fmt: str, cuts: list[int],  # noqa: F811
                                                   parses: list[bytes]) -> None:  # noqa: F811
    """expat reads the template once and no answer's envelope; feedparser reads the
    template's own elements (the hole in them) once, in their context, and then no
    answer's: each answer's are the template's with another run of query."""
    cache, _ = read_already(fmt)
    envelopes = Envelopes()
    rss_atom._template.cache_clear()  # the template is read once, in this test
    cuts.clear()
    for n, query in enumerate(QUERIES):
        body, items, drafted = answer(fmt, cache, query, envelopes)
        assert findings(THREE, fmt, body) == []  # the full parse
        before = len(parses)
        assert findings(THREE, fmt, body, cache.readings, items, drafted) == []
        witness = rss_atom._witness(items[0]) or b""
        assert cuts == [len(drafted.parts[0] + witness + drafted.parts[1])], n
        if n:
            assert len(parses) == before, n
            continue
        assert len(parses) == before + 1
        read = parses[-1]
        # Every element holding its own URL (Atom: its id and self link; RSS: the link),
        # as the template has them.
        assert read.count(drafted.hole) == b"".join(drafted.parts).count(drafted.hole) \
            == (1 if fmt == "rss" else 2), read
        assert drafted.own not in read
        assert b"urn:x:" not in read and b"<title>" not in read


# Characters of a canonical query (envelopes.CANONICAL), runs of which a seeded test fills
# in: every one, so '--', '&&', '%%', '=&' and a leading '&' come up too.
_CANONICAL = sorted(CANONICAL)


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_any_canonical_query_is_judged_as_the_full_parse_judges(
        fmt: str, parses: list[bytes]) -> None:  # noqa: F811
    """Seeded random runs of a canonical query's characters, with items and without: the
    hint holds, the answer is read as its template (no parse of its own), and the full
    parse finds nothing either."""
    cache, _ = read_already(fmt)
    envelopes = Envelopes()
    rng = random.Random(f"canonical/{fmt}")
    queries = ["".join(rng.choice(_CANONICAL) for _ in range(rng.randrange(1, 40)))
               for _ in range(150)]
    queries += ["a--b", "--", "&&", "%", "=", "a&amp", "~/+.", "&"]
    empty = replace(THREE, articles=())
    for chan in (THREE, empty):
        items = [cache.get(FORMATS[fmt], a, CTX) for a in chan.articles]
        body, _, drafted = envelopes.drafted(FORMATS[fmt], chan, QueryContext.of(CTX, "limit=1"),
                                             CTX, items)
        # The first answer: the template's own elements are read.
        assert findings(chan, fmt, body, cache.readings, items, drafted) == []
        for query in queries:
            body, _, drafted = envelopes.drafted(FORMATS[fmt], chan, QueryContext.of(CTX, query),
                                                 CTX, items)
            assert drafted is not None, query
            before = len(parses)
            assert findings(chan, fmt, body, cache.readings, items, drafted) == [], query
            assert len(parses) == before, (query, parses[before:])
            assert findings(chan, fmt, body) == [], query


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_an_answer_without_items_is_read_as_its_template(fmt: str, cuts: list[int],  # noqa: F811
                                                         parses: list[bytes]) -> None:  # noqa: F811
    """A drafted answer that lists nothing (a poller's ``since`` after the newest): expat
    reads the template once, feedparser nothing of the answers after the first."""
    cache, _ = read_already(fmt)
    envelopes = Envelopes()
    empty = replace(THREE, articles=())
    rss_atom._template.cache_clear()
    cuts.clear()
    for n, query in enumerate(QUERIES):
        body, _, drafted = envelopes.drafted(FORMATS[fmt], empty, QueryContext.of(CTX, query),
                                             CTX, [])
        assert drafted is not None
        before = len(parses)
        assert findings(empty, fmt, body, cache.readings, [], drafted) == []
        assert len(cuts) == 1, (n, cuts)
        assert len(parses) == before + (n == 0), n
        assert findings(empty, fmt, body) == []


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_a_query_run_that_is_not_canonical_is_read_as_it_is(
        fmt: str, parses: list[bytes]) -> None:  # noqa: F811
    """An own run the engine never writes is never stood for by the template: feedparser
    reads the elements holding it (or the whole answer)."""
    cache, _ = read_already(fmt)
    _, items, drafted = answer(fmt, cache, "limit=3", Envelopes())
    for own in (b"?a&b", b"?a<b/>c", b'?a"b', b"?caf\xc3\xa9", b"?a b", b"?a]]>b", b"x=1"):
        body, hint = fill(drafted, own, items)
        full = findings(THREE, fmt, body)
        before = len(parses)
        assert findings(THREE, fmt, body, cache.readings, items, hint) == full, own
        assert any(own in read for read in parses[before:]), own


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_a_template_whose_own_elements_hold_other_markup_is_read_as_it_is(
        fmt: str, parses: list[bytes]) -> None:  # noqa: F811
    """The template stands for an answer only where its run of query can only be text or
    an attribute's value: not when the element holding it has a comment, a processing
    instruction or a CDATA section, in which the answer's run could mean something else
    (``--`` ends a comment's right to be one), or declares a namespace (a namespace's
    name tells feedparser what an element is).  There feedparser reads the answer's own
    bytes, and judges as the full parse."""
    cache, _ = read_already(fmt)
    _, items, drafted = answer(fmt, cache, "limit=3", Envelopes())
    hole = drafted.hole
    for extra in (b"<extra><!--" + hole + b"--></extra>",
                  b"<extra><![CDATA[" + hole + b"]]></extra>",
                  b"<extra><?pi " + hole + b"?></extra>",
                  b"<x:extra xmlns:x='urn:x" + hole + b"'/>",
                  b"<extra xmlns='urn:x" + hole + b"'/>"):
        # One more of the envelope's own elements, last before the items.
        template = Drafted((drafted.parts[0] + extra, drafted.parts[1]), hole, drafted.own)
        rss_atom._template.cache_clear()
        for own in (b"?q=a--b", b"?q=a", b"?q=%3F%3E"):
            body, hint = fill(template, own, items)
            full = findings(THREE, fmt, body)
            before = len(parses)
            assert findings(THREE, fmt, body, cache.readings, items, hint) == full, (extra, own)
            assert any(own in read for read in parses[before:]), (extra, own)


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_an_answer_with_new_items_is_read_with_them(fmt: str,
                                                    parses: list[bytes]) -> None:  # noqa: F811
    """Items the gate has not read are cut by expat from the envelope holding only them
    (as without the hint) and read by feedparser with the answer's own elements."""
    envelopes = Envelopes()
    cache, _ = read_already(fmt)
    fresh = replace(THREE, articles=(article(40), *THREE.articles))
    items = [cache.get(FORMATS[fmt], a, CTX) for a in fresh.articles]
    body, _, drafted = envelopes.drafted(FORMATS[fmt], fresh, QueryContext.of(CTX, "limit=4"),
                                         CTX, items)
    assert drafted is not None
    assert findings(fresh, fmt, body, cache.readings, items, drafted) == []
    assert b"urn:x:40" in parses[-1] and parses[-1].count(b"urn:x:") == 1
    assert findings(fresh, fmt, body) == []


def fill(drafted: Drafted, own: bytes, items: list[bytes]) -> tuple[bytes, Drafted]:
    """A body of the template filled with ``own`` (any bytes), and the hint saying so."""
    before, after = (part.replace(drafted.hole, own) for part in drafted.parts)
    return before + b"".join(items) + after, replace(drafted, own=own)


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_an_odd_query_filled_in_is_judged_as_the_full_parse_judges(fmt: str) -> None:
    """A query the engine never writes (a bare ``&``, a quote, markup, nothing): the hint
    holds for the bytes, and the findings are still the full parse's."""
    cache, _ = read_already(fmt)
    _, items, drafted = answer(fmt, cache, "limit=3", Envelopes())
    owns = (b"?a&b", b'?a"b', b"?a'b", b"?a<b/>c", b"?a>b", b"", b"?", b"?x&amp;y&#1;",
            b"?a]]>b", b"?\xff", b"?a&lt;b")
    judged = 0
    for own in owns:
        body, hint = fill(drafted, own, items)
        full = findings(THREE, fmt, body)
        judged += bool(full)
        assert findings(THREE, fmt, body, cache.readings, items, hint) == full, own
    assert judged >= 4  # the bare ampersand, the quote in an attribute, the bytes, &#1;


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_a_forged_hole_is_refused(fmt: str) -> None:
    """A hole the template holds outside its own elements (the prolog, the root's tag) or
    none at all: the template is refused and expat reads the answer as before."""
    cache, _ = read_already(fmt)
    _, items, drafted = answer(fmt, cache, "limit=3", Envelopes())
    head = drafted.parts[0]
    for hole in (b"", b"version", b"xml", head[:head.index(b">") + 1], b"UTF-8'"):
        forged = Drafted(drafted.parts, hole, b"?x")
        body = b"".join((drafted.parts[0].replace(hole, b"?x") if hole else drafted.parts[0],
                         *items,
                         drafted.parts[1].replace(hole, b"?x") if hole else drafted.parts[1]))
        if hole:
            assert rss_atom._template(*drafted.parts, hole, rss_atom._witness(items[0]) or b"",
                                      *ITEM[fmt]) is None, hole
        assert findings(THREE, fmt, body, cache.readings, items, forged) \
            == findings(THREE, fmt, body), hole


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_random_edits_of_an_answer_or_its_template_are_judged_as_the_full_parse_judges(
        fmt: str) -> None:
    """Seeded one-byte edits of a filled answer (with the clean hint), and of the template
    itself (the body filled from the edited template, the hint naming it): the findings
    are the full parse's, every time."""
    cache, _ = read_already(fmt)
    envelopes = Envelopes()
    clean, items, drafted = answer(fmt, cache, "limit=2&since=2020-01-01T00%3A00%3A00Z",
                                   envelopes)
    judged = 0
    for where, body in random_edits(clean, f"drafted/{fmt}", 150):
        full = findings(THREE, fmt, body)
        judged += bool(full)
        assert findings(THREE, fmt, body, cache.readings, items, drafted) == full, where
    for side in (0, 1):
        part = drafted.parts[side]
        for where, edited in random_edits(part, f"template/{fmt}/{side}", 100):
            parts = (edited, drafted.parts[1]) if side == 0 else (drafted.parts[0], edited)
            hint = Drafted(parts, drafted.hole, drafted.own)
            body = b"".join((parts[0].replace(drafted.hole, drafted.own), *items,
                             parts[1].replace(drafted.hole, drafted.own)))
            full = findings(THREE, fmt, body)
            judged += bool(full)
            assert findings(THREE, fmt, body, cache.readings, items, hint) == full, where
    assert judged > 100


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_random_edits_of_an_answer_without_items_are_judged_as_the_full_parse_judges(
        fmt: str) -> None:
    """As above, for a drafted answer that lists nothing (read by :func:`_itemless` with
    the hint): the findings are the full parse's, every time."""
    cache, _ = read_already(fmt)
    empty = replace(THREE, articles=())
    clean, _, drafted = Envelopes().drafted(FORMATS[fmt], empty, QueryContext.of(
        CTX, "since=2030-01-01T00%3A00%3A00Z"), CTX, [])
    assert drafted is not None
    assert findings(empty, fmt, clean, cache.readings, [], drafted) == []
    judged = 0
    for where, body in random_edits(clean, f"itemless/{fmt}", 150):
        full = findings(empty, fmt, body)
        judged += bool(full)
        assert findings(empty, fmt, body, cache.readings, [], drafted) == full, where
    assert judged > 50


def test_a_comparison_is_remembered_for_the_same_objects_only() -> None:
    """Equal pairs are kept by identity; a pair that differs never is; the memo is bounded."""
    made = ARTICLES[0]
    good = Seen(made.id, made.title, made.link)
    agreed = Agreed(limit=4)
    assert compare([good], (made,), None, agreed) == []
    assert agreed[id(good)] == (good, made, None)
    assert compare([good], (made,), None, agreed) == []  # a hit
    bad = Seen(made.id, "Another title", made.link)
    assert compare([bad], (made,), None, agreed) != []
    assert id(bad) not in agreed
    # An equal article in another object, another title mapping: compared again.
    twin = replace(made, title="Changed")
    assert compare([good], (twin,), None, agreed) != []
    assert compare([good], (made,), str.upper, agreed) == []
    assert agreed[id(good)][2] is str.upper
    for n in range(1, 12):
        other = ARTICLES[n]
        assert compare([Seen(other.id, other.title, other.link)], (other,), None, agreed) == []
    assert len(agreed) <= 4
    assert Readings().agreed is None and Readings(keys=8).agreed is not None


def test_an_elements_key_is_its_digest_remembered_or_not(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """An envelope element's key is the digest of its context and bytes whether it was
    worked out now or kept (the kept ones are dropped all at once past their bound)."""
    import hashlib

    monkeypatch.setattr(rss_atom, "ELEMENT_KEYS", 3)
    monkeypatch.setattr(rss_atom, "_ELEMENT_KEYS", {})
    prefixes = [hashlib.sha256(b"context one"), hashlib.sha256(b"context two")]

    def digest(prefix: Any, element: bytes) -> bytes:
        one = prefix.copy()
        one.update(b"\0element\0" + element)
        return one.digest()

    elements = [b"<title>A</title>", b"<id>x?limit=1</id>", b"<id>x?limit=2</id>"]
    for _ in range(3):
        for prefix in prefixes:
            for element in elements:
                key = rss_atom._element_key(prefix, prefix.digest(), element)
                assert key == digest(prefix, element)
                assert len(rss_atom._ELEMENT_KEYS) <= 3
    assert digest(prefixes[0], elements[0]) != digest(prefixes[1], elements[0])

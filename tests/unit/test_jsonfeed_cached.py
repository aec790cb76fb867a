"""The JSON Feed gate reads each item once: what it finds is what the whole parse finds.

A computed JSON Feed answer lists items other answers listed.  With the renderer's hint
(the item objects it joined), the gate parses the envelope with a witness object where
the items go, and each item by itself once per process
(:func:`feedserver.render.formats.jsonfeed.check_cached`).  These tests pin that a clean
answer is read so (no parse of an item it has parsed before, nor of the whole body), and
that no hint, true or forged, and no edit of the bytes, changes a finding: the findings
are always :func:`~feedserver.render.formats.jsonfeed.check`'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest

from feedserver.render import feeds
from feedserver.render.formats import FORMATS, jsonfeed
from feedserver.render.formats.readings import Readings
from feedserver.validate import findings
from tests.unit.test_gate_readings import random_edits
from tests.unit.test_jsonfeed_check import CHANNEL, CTX, article

JSON = FORMATS["json"]
MANY = replace(CHANNEL, articles=tuple(article(n) for n in range(1, 8)))


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """What orjson is given to parse, in order."""
    seen: list[bytes] = []
    real = orjson.loads

    def counting(data: Any) -> Any:
        seen.append(bytes(data))
        return real(data)

    monkeypatch.setattr(orjson, "loads", counting)
    jsonfeed._item.cache_clear()
    yield seen


def drawn(chan: Any = MANY) -> tuple[bytes, list[bytes]]:
    """A document of ``chan`` and the items it was joined from."""
    items = [JSON.item(a, CTX) for a in chan.articles]
    return JSON.channel(chan, CTX, items), items


def test_a_clean_answer_is_read_item_by_item_once(loads: list[bytes]) -> None:
    body, items = drawn()
    assert findings(MANY, "json", body, Readings(), items) == []
    assert body not in loads
    assert all(loads.count(one) == 1 for one in items)  # each item alone, once
    # Another answer of some of them: no item is parsed again, nor the document.
    fewer = replace(MANY, articles=MANY.articles[2:5])
    body, items = drawn(fewer)
    before = len(loads)
    assert findings(fewer, "json", body, Readings(), items) == []
    assert all(b"urn:x:" not in one for one in loads[before:]), loads[before:]
    assert len(loads) - before == 2  # the envelope with one witness, then with two


def test_the_readings_are_the_whole_parses() -> None:
    body, items = drawn()
    cached = jsonfeed.check_cached(MANY, body, Readings(), items)
    whole = jsonfeed.check(MANY, body)
    assert cached.findings == whole.findings == []
    assert cached.items == whole.items


def test_an_item_without_a_hint_or_without_items_is_read_whole(loads: list[bytes]) -> None:
    body, _ = drawn()
    assert findings(MANY, "json", body, Readings()) == []
    assert body in loads
    empty = replace(MANY, articles=())
    body, _ = drawn(empty)
    assert findings(empty, "json", body, Readings(), []) == []
    assert body in loads


def test_random_edits_are_judged_as_the_whole_parse_judges() -> None:
    """Seeded one-byte edits of an answer with the clean hint, and of one of its items
    spliced in and named in the hint: the findings are the whole parse's, every time."""
    body, items = drawn()
    judged = 0
    for where, edited in random_edits(body, "jsonfeed/body", 300):
        whole = findings(MANY, "json", edited)
        judged += bool(whole)
        assert findings(MANY, "json", edited, Readings(), items) == whole, where
    for where, one in random_edits(items[3], "jsonfeed/item", 200):
        hint = [*items[:3], one, *items[4:]]
        edited = JSON.channel(MANY, CTX, hint)
        whole = findings(MANY, "json", edited)
        judged += bool(whole)
        assert findings(MANY, "json", edited, Readings(), hint) == whole, where
    assert judged > 250


def test_a_hint_that_does_not_hold_changes_no_finding() -> None:
    body, items = drawn()
    for hint in (items[::-1], items[1:], items[:-1], [items[0] + b"," + items[1], *items[2:]],
                 [b"", *items], [b"{}"], [items[0], items[0]]):
        assert findings(MANY, "json", body, Readings(), hint) == findings(MANY, "json", body)


def test_items_anywhere_but_in_the_items_list_are_found_as_the_whole_parse_finds() -> None:
    """The items' place is checked, not assumed: an envelope whose items list is elsewhere
    (empty, or holding something else) is judged as a whole."""
    _, items = drawn()
    joined = b",".join(items)
    version = orjson.dumps(jsonfeed.JSONFEED_VERSION)
    head = b'{"version":' + version + b',"title":"A","home_page_url":"h","feed_url":"f",'
    for body in (head + b'"items":[],"x":[' + joined + b"]}",
                 head + b'"items":[{"id":1}],"x":[' + joined + b"]}",
                 head + b'"x":[' + joined + b'],"items":[]}',
                 head + b'"items":[' + joined + b'],"items":[]}',
                 head + b'"items":[[' + joined + b"]]}",
                 head + b'"items":[{"content_html":"x"},' + joined + b"]}"):
        whole = findings(MANY, "json", body)
        assert whole, body[:120]
        assert findings(MANY, "json", body, Readings(), items) == whole, body[:120]
    # An items list that holds what the witness is, and the item elsewhere: the one
    # witness alone would be fooled, two side by side are not valid there.
    one = replace(MANY, articles=MANY.articles[:1])
    body = head + b'"items":[' + jsonfeed._WITNESS + b'],"x":' + items[0] + b"}"
    whole = findings(one, "json", body)
    assert whole
    assert findings(one, "json", body, Readings(), items[:1]) == whole


def test_an_item_nested_too_deep_for_the_document_is_read_whole() -> None:
    """orjson reads at most 1,024 levels: an item 1,023 deep parses alone but not two
    levels down, in the document's items list."""
    deep = b'{"content_html":"x","id":"urn:x:1","x":' + b"[" * 1022 + b"]" * 1022 + b"}"
    assert orjson.loads(deep)
    _, items = drawn()
    hint = [deep, *items[1:]]
    edited = JSON.channel(MANY, CTX, hint)
    whole = findings(MANY, "json", edited)
    assert whole and whole[0].reason.startswith("not valid JSON")
    assert findings(MANY, "json", edited, Readings(), hint) == whole


def test_items_that_are_not_objects_with_content_are_found_as_the_whole_parse_finds() -> None:
    _, items = drawn()
    for one in (b"[]", b'"x"', b"1", b'{"id":"urn:x:1"}', b'{"content_html":1}', b"null"):
        hint = [one, *items[1:]]
        edited = JSON.channel(MANY, CTX, hint)
        whole = findings(MANY, "json", edited)
        assert whole, one
        assert findings(MANY, "json", edited, Readings(), hint) == whole, one


def test_a_format_whose_check_is_replaced_is_read_by_it() -> None:
    """A plugin's (or a test's) own check stands: the cached reader is not used for it."""
    replaced = replace(JSON, check=lambda chan, body: jsonfeed.ReadBack(
        [jsonfeed.Finding("mine")]))
    assert JSON.check_cached is not None
    assert JSON.check_cached.of(replaced) is None
    assert JSON.check_cached.of(JSON) is jsonfeed.check_cached
    assert feeds.render(MANY, JSON, CTX)

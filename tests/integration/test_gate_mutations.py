"""The gate catches corrupted feeds: mutations injected between render and validation.

A seeded corpus is built once cleanly.  Then, once per feed format, it is built again
into a fresh output folder (same ledger, same ``now``: the same bytes) with the renderer
that the gate calls (:func:`feedserver.build.render_gate.render`, also in the worker
processes, which fork with it) replaced by one that corrupts that format's document of
every channel in one place: one item's title, link, id or date changed, an item dropped,
two items swapped, or the markup broken inside one item.  Only the document the clean
build published is corrupted (a re-render without an item the gate blamed is left as it
is), so each corruption is the only fault of its channel.

Every corruption must be caught before publishing: the corrupted bytes are published
nowhere, and the channel's file is either absent (held) or the clean listing without the
blamed items, in every format alike.  270 corruptions (90 channels in three formats), all
seven kinds in each format.  Marked ``slow``: four builds of a 320-article corpus, the
three corrupted ones re-rendering and re-validating every channel; it runs with the
system tests, not in the fast set.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks.corpus import generate
from feedserver.build import render_gate
from feedserver.build.run import run_build
from feedserver.config import Settings, load_settings
from feedserver.core.records import Channel
from feedserver.publish.output import META_DIR
from feedserver.render.formats import Format
from tests.conftest import NOW, ROOT

pytestmark = pytest.mark.slow
SEED = 18
KINDS = ("title", "link", "id", "date", "drop", "swap", "markup")
SPANS = {"rss": (b"<item>", b"</item>"), "atom": (b"<entry>", b"</entry>")}
FIELDS = {  # kind -> (format -> pattern of the value to change), XML formats
    "title": {"rss": rb"<title>([^<]+)</title>", "atom": rb"<title>([^<]+)</title>"},
    "link": {"rss": rb"<link>([^<]+)</link>", "atom": rb'<link href="([^"]+)"'},
    "id": {"rss": rb"<guid[^>]*>([^<]+)</guid>", "atom": rb"<id>([^<]+)</id>"},
    "date": {"rss": rb"<pubDate>[^<]* (\d\d):\d\d:\d\d [^<]*</pubDate>",
             "atom": rb"<(?:published|updated)>[^<]*T(\d\d):"},
}
JSON_FIELDS = {"title": "title", "link": "url", "id": "id"}


def _changed(value: bytes, rng: random.Random, kind: str) -> bytes:
    """``value`` made different the way a corrupted document would differ."""
    if kind == "date":
        return b"%02d" % ((int(value) + rng.randint(1, 22)) % 24)
    at = rng.randrange(1, len(value))
    return value[:at] + b"q" + value[at:]


def _mutate_xml(body: bytes, fmt: str, kind: str, rng: random.Random) -> bytes:
    opening, closing = SPANS[fmt]
    spans = [(m.start(), body.index(closing, m.start()) + len(closing))
             for m in re.finditer(re.escape(opening), body)]
    start, end = spans[rng.randrange(len(spans))]
    item = body[start:end]
    if kind == "drop":
        return body[:start] + body[end:]
    if kind == "swap":
        if len(spans) < 2:
            return body[:start] + body[end:]
        other = spans[spans.index((start, end)) - 1]  # the one before (or the last)
        (a, b), (c, d) = sorted([(start, end), other])
        return body[:a] + body[c:d] + body[b:c] + body[a:b] + body[d:]
    if kind == "markup":  # an element left open inside the item
        cut = item.index(b"</title>")
        return body[:start] + item[:cut] + b"<b>" + item[cut:] + body[end:]
    found = re.search(FIELDS[kind][fmt], item)
    assert found, (kind, fmt, item[:200])
    value = _changed(found.group(1), rng, kind)
    item = item[:found.start(1)] + value + item[found.end(1):]
    return body[:start] + item + body[end:]


def _mutate_json(body: bytes, kind: str, rng: random.Random) -> bytes:
    doc = json.loads(body)
    items: list[dict[str, Any]] = doc["items"]
    index = rng.randrange(len(items))
    if kind == "markup":  # the document cut inside the item
        text = body.decode("utf-8")
        at = text.index(json.dumps(items[index]["id"]))
        return text[:at + rng.randint(1, 20)].encode("utf-8")
    if kind == "drop" or (kind == "swap" and len(items) < 2):
        del items[index]
    elif kind == "swap":
        items[index - 1], items[index] = items[index], items[index - 1]
    elif kind == "date":
        key = rng.choice([k for k in ("date_published", "date_modified") if k in items[index]])
        value = items[index][key]
        hour = _changed(value[11:13].encode(), rng, "date").decode()
        items[index][key] = value[:11] + hour + value[13:]
    else:
        key = JSON_FIELDS[kind]
        items[index][key] = _changed(items[index][key].encode(), rng, kind).decode()
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def mutate(body: bytes, fmt: str, path: str) -> tuple[str, bytes]:
    """One corruption of one document, the same for the same document (seeded by path)."""
    rng = random.Random(f"{SEED}/{fmt}/{path}")
    kind = rng.choice(KINDS)
    if fmt == "json":
        return kind, _mutate_json(body, kind, rng)
    return kind, _mutate_xml(body, fmt, kind, rng)


def folder_of(path: str) -> str:
    return path.rpartition("/")[0]


def items(body: bytes, path: str) -> int:
    """How many items a feed lists."""
    if path.endswith(".json"):
        return len(json.loads(body)["items"])
    return body.count(b"<item>" if path.endswith(".rss") else b"<entry>")


def published(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("feed.*"))
            if p.is_file() and META_DIR not in p.relative_to(out).parts
            and p.suffix in (".rss", ".atom", ".json")}


def settings_for(folder: Path, out: str) -> Settings:
    return load_settings(ROOT / "config.toml", env={
        "FEEDSERVER_SEEDS_DIR": str(folder / "seeds"),
        "FEEDSERVER_OUTPUT_DIR": str(folder / out), "FEEDSERVER_STATE_DIR": str(folder / "state"),
        "FEEDSERVER_PAGES": "false", "FEEDSERVER_DETECT_TOPICS": "false",
        "FEEDSERVER_DETECT_LANGUAGE": "false", "FEEDSERVER_BUILD_PROCESSES": "2"})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """The generated corpus and the feeds its clean build published."""
    folder = tmp_path_factory.mktemp("mutations")
    generate(folder / "seeds", 320, seed=SEED)
    report = run_build(settings_for(folder, "clean"), now=NOW)
    assert report.published and not report.errors
    return folder, published(folder / "clean")


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_every_corruption_is_caught_before_publishing(
        corpus: tuple[Path, dict[str, bytes]], fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, clean = corpus
    suffix = f".{fmt}"
    corrupted: dict[str, tuple[str, bytes]] = {}
    original: Callable[..., bytes] = render_gate.render

    def corrupting(channel: Channel, form: Format, *args: Any) -> bytes:
        body = original(channel, form, *args)
        path = render_gate.channel_file(channel, form.filename)
        if form.name == fmt and clean.get(path) == body:  # the clean listing, not a retry
            return mutate(body, fmt, path)[1]
        return body

    for path, body in clean.items():
        if path.endswith(suffix):
            corrupted[path] = mutate(body, fmt, path)
            assert corrupted[path][1] != body, path
    assert len(corrupted) >= 90
    kinds = {kind for kind, _ in corrupted.values()}
    assert kinds == set(KINDS)

    monkeypatch.setattr(render_gate, "render", corrupting)
    report = run_build(settings_for(folder, f"out-{fmt}"), now=NOW)
    assert report.published
    got = published(folder / f"out-{fmt}")
    escaped = [(path, kind) for path, (kind, bad) in corrupted.items() if got.get(path) == bad]
    assert not escaped, f"published corrupted: {escaped[:10]}"
    untouched = {path for path in clean if not path.endswith(suffix)}
    for path, (kind, _) in corrupted.items():
        siblings = {p for p in untouched if folder_of(p) == folder_of(path)}
        assert len(siblings) == 2, path
        if path not in got:  # the channel was held: in no format
            assert not siblings & set(got), (path, kind)
            continue
        # Published without the items the gate blamed, in every format alike.
        for one in (path, *siblings):
            assert items(got[one], one) < items(clean[one], one), (one, kind)
    held = {path for path in corrupted if path not in got}
    assert report.problems
    print(f"{fmt}: {len(corrupted)} corruptions "
          f"({', '.join(f'{k} {sum(v[0] == k for v in corrupted.values())}' for k in KINDS)}), "
          f"{len(held)} channels held, {len(corrupted) - len(held)} published without "
          "the blamed items")

"""The validation gate: parse rendered bytes back and compare with the articles.

RSS and Atom go through feedparser (bytes in a ``BytesIO``, with the media
type they will be served with); ``bozo`` is a failure, the version must match,
and the items must equal the source articles in count, order, ids, titles,
links and dates.  Released feedparser cannot read JSON Feed, so JSON gets the
same comparison against ``json.loads``.  Nothing here raises for bad content:
every finding is a :class:`Problem`, and a channel with any problem is not
published.

feedparser's HTML sanitizer and relative-URI resolver are switched off: they
rewrite item content for display in a reader (ours is already sanitized by nh3
with absolute URLs) and took 40% of the round trip; well-formedness, the
version and every compared field come from the same full parse of the bytes.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import feedparser

from .feeds import FORMATS, JSONFEED_VERSION, Format
from .models import Article, Channel, Problem

_VERSIONS = {"rss": "rss20", "atom": "atom10"}


def _utc(moment: datetime) -> tuple[int, ...]:
    return tuple(moment.utctimetuple()[:6])


def _struct(value: time.struct_time | None) -> tuple[int, ...] | None:
    return tuple(value[:6]) if value else None


def _compare(where: str, got: Iterable[dict[str, Any]], articles: tuple[Article, ...],
             dates: Callable[[dict[str, Any]], dict[str, tuple[int, ...] | None]]) -> list[str]:
    """Differences between parsed items and the articles they came from."""
    found = list(got)
    if len(found) != len(articles):
        return [f"{len(found)} items parsed back, {len(articles)} rendered"]
    errors: list[str] = []
    for index, (item, article) in enumerate(zip(found, articles, strict=True)):
        expected = {"id": article.id, "title": article.title, "link": article.link}
        for key, value in expected.items():
            if item.get(key) != value:
                errors.append(f"item {index + 1} {key}: expected {value!r:.80}, "
                              f"got {item.get(key)!r:.80}")
        want = {"published": _utc(article.published), "updated": _utc(article.updated)}
        for key, value in dates(item).items():
            if value != want[key]:
                errors.append(f"item {index + 1} {key}: expected {want[key]}, got {value}")
    return errors


def _xml_dates(fmt: str) -> Callable[[dict[str, Any]], dict[str, tuple[int, ...] | None]]:
    def dates(entry: dict[str, Any]) -> dict[str, tuple[int, ...] | None]:
        found = {"published": _struct(entry.get("published_parsed"))}
        if fmt == "atom":
            found["updated"] = _struct(entry.get("updated_parsed"))
        return found
    return dates


def check_xml(channel: Channel, fmt: Format, body: bytes) -> list[str]:
    """feedparser round trip of an RSS or Atom document."""
    parsed = feedparser.parse(io.BytesIO(body), response_headers={"content-type": fmt.media_type},
                              sanitize_html=False, resolve_relative_uris=False)
    if parsed.bozo:
        return [f"feedparser: {parsed.get('bozo_exception')!s:.200}"]
    if parsed.version != _VERSIONS[fmt.name]:
        return [f"parsed as {parsed.version or 'unknown'}, expected {_VERSIONS[fmt.name]}"]
    items = [{"id": e.get("id"), "title": e.get("title"), "link": e.get("link"), **e}
             for e in parsed.entries]
    return _compare(channel.slug, items, channel.articles, _xml_dates(fmt.name))


def _json_dates(item: dict[str, Any]) -> dict[str, tuple[int, ...] | None]:
    found: dict[str, tuple[int, ...] | None] = {}
    for key, field in (("published", "date_published"), ("updated", "date_modified")):
        try:
            moment = datetime.fromisoformat(str(item.get(field)))
        except ValueError:
            found[key] = None
            continue
        found[key] = _utc(moment) if moment.tzinfo else None
    return found


def check_json(channel: Channel, fmt: Format, body: bytes) -> list[str]:
    """Structural JSON Feed 1.1 checks, then the same item comparison."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return [f"not valid JSON: {exc}"]
    if not isinstance(doc, dict) or doc.get("version") != JSONFEED_VERSION:
        return ["missing or wrong JSON Feed version"]
    problems = [f"missing '{key}'" for key in ("title", "home_page_url", "feed_url")
                if not isinstance(doc.get(key), str)]
    items = doc.get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return [*problems, "'items' must be a list of objects"]
    for index, item in enumerate(items):
        if not isinstance(item.get("content_html"), str):
            problems.append(f"item {index + 1}: content_html must be a string")
    mapped = [{**item, "link": item.get("url")} for item in items]
    return problems + _compare(channel.slug, mapped, channel.articles, _json_dates)


CHECKS: dict[str, Callable[[Channel, Format, bytes], list[str]]] = {
    "rss": check_xml,
    "atom": check_xml,
    "json": check_json,
}


def validate(channel: Channel, fmt_name: str, body: bytes) -> list[Problem]:
    """Problems found in one rendered channel; empty means it may be published."""
    fmt = FORMATS[fmt_name]
    where = f"channel {channel.slug or 'all'} ({fmt.filename})"
    return [Problem(where, reason) for reason in CHECKS[fmt_name](channel, fmt, body)]

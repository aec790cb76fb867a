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

Titles are compared as a reader shows them (:func:`as_feedparser_shows`):
feedparser re-decodes text that looks like UTF-8 read as Latin-1 ("CafÃ©"
comes back "Café"), maps C1 controls to their cp1252 characters and strips
whitespace.  Scraped mojibake is common, and rejecting it held back whole
channels; ids and links are still compared exactly (a reader keys on them).
A finding that names one item (:func:`item_faults`) lets the pipeline leave
that item out instead of the whole channel.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import feedparser

from feedserver.core.records import Article, Channel, Problem
from feedserver.render.feeds import FORMATS, JSONFEED_VERSION, Format

_VERSIONS = {"rss": "rss20", "atom": "atom10"}
# feedparser's own table (feedparser.html._cp1252, private): C1 controls -> cp1252 characters.
_CP1252 = {code: bytes([code]).decode("cp1252") for code in range(0x80, 0xA0)
           if code not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}


@dataclass(frozen=True)
class Finding:
    """One difference; ``item`` is the 0-based index of the item at fault, or None when
    the document as a whole is wrong (not well-formed, wrong version, items missing)."""

    reason: str
    item: int | None = None


def as_feedparser_shows(text: str) -> str:
    """The title feedparser hands a reader for ``text`` (mixin.pop, feedparser 6).

    Whitespace stripped; text that encodes as Latin-1 and decodes as UTF-8 is
    re-decoded ("its common error where people take data that is already
    utf-8, presume that it is iso-8859-1"); C1 controls mapped to cp1252.
    """
    text = text.strip()
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        text = text.encode("iso-8859-1").decode("utf-8")
    return text.translate(_CP1252)


def _utc(moment: datetime) -> tuple[int, ...]:
    return tuple(moment.utctimetuple()[:6])


def _struct(value: time.struct_time | None) -> tuple[int, ...] | None:
    return tuple(value[:6]) if value else None


def _compare(got: Iterable[dict[str, Any]], articles: tuple[Article, ...],
             dates: Callable[[dict[str, Any]], dict[str, tuple[int, ...] | None]],
             shown: Callable[[str], str] | None = None) -> list[Finding]:
    """Differences between parsed items and the articles they came from.

    ``shown`` maps a title to what the parser hands a reader, for a second look
    at a title that differs (only then: the common case costs nothing more).
    """
    found = list(got)
    if len(found) != len(articles):
        return [Finding(f"{len(found)} items parsed back, {len(articles)} rendered")]
    errors: list[Finding] = []
    for index, (item, article) in enumerate(zip(found, articles, strict=True)):
        expected = {"id": article.id, "title": article.title, "link": article.link}
        for key, value in expected.items():
            if item.get(key) != value and not (key == "title" and shown is not None
                                               and item.get(key) == shown(value)):
                errors.append(Finding(f"item {index + 1} {key}: expected {value!r:.80}, "
                                      f"got {item.get(key)!r:.80}", index))
        want = {"published": _utc(article.published), "updated": _utc(article.updated)}
        for key, value in dates(item).items():
            if value != want[key]:
                errors.append(Finding(f"item {index + 1} {key}: expected {want[key]}, "
                                      f"got {value}", index))
    return errors


def _xml_dates(fmt: str) -> Callable[[dict[str, Any]], dict[str, tuple[int, ...] | None]]:
    def dates(entry: dict[str, Any]) -> dict[str, tuple[int, ...] | None]:
        found = {"published": _struct(entry.get("published_parsed"))}
        if fmt == "atom":
            found["updated"] = _struct(entry.get("updated_parsed"))
        return found
    return dates


def check_xml(channel: Channel, fmt: Format, body: bytes) -> list[Finding]:
    """feedparser round trip of an RSS or Atom document."""
    parsed = feedparser.parse(io.BytesIO(body), response_headers={"content-type": fmt.media_type},
                              sanitize_html=False, resolve_relative_uris=False)
    if parsed.bozo:
        return [Finding(f"feedparser: {parsed.get('bozo_exception')!s:.200}")]
    if parsed.version != _VERSIONS[fmt.name]:
        return [Finding(f"parsed as {parsed.version or 'unknown'}, "
                        f"expected {_VERSIONS[fmt.name]}")]
    items = [{"id": e.get("id"), "title": e.get("title"), "link": e.get("link"), **e}
             for e in parsed.entries]
    return _compare(items, channel.articles, _xml_dates(fmt.name), as_feedparser_shows)


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


def check_json(channel: Channel, fmt: Format, body: bytes) -> list[Finding]:
    """Structural JSON Feed 1.1 checks, then the same item comparison."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return [Finding(f"not valid JSON: {exc}")]
    if not isinstance(doc, dict) or doc.get("version") != JSONFEED_VERSION:
        return [Finding("missing or wrong JSON Feed version")]
    problems = [Finding(f"missing '{key}'") for key in ("title", "home_page_url", "feed_url")
                if not isinstance(doc.get(key), str)]
    items = doc.get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return [*problems, Finding("'items' must be a list of objects")]
    for index, item in enumerate(items):
        if not isinstance(item.get("content_html"), str):
            problems.append(Finding(f"item {index + 1}: content_html must be a string", index))
    mapped = [{**item, "link": item.get("url")} for item in items]
    return problems + _compare(mapped, channel.articles, _json_dates)


def findings(channel: Channel, fmt_name: str, body: bytes) -> list[Finding]:
    """Every difference in one rendered channel; a parser that raises is one finding.

    feedparser and json are third-party code fed with text from the seeds: an
    exception there says this channel cannot be checked, so it is not
    published, and it must not stop the other channels.
    """
    fmt = FORMATS[fmt_name]
    try:  # a check may also give plain strings: findings about the whole document
        return [f if isinstance(f, Finding) else Finding(str(f))
                for f in CHECKS[fmt_name](channel, fmt, body)]
    except Exception as exc:  # one channel's check, reported; never the whole build
        name = "feedparser" if fmt_name in _VERSIONS else "the JSON check"
        return [Finding(f"{name} raised {type(exc).__name__}: {exc!s:.200}")]


def item_faults(channel: Channel, fmt_name: str, body: bytes) -> dict[int, str] | None:
    """The items at fault (index -> first reason), or None when the document itself is."""
    faults: dict[int, str] = {}
    for finding in findings(channel, fmt_name, body):
        if finding.item is None:
            return None
        faults.setdefault(finding.item, finding.reason)
    return faults


CHECKS: dict[str, Callable[[Channel, Format, bytes], list[Finding] | list[str]]] = {
    "rss": check_xml,
    "atom": check_xml,
    "json": check_json,
}


def validate(channel: Channel, fmt_name: str, body: bytes) -> list[Problem]:
    """Problems found in one rendered channel; empty means it may be published."""
    where = f"channel {channel.slug or 'all'} ({FORMATS[fmt_name].filename})"
    return [Problem(where, finding.reason) for finding in findings(channel, fmt_name, body)]

"""The validation gate: read rendered bytes back and compare them with the articles.

Each format reads its own bytes back (``Format.check``: feedparser for RSS and
Atom, ``json.loads`` and the spec's structure for JSON Feed; see
:mod:`feedserver.render.formats`) and says what a reader's parser sees; this
module compares that with the source articles, the same way for every format:
the items must equal them in count, order, ids, titles, links and the dates
the format carries.  Nothing here raises for bad content: every finding is a
:class:`Problem`, and a channel with any problem is not published.

Titles are compared as a reader shows them when the format says how
(``ReadBack.shown``: feedparser re-decodes mojibake, maps C1 controls and
strips whitespace), but only for a title that differs, so the common case costs
nothing more; ids and links are compared exactly (a reader keys on them).  A
finding that names one item (:func:`item_faults`) lets the pipeline leave that
item out instead of the whole channel.
"""

from __future__ import annotations

from collections.abc import Callable

from feedserver.core.records import Article, Channel, Problem
from feedserver.render.formats import FORMATS, Finding, Seen, utc
from feedserver.render.formats.base import Drafted
from feedserver.render.formats.enclosures import expected as expected_enclosures
from feedserver.render.formats.readings import Agreed, Readings

__all__ = ["Finding", "compare", "findings", "item_faults", "validate"]


def compare(seen: list[Seen], articles: tuple[Article, ...],
            shown: Callable[[str], str] | None = None,
            agreed: Agreed | None = None) -> list[Finding]:
    """Differences between the items read back and the articles they came from.

    ``shown`` maps a title to what the parser hands a reader, for a second look
    at a title that differs (only then: the common case costs nothing more).
    ``agreed``: pairs of a reading and an article found equal before (the web's engine
    keeps one: :attr:`Readings.agreed`), by the reading's identity.  The comparison is
    a pure function of the two objects (both frozen) and ``shown``, so a pair seen equal
    is not compared again (about 1 us an item, most of what a first filtered answer
    spends on an item it lists; the readings of a channel's items are the same objects
    in every answer listing them).  A pair that differs is never kept.
    """
    if len(seen) != len(articles):
        return [Finding(f"{len(seen)} items parsed back, {len(articles)} rendered")]
    errors: list[Finding] = []
    for index, (item, article) in enumerate(zip(seen, articles, strict=True)):
        if agreed is not None:
            hit = agreed.get(id(item))
            if hit is not None and hit[0] is item and hit[1] is article and hit[2] is shown:
                continue
            before = len(errors)
        if item.id != article.id or item.title != article.title or item.link != article.link:
            got = {"id": item.id, "title": item.title, "link": item.link}  # worded below
            expected = {"id": article.id, "title": article.title, "link": article.link}
            for key, value in expected.items():
                if got[key] != value and not (key == "title" and shown is not None
                                              and got[key] == shown(value)):
                    errors.append(Finding(f"item {index + 1} {key}: expected {value!r:.80}, "
                                          f"got {got[key]!r:.80}", index))
        if item.enclosures is not None:
            wanted = expected_enclosures(article)
            if list(item.enclosures) != wanted:
                errors.append(Finding(f"item {index + 1} enclosures: expected {wanted!r:.160}, "
                                      f"got {item.enclosures!r:.160}", index))
        for key, date in item.dates.items():
            want = utc(article.published if key == "published" else article.updated)
            if date != want:
                errors.append(Finding(f"item {index + 1} {key}: expected {want}, "
                                      f"got {date}", index))
        if agreed is not None and len(errors) == before:
            agreed.keep(item, article, shown)
    return errors


def findings(channel: Channel, fmt_name: str, body: bytes,
             readings: Readings | None = None,
             spliced: list[bytes] | None = None,
             drafted: Drafted | None = None) -> list[Finding]:
    """Every difference in one rendered channel; a check that raises is one finding.

    feedparser and json are third-party code fed with text from the seeds: an
    exception there says this channel cannot be checked, so it is not
    published, and it must not stop the other channels.  ``readings``: what the
    parser read from item fragments earlier in this build (the same bytes in the
    same context are not parsed again; see :mod:`feedserver.render.formats.readings`).
    ``spliced``: the item fragments the renderer spliced into ``body``, in order.  A hint
    only, checked against the bytes before it spares any reading; a wrong one costs time,
    never a finding (:func:`feedserver.render.formats.rss_atom.read_back`); so is
    ``drafted``, how the envelope around them was drawn (a computed feed's).
    """
    fmt = FORMATS[fmt_name]
    try:
        cached = fmt.check_cached.of(fmt) if fmt.check_cached is not None else None
        if readings is not None and cached is not None:
            read = cached(channel, body, readings, spliced, drafted)
        else:
            read = fmt.check(channel, body)
        if read.items is None:
            return list(read.findings)
        agreed = readings.agreed if readings is not None else None
        return [*read.findings, *compare(read.items, channel.articles, read.shown, agreed)]
    except Exception as exc:  # one channel's check, reported; never the whole build
        return [Finding(f"{fmt.checked_by} raised {type(exc).__name__}: {exc!s:.200}")]


def item_faults(channel: Channel, fmt_name: str, body: bytes,
                readings: Readings | None = None,
                spliced: list[bytes] | None = None,
                drafted: Drafted | None = None) -> dict[int, str] | None:
    """The items at fault (index -> first reason), or None when the document itself is."""
    faults: dict[int, str] = {}
    for finding in findings(channel, fmt_name, body, readings, spliced, drafted):
        if finding.item is None:
            return None
        faults.setdefault(finding.item, finding.reason)
    return faults


def validate(channel: Channel, fmt_name: str, body: bytes,
             readings: Readings | None = None,
             spliced: list[bytes] | None = None,
             drafted: Drafted | None = None) -> list[Problem]:
    """Problems found in one rendered channel; empty means it may be published."""
    where = f"channel {channel.slug or 'all'} ({FORMATS[fmt_name].filename})"
    return [Problem(where, finding.reason)
            for finding in findings(channel, fmt_name, body, readings, spliced, drafted)]

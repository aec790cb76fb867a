"""One source file to one :class:`Parsed` article (pure: no files, no clock).

``.txt`` files are scraped news, read as plain text only (front matter there
would let scraped text set an id, a date or a draft flag): the first
non-empty line is the title and the scraper's debris (caption markers,
repeated titles, "Currently reading") is removed by the patterns in
``config.toml``.  ``.md`` files carry front matter
and a Markdown body.  Either way the HTML that leaves this module is sanitized
by nh3 (:mod:`feedserver.parse.rawhtml`) with every link made absolute but in-article
anchors, which :func:`feedserver.parse.rawhtml.anchored` resolves once the article
has its page; titles, authors, topic names and summaries are plain text
(:func:`feedserver.parse.text.plain_line`).  A broken file raises
:class:`ArticleError` with the reason, which the pipeline turns into a problem
naming the file.
"""

from __future__ import annotations

import hashlib
import html
import re
from functools import lru_cache
from pathlib import PurePosixPath
from typing import NamedTuple

import nh3
from markdown_it import MarkdownIt

from feedserver.config import Debris, Settings
from feedserver.core.errors import ArticleError
from feedserver.core.media import NO_MEDIA, MediaIndex
from feedserver.core.records import Parsed, SourceFile
from feedserver.parse import frontmatter, language, links, mojibake, rawhtml
from feedserver.parse.text import clean_line, cut, decode_clean, plain_line, summarize

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
TEXT_SUFFIXES = frozenset({".txt"})
SUFFIXES = MARKDOWN_SUFFIXES | TEXT_SUFFIXES
MAX_TITLE = 300
_CAPTION_MAX = 80


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    """CommonMark with raw HTML (see :mod:`feedserver.parse.rawhtml`), tables and strikethrough.

    markdown-it's first core rule, ``normalize``, rewrites CR and NUL with a
    regex alternation tried at every character (~30 us per article); it is off
    and :func:`_normalized` does the same with two substring tests.
    """
    return rawhtml.install(MarkdownIt("commonmark", {"html": True})
                           .enable(["table", "strikethrough"]).disable("normalize"))


def _normalized(body: str) -> str:
    """markdown-it's ``normalize`` rule: CRLF and CR to LF, NUL to U+FFFD.

    Cleaned text has none of them, so this is nearly always one pass of ``in``.
    """
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    return body.replace("\x00", "\ufffd") if "\x00" in body else body


@lru_cache(maxsize=8)
def _debris_rules(debris: Debris) -> tuple[re.Pattern[str], re.Pattern[str] | None]:
    lines = re.compile("|".join(f"(?:{p})" for p in debris.lines) or r"(?!)", re.IGNORECASE)
    markers = (re.compile("|".join(f"(?:{p})" for p in debris.caption_markers), re.IGNORECASE)
               if debris.caption_markers else None)
    return lines, markers


def plain_text(fragment: str) -> str:
    """Visible text of sanitized HTML, for summaries and topic matching."""
    spaced = re.sub(r"</(p|li|h[1-6]|blockquote|pre|tr|div)>", r"</\1>\n", fragment)
    return html.unescape(nh3.clean(spaced, tags=set()))


class _Body(NamedTuple):
    """A rendered body: title, HTML, its visible text, and that text's words one space apart.

    The flat text is what both the summary and the fingerprint are drawn from,
    so it is made once.
    """

    title: str
    html: str
    text: str
    flat: str


def parse(source: SourceFile, settings: Settings, warnings: list[str] | None = None,
          index: MediaIndex = NO_MEDIA) -> Parsed:
    """Parse one file or raise ArticleError saying why it cannot be published.

    ``index`` holds the media files and articles relative references may name
    (:mod:`feedserver.parse.links`): what the parse looked up goes into ``needs``.
    """
    warnings = [] if warnings is None else warnings
    resolver = links.Resolver(source.path, settings.base_url, index, warnings)
    media: tuple[tuple[str, ...], ...] = ()
    suffix = PurePosixPath(source.path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ArticleError(f"unsupported file type {suffix or '(none)'}; use .txt or .md")
    if len(source.data) > settings.max_file_bytes:
        raise ArticleError(f"file is {len(source.data):,} bytes; the limit is "
                           f"{settings.max_file_bytes:,} (max_file_bytes)")
    text, repaired = mojibake.repair(decode_clean(source.data))  # "CafÃ©" -> "Café"
    if repaired:
        warnings.append(repaired)
    if suffix in MARKDOWN_SUFFIXES:
        meta, body = frontmatter.split(text)
        info = frontmatter.fields(meta, warnings)
        rendered = _markdown_body(body, info.get("title"), settings, resolver)
        media = links.front_matter_media(info, resolver)
    else:  # scraped text is never configuration: a leading '---' is text, not an id
        info = {}
        rendered = _text_body(text, None, settings.debris)
    title = plain_line(rendered.title)  # the one place a title is made plain (see _plain)
    if not title:
        stem = plain_line(PurePosixPath(source.path).stem.replace("_", " ").replace("-", " "))
        if not stem or not rendered.html:
            raise ArticleError("empty article: no title and no text")
        title = stem
    if len(title) > MAX_TITLE:
        warnings.append(f"title is {len(title):,} characters; cut to {MAX_TITLE}")
        title = summarize(title, MAX_TITLE)
    summary = info.get("summary") or cut(rendered.flat, settings.summary_length) or title
    lang = language.tag(info.get("lang"))  # front matter wins, then detection
    if info.get("lang") and lang is None:
        warnings.append(f"lang {info.get('lang')!r} is not a language tag (like 'en' or "
                        "'pt-BR'); ignored")
    if lang is None and settings.detect_language:
        lang = language.detect(title, rendered.text)
    return Parsed(
        path=source.path, title=title, content_html=rendered.html, summary=summary,
        text=rendered.text, topics=info.get("topics", ()), author=info.get("author"),
        lang=lang, date=info.get("date"), updated=info.get("updated"),
        explicit_id=info.get("id") or None, explicit_slug=info.get("slug") or None,
        draft=info.get("draft", False),
        fingerprint=_fingerprint(title, rendered.flat, summary, info,
                                 _shown_media(media, settings.base_url)),
        body_print=body_print(rendered.flat), media=media, needs=resolver.stamps(),
    )


def _shown_media(media: tuple[tuple[str, ...], ...], base_url: str) -> tuple[tuple[str, ...], ...]:
    """The media rows without the site's address: moving the site (a new ``base_url``)
    is not an edit of the article, a new picture is."""
    return tuple((row[0], row[1].removeprefix(base_url), *row[2:]) for row in media)


# A text shorter than this ('Text.', 'To follow.') is not told apart from another
# article's: no body print, so no rename is guessed from it.
MIN_BODY_PRINTED = 140


def body_print(flat: str) -> str:
    """The hash of an article's text alone, without its title, summary or front matter.

    The ledger keeps it so that a file renamed *and* retitled before one build saw
    either change is still the article that left its old path (same id, same URL):
    its fingerprint changed with the title, its title slug too, its text did not.
    """
    text = " ".join(flat.split())
    if len(text) < MIN_BODY_PRINTED:
        return ""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _fingerprint(title: str, flat: str, summary: str, info: dict[str, object],
                 media: tuple[tuple[str, ...], ...] = ()) -> str:
    parts = [title, flat, summary]
    parts += [f"{k}={info[k]!r}" for k in sorted(info) if k not in {"title", "summary"}]
    if media:  # a new picture is an update; an article without media keeps its fingerprint
        parts.append(repr(media))
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _markdown_body(body: str, title: str | None, settings: Settings,
                   resolver: links.Resolver | None = None) -> _Body:
    """Render Markdown; without a title field the first '# heading' is the title."""
    if not title:
        heading = _heading(body)
        if heading is not None:
            title, body = clean_line(heading[0]), heading[1]
        else:
            first = next((line for line in body.split("\n") if line.strip()), "")
            title = clean_line(re.sub(r"[*_`#>]", "", first))
            body = body.replace(first, "", 1) if title else body
    try:
        content = rawhtml.render(_markdown(), _normalized(body), settings.base_url,
                                 resolver.rewrite if resolver is not None else None,
                                 resolver.raw if resolver is not None else None).strip()
    except RecursionError:
        raise ArticleError("Markdown nests too deeply to render") from None
    text = plain_text(content)
    return _Body(title, content, text, " ".join(text.split()))


def _heading(body: str) -> tuple[str, str] | None:
    """The text of a first-line ``# heading`` and the body after it, or None.

    String methods, not a regular expression: the pattern this replaces
    (``\\s*#\\s+(.+?)\\s*#*\\s*``) had three quantifiers that could all take
    the same spaces, so a heading with a long run of spaces backtracked in
    cubic time (2,000 spaces: a minute).  Every step here is one pass.  As in
    CommonMark, a closing run of ``#`` counts only after a space (``# C#``
    keeps its ``#``), and the heading is one line.
    """
    stripped = body.lstrip()
    if stripped[:1] != "#" or stripped[1:2] not in {" ", "\t"}:
        return None
    line, _, rest = stripped[1:].partition("\n")
    text = line.strip()
    unclosed = text.rstrip("#")
    if not unclosed or unclosed[-1] in " \t":
        text = unclosed.rstrip()
    return (text, rest) if text else None


def _text_body(body: str, title: str | None, debris: Debris) -> _Body:
    """Scraped text: title line, debris removed, blank-line separated paragraphs.

    Its visible text is known without parsing the HTML back: each paragraph and
    a newline, what :func:`plain_text` gives for escaped text in ``<p>`` tags.
    """
    lines = body.split("\n")
    if not title:
        while lines and not lines[0].strip():
            lines.pop(0)
        title = clean_line(lines.pop(0)) if lines else ""
    paragraphs = _paragraphs(_drop_debris(lines, title, debris))
    content = "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs)
    return _Body(title, content, "".join(f"{p}\n" for p in paragraphs),
                 " ".join(p for p in paragraphs if p))


def _drop_debris(lines: list[str], title: str, debris: Debris) -> list[str]:
    """Blank out debris lines (keeping paragraph breaks where they stood)."""
    junk, markers = _debris_rules(debris)
    folded_title = title.casefold()
    kept = [line.strip() for line in lines]
    for i, line in enumerate(kept):
        if not line:
            continue
        if markers is not None and markers.fullmatch(line) and i > 0:
            _drop_caption(kept, i)
        if junk.fullmatch(line) or (debris.drop_repeated_title
                                    and _same_folded(line, folded_title)):
            kept[i] = ""
    return kept


def _same_folded(line: str, folded: str) -> bool:
    """``line.casefold() == folded``; casefolding never shortens, so long lines are not folded."""
    return len(line) <= len(folded) and line.casefold() == folded


def _drop_caption(kept: list[str], marker: int) -> None:
    """A short line right above a caption marker, with no sentence end, is its caption."""
    previous = kept[marker - 1]
    if previous and len(previous) <= _CAPTION_MAX and not previous.endswith((".", "!", "?", ":")):
        kept[marker - 1] = ""


def _paragraphs(lines: list[str]) -> list[str]:
    """Runs of non-empty lines, each joined with its whitespace folded to single spaces."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in [*lines, ""]:
        if line:
            current.append(line)
        elif current:
            paragraphs.append(_folded_spaces(" ".join(current)))
            current = []
    return paragraphs


def _folded_spaces(text: str) -> str:
    """``" ".join(text.split())``, skipped when it would give ``text`` back.

    Every whitespace character but the space is unprintable, so printable text
    without two spaces in a row, or one at either end, already is folded.
    """
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text
    return " ".join(text.split())

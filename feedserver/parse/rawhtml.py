"""Raw HTML inside Markdown: sanitized, and never allowed to swallow the text after it.

Markdown passes raw HTML through, and nh3 sanitizes the whole rendered
document at once.  Two things let a fragment eat everything after it:

* **Markdown**: an HTML block that opens with ``<script``, ``<style``,
  ``<pre``, ``<textarea``, ``<!--``, ``<?``, ``<!X`` or ``<![CDATA[`` runs
  until its closing sequence, and to the end of its container when there is
  none (CommonMark 4.6, types 1-5).  Here such an unclosed opener is *not* an
  HTML block: :func:`install` wraps markdown-it's rule so the line is read as a
  paragraph instead (its tag, if any, then meets the check below).  A closed
  block is untouched.  This is a deliberate departure from CommonMark.
* **HTML**: the HTML parser's own states (a ``<style>``/``<noscript>``/
  ``<textarea>`` opened inline, foreign content such as ``<math><mtext>
  <table><mglyph><style>``, a ``<select>``) can turn the Markdown-rendered
  paragraphs that follow into raw text that the sanitizer then drops.  Rather
  than predict the parser with a hand tokenizer, :func:`render` asks it: each
  raw fragment is followed by a marker element (``<abbr>`` holding a private-use
  character and the fragment's number) and the document is sanitized once; a
  marker that does not come back as an element tells exactly which fragment
  swallowed what followed it.  That fragment is sanitized on its own (which
  closes whatever it opened) and, if its marker is still lost, dropped; the
  markers are then removed.  Documents without raw HTML take none of this.

A single raw tag (Markdown's inline HTML) that carries an event handler
(``<img src=x onerror=...>``) is dropped whole rather than defanged: it is an
attack, not formatting.  Attribute values that hold a ``<`` are dropped too:
a tag hidden in a ``title`` is how mutation-XSS payloads travel, and no
article needs one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urljoin

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_block.html_block import HTML_SEQUENCES, html_block
from markdown_it.rules_block.state_block import StateBlock
from markdown_it.token import Token

_TAGS = set(nh3.ALLOWED_TAGS) | {"figure", "figcaption"}
# nh3's attributes, and ``loading`` on images: a picture beside an article is drawn
# with ``loading="lazy"`` (feedserver.parse.links).
_ATTRIBUTES = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRIBUTES.setdefault("img", set()).add("loading")
_SCHEMES = {"http", "https", "mailto"}
# CommonMark HTML block types 1-5: those that end at a closing sequence, not a blank line.
_CLOSED_KINDS = tuple(enumerate(HTML_SEQUENCES[:5]))
_MEMO = "feedserver_unclosed_html"
_MARK_TAG = "abbr"  # allowed by the sanitizer, phrasing content, closes nothing it meets
_MARK_CHARS = [chr(c) for c in range(0xE000, 0xE040)]  # private use; one absent from the text
_HANDLER = re.compile(r"[\s/\"']on[a-z]+\s*=", re.IGNORECASE)  # onerror=, /onload=
_ROUNDS = 4  # fragments repaired one by one; past this, every later one is dropped at once


def install(md: MarkdownIt) -> MarkdownIt:
    """Replace markdown-it's ``html_block`` rule with :func:`_html_block` (same alternatives)."""
    md.block.ruler.at("html_block", _html_block,
                      {"alt": ["paragraph", "reference", "blockquote"]})
    return md


def _html_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """markdown-it's rule, except that an HTML block of types 1-5 must be closed."""
    pos = state.bMarks[start] + state.tShift[start]
    if state.src[pos:pos + 1] == "<" and not state.is_code_block(start):
        line = state.src[pos:state.eMarks[start]]
        for kind, (opener, closer, _) in _CLOSED_KINDS:
            if opener.search(line):
                if _unclosed(state, start, end, kind, closer):
                    return False
                break
    return html_block(state, start, end, silent)


def _unclosed(state: StateBlock, start: int, end: int, kind: int, closer: re.Pattern[str]
              ) -> bool:
    """Whether a type-``kind`` block opened at ``start`` would run to ``end`` unclosed.

    Mirrors the rule's own scan.  A scan from ``start`` that found no closing
    sequence up to ``end`` proves the same for every later start of that kind
    (their lines are a subset), so it is remembered: many unclosed openers in
    one file cost one scan, not one each.
    """
    memo: dict[tuple[int, int], int] = state.env.setdefault(_MEMO, {})
    known = memo.get((kind, end))
    if known is not None and start >= known:
        return True
    line = start
    while line < end:
        if line > start and state.sCount[line] < state.blkIndent and not state.isEmpty(line):
            return False  # the container ends the block: nothing after it is swallowed
        if closer.search(state.src[state.bMarks[line] + state.tShift[line]:state.eMarks[line]]):
            return False
        line += 1
    memo[(kind, end)] = start if known is None else min(known, start)
    return True


_URL_ATTRIBUTES = frozenset({"href", "src", "cite"})  # percent-encoded by the URL step


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    """nh3 attribute filter: a text value holding '<' is a hidden tag, not something to show."""
    return None if "<" in value and attribute not in _URL_ATTRIBUTES else value


@lru_cache(maxsize=8)
def _relative(base_url: str) -> Callable[[str], str]:
    """nh3's handler for relative URLs: resolved against ``base_url``, except fragments.

    ``#notes`` names a place in the article itself, whose page is not known
    until the ledger gives it a slug: it stays relative here and
    :func:`anchored` points it at the article's page when the article is made.
    Other URLs are joined as a browser would, and percent-encoded as nh3's own
    ``rewrite_with_base`` (the WHATWG URL serializer) does.
    """
    def resolve(url: str) -> str:
        url = url.strip(_C0_SPACE)
        if url.startswith("#"):
            return "#" + quote(url[1:], safe=_URL_SAFE)
        return quote(urljoin(base_url, url), safe=_URL_SAFE)
    return resolve


_URL_SAFE = "!#$%&'()*+,-./:;=?@[]_~"
_C0_SPACE = "".join(map(chr, range(0x21)))  # what a browser strips around a URL


Resolve = Callable[[str], str | None]  # a relative URL -> new URL, '' to drop, None: not mine


def _resolving(base_url: str, resolve: Resolve | None) -> Callable[[str], str | None]:
    """nh3's relative-URL handler: ``resolve`` first (files beside the article, see
    :mod:`feedserver.parse.links`: '' drops the attribute), else :func:`_relative`."""
    usual = _relative(base_url)
    if resolve is None:
        return usual

    def handler(url: str) -> str | None:
        found = resolve(url)
        return usual(url) if found is None else (found or None)
    return handler


def sanitize(fragment: str, base_url: str, resolve: Resolve | None = None) -> str:
    """Allow-list HTML: no script, no event attributes, no javascript: URLs.

    Relative ``href``/``src`` are resolved against ``base_url`` (fragments
    excepted: see :func:`_relative`), or by ``resolve`` when it knows them.
    """
    return nh3.clean(fragment, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_SCHEMES,
                     url_relative=_resolving(base_url, resolve),
                     link_rel="noopener noreferrer", attribute_filter=_keep_attribute)


_FRAGMENT_TAG = re.compile(r"<[a-z][a-z0-9]*\s[^<>]*>")
_FRAGMENT_ATTR = re.compile(r'(\s(?:href|src|cite)=")#')


def anchored(html: str, page_url: str) -> str:
    """Sanitized HTML with its in-article links (``href="#notes"``) made absolute on the
    article's own page, ``page_url#notes``, in every feed and page.

    Only tags are looked at (text is escaped, so a '<' in sanitized HTML
    starts a tag and an attribute value holds no '"').  Returns ``html``
    itself when it has no such link.
    """
    if '="#' not in html:
        return html
    return _FRAGMENT_TAG.sub(
        lambda tag: _FRAGMENT_ATTR.sub(lambda m: f"{m.group(1)}{page_url}#", tag.group(0))
        if '="#' in tag.group(0) else tag.group(0), html)


def _raw_tokens(tokens: Sequence[Token]) -> Iterator[Token]:
    for token in tokens:
        if token.type in ("html_block", "html_inline"):
            yield token
        if token.children:
            yield from _raw_tokens(token.children)


def render(md: MarkdownIt, body: str, base_url: str,
           rewrite: Callable[[list[Token]], None] | None = None,
           resolve: Resolve | None = None) -> str:
    """Markdown to sanitized HTML in which no raw fragment swallowed what follows it.

    ``rewrite`` may change the parsed tokens before they are rendered, and
    ``resolve`` the relative URLs of raw HTML (images and links to files beside
    the article: :mod:`feedserver.parse.links`).
    """
    env: dict[str, Any] = {}
    tokens = md.parse(body, env)
    if rewrite is not None and ("](" in body or "]:" in body):
        rewrite(tokens)
    raw = list(_raw_tokens(tokens)) if "<" in body else []  # no '<', no raw HTML
    mark = next((c for c in _MARK_CHARS if c not in body), None)
    if not raw or mark is None:
        return sanitize(md.renderer.render(tokens, md.options, env), base_url, resolve)
    found = re.compile(f"<{_MARK_TAG}>{mark}(\\d+){mark}</{_MARK_TAG}>")
    originals = [token.content for token in raw]
    # 0 as written, 1 sanitized on its own, 2 dropped: a single tag with an event handler
    # is an attack, not formatting, and goes whole (nh3 would leave the <img> it rides on).
    level = [2 if token.type == "html_inline" and _HANDLER.search(token.content)
             else 1 if _swallows_alone(token.content, base_url, resolve) else 0
             for token in raw]
    for rounds in range(_ROUNDS + 2):
        for number, token in enumerate(raw):
            token.content = (_variant(originals[number], level[number], base_url, resolve)
                             + f"<{_MARK_TAG}>{mark}{number}{mark}</{_MARK_TAG}>")
        html = sanitize(md.renderer.render(tokens, md.options, env), base_url, resolve)
        seen = {int(n) for n in found.findall(html)}
        lost = next((n for n in range(len(raw)) if n not in seen), None)
        if lost is None:
            return found.sub("", html)
        if level[lost] == 2:  # an earlier fragment's context swallows it: drop them all
            level = [2] * len(raw)
        elif rounds >= _ROUNDS:
            level[lost:] = [2] * (len(raw) - lost)
        else:
            level[lost] += 1
    return found.sub("", html)  # pragma: no cover - every raw fragment dropped keeps each mark


def _swallows_alone(fragment: str, base_url: str, resolve: Resolve | None = None) -> bool:
    """Whether a fragment loses a marker put right after it even with nothing before it.

    Most swallowing fragments do it on their own (``<style>``, ``<noscript>``,
    ``<math>``): found here, one tiny parse each, they do not cost a round of
    the whole document.
    """
    probe = f"<{_MARK_TAG}>\ue000</{_MARK_TAG}>"
    return probe not in sanitize(fragment + probe, base_url, resolve)


def _variant(fragment: str, level: int, base_url: str, resolve: Resolve | None = None) -> str:
    if level == 0:
        return fragment
    return sanitize(fragment, base_url, resolve) if level == 1 else ""

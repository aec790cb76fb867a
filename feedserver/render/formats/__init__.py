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

from feedserver.render.formats import atom, jsonfeed, rss
from feedserver.render.formats.base import Finding, Format, ReadBack, Seen, utc

__all__ = ["FORMATS", "Finding", "Format", "ReadBack", "Seen", "register", "unregister", "utc"]

# By name, in a fixed order: the order of every channel's files, links and checks.
FORMATS: dict[str, Format] = {fmt.name: fmt for fmt in (rss.FORMAT, atom.FORMAT, jsonfeed.FORMAT)}


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

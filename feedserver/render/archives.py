"""The RFC 5005 (Feed Paging and Archiving, section 4) links every feed format draws.

A channel's subscription document links ``prev-archive`` to its newest archive page;
archive page *n* carries the ``fh:archive`` marker, ``current`` (the subscription
document), ``prev-archive`` (page n-1, older) and ``next-archive`` (page n+1, newer).
Atom writes them as ``atom:link`` elements of the feed, RSS as ``atom:link`` elements
of the channel (the Atom namespace every RSS feed here declares), and JSON Feed, which
has only ``next_url`` ("the next n items": older ones), chains from the subscription
document to the newest page and from each page to the one before it.  Which pages exist
is the build's decision (:mod:`feedserver.build.archives`); this module only spells it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from xml.sax.saxutils import quoteattr

from feedserver.core import layout
from feedserver.core.records import Channel

if TYPE_CHECKING:
    from feedserver.render.feeds import Context

FH_NS = "http://purl.org/syndication/history/1.0"
FH_ARCHIVE = f'<fh:archive xmlns:fh="{FH_NS}"/>'.encode()


def page_url(ctx: Context, home: str, number: int, filename: str) -> str:
    """Absolute URL of archive page ``number`` of the channel in folder ``home``."""
    return layout.url(ctx.base_url, layout.channel_file(layout.archive_folder(home, number),
                                                        filename))


def links(channel: Channel, ctx: Context, filename: str) -> list[tuple[str, str]]:
    """(rel, href) of the channel's archive links in the format of ``filename``, in a
    fixed order: ``current``, ``prev-archive``, ``next-archive``."""
    if not channel.archives:
        return []
    if not channel.archive:  # the subscription document
        return [("prev-archive", page_url(ctx, channel.path, channel.archives, filename))]
    home, number = channel.home, channel.archive
    found = [("current", layout.url(ctx.base_url, layout.channel_file(home, filename)))]
    if number > 1:
        found.append(("prev-archive", page_url(ctx, home, number - 1, filename)))
    if number < channel.archives:
        found.append(("next-archive", page_url(ctx, home, number + 1, filename)))
    return found


def next_url(channel: Channel, ctx: Context, filename: str) -> str | None:
    """JSON Feed 1.1 ``next_url``: the next older page (None: this is the oldest)."""
    if not channel.archives:
        return None
    older = channel.archive - 1 if channel.archive else channel.archives
    return page_url(ctx, channel.home if channel.archive else channel.path, older,
                    filename) if older >= 1 else None


def atom_links(channel: Channel, ctx: Context, filename: str, prefix: str = "") -> bytes:
    """The links as ``<link>`` elements (``prefix`` 'atom:' inside RSS), and the
    ``fh:archive`` marker on an archive page."""
    drawn = b"".join(f"<{prefix}link href={quoteattr(href)} rel=\"{rel}\"/>".encode()
                     for rel, href in links(channel, ctx, filename))
    return drawn + (FH_ARCHIVE if channel.archive else b"")


def insert_after_self(head: bytes, element: bytes, extra: bytes) -> bytes:
    """``extra`` right after the first ``element`` (``<link `` or ``<atom:link ``: the
    self link the generator writes first), so every link of the head stays together."""
    if not extra:
        return head
    start = head.index(element)
    end = head.index(b"/>", start) + 2
    return head[:end] + extra + head[end:]

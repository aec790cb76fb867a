"""What the renderers are given: one :class:`Site`, made by the build (pure data).

It lives beside the renderers that read it, so rendering needs nothing from the
build that assembles it: the build imports this, never the other way round.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from feedserver.core.records import Article, Channel, Topic
from feedserver.render.feeds import Context

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # "never": the newest date of an empty site

@dataclass(frozen=True)
class Site:
    """Everything the renderers need: articles newest first, topics, channels.

    ``signatures`` holds each channel's content signature; channels named in
    ``fresh`` are already published with that signature and are not rendered
    again.  Articles come without content from the build's assembly; the build adds
    the content of exactly the articles that will be rendered before anything renders.
    """

    articles: Sequence[Article]
    topics: dict[str, Topic]
    channels: tuple[Channel, ...]
    context: Context
    next_due: datetime | None = None
    signatures: dict[str, str] = field(default_factory=dict)
    fresh: frozenset[str] = frozenset()
    # Every channel's archive pages (RFC 5005: feedserver.build.archives), rendered like
    # channels (:meth:`feed_view`) but never listed as channels of their own.
    archives: tuple[Channel, ...] = ()

    def feed_view(self) -> Site:
        """This site with its archive pages among its channels: what feeds are rendered,
        validated and signed from."""
        if not self.archives:
            return self
        return replace(self, channels=self.channels + self.archives, archives=())

    def stale(self, channels: Iterable[Channel]) -> list[Channel]:
        """The channels whose files must be rendered (not fresh)."""
        return [c for c in channels if c.slug not in self.fresh]

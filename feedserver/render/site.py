"""What the renderers are given: one :class:`Site`, made by the build (pure data).

It lives beside the renderers that read it, so rendering needs nothing from the
build that assembles it: the build imports this, never the other way round.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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

    def stale(self, channels: Iterable[Channel]) -> list[Channel]:
        """The channels whose files must be rendered (not fresh)."""
        return [c for c in channels if c.slug not in self.fresh]

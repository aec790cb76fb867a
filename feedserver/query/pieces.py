"""Where a computed answer's items lie in its body, as the engine drew it.

The engine (:mod:`feedserver.query.answer`) knows it for every answer it draws, with each
item's digest (its ETag is made of them); the web layer splices the answer's gzip body
from its items' kept compressed pieces by it (:mod:`feedserver.web.gzipped`).  A module
of its own, and light: the web app imports it without the renderers the engine loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pieces:
    """Where an answer's items lie in its body, as drawn: from ``at`` to ``end``, each
    item's bytes joined by ``separator``, with each item's digest (``keys``).

    ``drawn``: the very body they were drawn into, when the maker knows they lie there
    (the engine joined that body of them, or found them in it: ``Engine._signed``)."""

    at: int
    end: int
    items: tuple[bytes, ...]
    keys: tuple[bytes, ...]
    separator: bytes = b""
    drawn: bytes | None = field(default=None, compare=False, repr=False)

    def lie_in(self, body: bytes) -> bool:
        """Whether ``body`` holds exactly these items between ``at`` and ``end``: known
        for the body they were drawn into (the same object; comparing its every item
        byte for byte again cost 7-15 us of a first compressed answer), compared for
        any other."""
        if body is self.drawn and len(self.items) == len(self.keys):
            return True
        pos, sep = self.at, self.separator
        for n, item in enumerate(self.items):
            if n and sep:
                if not body.startswith(sep, pos):
                    return False
                pos += len(sep)
            if not body.startswith(item, pos):
                return False
            pos += len(item)
        return pos == self.end and len(self.items) == len(self.keys)

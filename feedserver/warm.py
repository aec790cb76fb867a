"""The parse cache kept in memory between builds of one long-lived process.

A scheduler runs a build every few seconds; reading 10,000 stubs back from
SQLite each time would be most of an incremental build.  A :class:`Warm`
holds them (not the content: that is loaded for what is rendered) after a
build and is trusted only while the ledger's
*generation* (bumped by every write to the cache, by any process) is the one
it saw, so a manual ``feedserver build`` next to the scheduler is noticed.
It is explicit state, owned by whoever runs the builds, never a global.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from .ledger import CachedFile, Ledger


@dataclass
class Warm:
    """Stubs of every cached file, as of ledger ``generation``."""

    generation: str | None = None
    files: dict[str, CachedFile] = field(default_factory=dict)

    def load(self, ledger: Ledger) -> dict[str, CachedFile]:
        """The cache: from memory if nothing changed it since, else from the ledger."""
        current = ledger.generation()
        if current != self.generation:
            self.files = ledger.cached_files()
            self.generation = current
        return self.files

    def update(self, generation: str, fresh: Mapping[str, CachedFile],
               removed: Iterable[str], touched: Mapping[str, tuple[int, int]]) -> None:
        """Apply what a build just stored; ``generation`` is what the store returned."""
        for path in removed:
            self.files.pop(path, None)
        for path, (size, mtime) in touched.items():
            if path in self.files:
                self.files[path] = replace(self.files[path], size=size, mtime_ns=mtime)
        self.files.update(fresh)
        self.generation = generation

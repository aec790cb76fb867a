"""The parse cache kept in memory between builds of one long-lived process.

A scheduler runs a build every few seconds; reading 10,000 stubs and bodies
back from SQLite each time would be most of an incremental build.  A
:class:`Warm` holds them after a build and is trusted only while the ledger's
*generation* (bumped by every write to the cache, by any process) is the one
it saw, so a manual ``feedserver build`` next to the scheduler is noticed.
It is explicit state, owned by whoever runs the builds, never a global.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from .incremental import Body
from .ledger import CachedFile, Ledger


@dataclass
class Warm:
    """Stubs and bodies of every cached file, as of ledger ``generation``."""

    generation: str | None = None
    files: dict[str, CachedFile] = field(default_factory=dict)
    bodies: dict[str, Body] = field(default_factory=dict)

    def load(self, ledger: Ledger) -> tuple[dict[str, CachedFile], dict[str, Body]]:
        """The cache: from memory if nothing changed it since, else from the ledger."""
        current = ledger.generation()
        if current != self.generation:
            self.files, self.bodies = ledger.cached_files(), ledger.bodies()
            self.generation = current
        return self.files, self.bodies

    def update(self, generation: str, fresh: Mapping[str, tuple[CachedFile, Body]],
               removed: Iterable[str], touched: Mapping[str, tuple[int, int]]) -> None:
        """Apply what a build just stored; ``generation`` is what the store returned."""
        for path in removed:
            self.files.pop(path, None)
            self.bodies.pop(path, None)
        for path, (size, mtime) in touched.items():
            if path in self.files:
                self.files[path] = replace(self.files[path], size=size, mtime_ns=mtime)
        for path, (cached, body) in fresh.items():
            self.files[path], self.bodies[path] = cached, body
        self.generation = generation

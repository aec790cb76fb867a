"""What a long-lived process keeps between its builds (the scheduler's :class:`Warm`).

A scheduler runs a build every few seconds; re-deriving 10,000 articles' worth
of state each time would be most of a one-file build.  A :class:`Warm` keeps:
the parse cache's stubs (trusted while the ledger's *generation*, bumped by
every write to the cache by any process, is the one it saw, so a manual
``feedserver build`` next to the scheduler is noticed) and the content the
channels listed (keyed by content digest); the last scan, patched with the
paths the watcher's events name (:class:`~feedserver.build.scan.Listing`); the
identities book (:class:`~feedserver.identify.rules.Kept`, same generation rule);
articles, filled copies and signatures made from unchanged inputs
(:class:`~feedserver.build.articles.Reuse`); rendered items; and the manifest it
made live.  Each is checked before it is used, so a stale one is never used.
It is explicit state, owned by whoever runs the builds, never a global.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from feedserver.build.articles import Reuse
from feedserver.build.parallel import warm_cache
from feedserver.build.scan import Entry, Listing
from feedserver.build.signatures import Body, Stub
from feedserver.config import Settings
from feedserver.core.records import Problem
from feedserver.identify.ledger import CachedFile, Ledger
from feedserver.identify.rules import Kept
from feedserver.publish.output import MANIFEST, load_manifest
from feedserver.render.feeds import ItemCache
from feedserver.schedule.liveconfig import Stamp, stamp_of

KEEP_BODIES = 12_000  # about 60 MB of content at most


@dataclass
class Warm:
    """Everything one long-lived process keeps between builds (see the module)."""

    generation: str | None = None
    files: dict[str, CachedFile] = field(default_factory=dict)
    bodies: dict[str, tuple[str, Body]] = field(default_factory=dict)
    reuse: Reuse = field(default_factory=Reuse)
    shaping: str = ""
    listing: Listing | None = None
    manifest: tuple[Stamp, dict[str, Any]] | None = None
    identities: Kept = field(default_factory=Kept)
    items: ItemCache = field(default_factory=warm_cache)  # rendered items (one build at a time)

    def manifest_of(self, out_dir: Path) -> dict[str, Any]:
        """The live manifest: the one this process last published while the file is
        still that one (a site with pages has megabytes of it to parse), else read."""
        key = stamp_of(str(out_dir / MANIFEST))
        if key is not None and self.manifest is not None and self.manifest[0] == key:
            return self.manifest[1]
        data = load_manifest(out_dir)
        self.manifest = (key, data) if key is not None else None
        return data

    def keep_manifest(self, out_dir: Path, data: dict[str, Any] | None) -> None:
        """Remember the manifest a publish just made live (never changed in place); a
        publish renames a new file into place, so its stamp is new."""
        key = stamp_of(str(out_dir / MANIFEST))
        self.manifest = (key, data) if key is not None and data is not None else None

    def scan(self, seeds_dir: str | Path,
             changed: Collection[str] | None) -> tuple[list[Entry], list[Problem]]:
        """The folder's files: the kept listing patched with ``changed`` (the paths the
        watcher's events named), or a full scan when there is none or ``changed`` is None."""
        if changed is None or self.listing is None \
                or self.listing.root != os.path.realpath(seeds_dir):
            self.listing = Listing.full(seeds_dir)
        else:
            self.listing.patch(changed)
        return self.listing.scanned()

    def reuse_for(self, settings: Settings) -> Reuse:
        """What the last build made (articles, filled copies, channel signatures), for
        the same settings."""
        if settings.fingerprint() != self.shaping:
            self.reuse, self.shaping = Reuse(), settings.fingerprint()
            self.items = warm_cache()  # it would empty itself anyway: this frees it now
        return self.reuse

    def bodies_of(self, paths: Iterable[str], stubs: Mapping[str, Stub]) -> dict[str, Body]:
        """Kept content of these paths, where it is of the same digest as now."""
        found: dict[str, Body] = {}
        for path in paths:
            kept = self.bodies.get(path)
            if kept is not None and path in stubs and kept[0] == stubs[path].digest:
                found[path] = kept[1]
        return found

    def keep_bodies(self, found: Mapping[str, Body], stubs: Mapping[str, Stub]) -> None:
        """Keep the content a build fetched; past :data:`KEEP_BODIES`, only the latest."""
        fetched = {path: (stubs[path].digest, body) for path, body in found.items()
                   if path in stubs}
        if len(self.bodies) + len(fetched) > KEEP_BODIES:
            self.bodies = {}
        self.bodies.update(fetched)

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
            self.reuse.articles.pop(path, None)
        for path, (size, mtime) in touched.items():
            if path in self.files:
                self.files[path] = replace(self.files[path], size=size, mtime_ns=mtime)
        self.files.update(fresh)
        self.generation = generation


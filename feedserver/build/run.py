"""One build, from the seeds folder to the output folder (the shell around the core).

This is the only place that strings the I/O together: scan (stat), read only
new or changed files, parse (:mod:`feedserver.build.sources`), reconcile identities in
the ledger, assemble the site (pure), skip every channel and page whose content
signature is the one already published (pages: :mod:`feedserver.build.page_signatures`,
signed by output path beside the channel slugs), render and validate the others (over
worker processes when there are many: :mod:`feedserver.build.parallel`), publish
atomically, remember the last good parse.  The CLI's ``build`` and the
scheduler's job both call :func:`run_build`; ``check`` calls it with
``publish_output=False`` (which validates every channel).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feedserver.build import guard
from feedserver.build.page_signatures import page_signatures
from feedserver.build.parallel import Executor
from feedserver.build.reuse import Warm
from feedserver.build.signatures import Body
from feedserver.build.sources import Hold, Progress, Sources, gather, processes
from feedserver.build.stages import (
    Output,
    Site,
    assemble_site,
    channel_file,
    parse_source,
    render_channels,
)
from feedserver.config import Settings
from feedserver.core.records import Parsed, Problem, SourceFile
from feedserver.identify.dates import git_dated
from feedserver.identify.ledger import Ledger
from feedserver.publish.output import (
    PublishResult,
    begin,
    load_manifest,
    note_status,
    on_disk,
    publish,
    recover,
    write_status,
)
from feedserver.render.embed import render_embeds
from feedserver.render.formats import FORMATS
from feedserver.render.pages import render_pages

__all__ = [
    "BuildReport",
    "Hold",
    "Progress",
    "Sources",
    "gather",
    "parse_files",
    "render_site",
    "run_build",
    "terminal_progress",
]
Render = Callable[[Site], Output]


@dataclass
class BuildReport:
    """What a build did, for the CLI, the scheduler's log and /healthz."""

    published: bool = False
    articles: int = 0
    channels: int = 0
    files: int = 0
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    parsed_files: int = 0
    rendered_channels: int = 0
    seconds: float = 0.0
    next_due: datetime | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def terminal_progress(stage: str, done: int, total: int) -> None:
    """A one-line progress counter on a terminal; silent when piped or logged."""
    if sys.stderr.isatty() and total >= 200 and (done % 100 == 0 or done == total):
        end = "\n" if done == total else ""
        print(f"\r{stage}: {done}/{total}", end=end, file=sys.stderr, flush=True)


def parse_files(sources: list[SourceFile], settings: Settings) -> tuple[dict[str, Parsed],
                                                                      list[Problem]]:
    """Parse in-memory sources (tests and tools); the same rules as a build."""
    parsed: dict[str, Parsed] = {}
    problems: list[Problem] = []
    for source in sources:
        item, found = parse_source(source, settings)
        problems += found
        if item is not None:
            parsed[source.path] = item
    return parsed, problems


def fresh_channels(site: Site, manifest: dict[str, Any], out_dir: Path) -> frozenset[str]:
    """Channels published with the signature they have now, all files still on disk
    (their .gz and .br bodies included: see :func:`publish.on_disk`)."""
    recorded, files, root = manifest["channels"], manifest["files"], str(out_dir)
    return frozenset(
        c.slug for c in site.channels
        if recorded.get(c.slug) == site.signatures[c.slug]
        and all(channel_file(c, f.filename) in files
                and on_disk(root, channel_file(c, f.filename), files[channel_file(c, f.filename)])
                for f in FORMATS.values()))


def fresh_pages(site: Site, manifest: dict[str, Any], out_dir: Path) -> frozenset[str]:
    """Page paths (:mod:`feedserver.build.page_signatures`) published with their signature,
    still on disk."""
    recorded, files, root = manifest["channels"], manifest["files"], str(out_dir)
    slugs = {c.slug for c in site.channels}
    return frozenset(key for key, sig in site.signatures.items()  # 10,000 stats: no pathlib
                     if key not in slugs and recorded.get(key) == sig and key in files
                     and on_disk(root, key, files[key]))


def _signatures(site: Site, output: Output, manifest: dict[str, Any],
                held: set[str]) -> dict[str, str]:
    """What the manifest records: new signatures of what was published, old ones for the
    channels that failed and the files ``held`` from before (a failed channel's views)."""
    slugs = {c.slug for c in site.channels}
    made = {f.path for f in output.files} | output.kept
    current = {key: sig for key, sig in site.signatures.items()
               if key not in output.failed and (key in slugs or key in made)}
    kept = {key: sig for key, sig in manifest["channels"].items()
            if key in output.failed or key in held}
    return {**kept, **current}


def _kept_paths(manifest: dict[str, Any], failed: set[str]) -> set[str]:
    """Previously published files of channels that failed validation this time."""
    return {path for path, entry in manifest["files"].items() if entry.get("channel") in failed}


def _bodies(sources: Sources, ledger: Ledger,
            warm: Warm | None) -> Callable[[list[str]], dict[str, Body]]:
    """Content for the given paths: this build's parses, the warm cache, else the ledger."""
    def fetch(paths: list[str]) -> dict[str, Body]:
        found = {path: sources.bodies[path] for path in paths if path in sources.bodies}
        if warm is not None:
            found.update(warm.bodies_of(paths, sources.stubs))
        found.update(ledger.bodies([path for path in paths if path not in found]))
        if warm is not None:
            warm.keep_bodies(found, sources.stubs)
        return found
    return fetch


def run_build(settings: Settings, now: datetime | None = None, publish_output: bool = True,
              progress: Progress | None = None, hold: Hold | None = None,
              render: Render | None = None, warm: Warm | None = None,
              moves: Mapping[str, str] | None = None,
              changed: Collection[str] | None = None) -> BuildReport:
    """Scan, parse, identify, render, validate and (unless told not to) publish.

    ``render`` replaces :func:`render_site` (the benchmarks build feeds only).
    ``warm`` keeps the parse cache in memory between the builds of a
    long-lived process (the scheduler's); without it the ledger is read.
    ``moves`` (new path -> old path, from the watcher's rename events) lets an
    article moved and edited before this build keep its id.  ``changed`` (with
    ``warm``) names the only paths that may have changed since the last build,
    from the watcher's events: just those are stat'ed, not the whole folder.
    """
    started = time.perf_counter()
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    out_dir = Path(settings.output_dir)
    if publish_output:
        guard.check_seeds_folder(settings.seeds_dir)
        if out_dir.is_dir():
            recover(out_dir)  # a publish killed half-way is finished (or undone) first
        # /healthz shows a build that never ends; the real clock, not the build's ``now``.
        note_status(out_dir, building_since=datetime.now(UTC).replace(microsecond=0)
                    .isoformat())
    lost = guard.lost_ledger(settings)
    try:
        with guard.open_ledger(settings.ledger_file, read_only=not publish_output) as ledger, \
                guard.translated(settings.ledger_file):
            report = _run(settings, ledger, now, publish_output, progress, hold, render, warm,
                          moves, changed, lost)
    except BaseException:
        if publish_output:
            note_status(out_dir, building_since=None)
        raise
    report.seconds = time.perf_counter() - started
    return report


def _run(settings: Settings, ledger: Ledger, now: datetime, publish_output: bool,
         progress: Progress | None, hold: Hold | None, render: Render | None,
         warm: Warm | None, moves: Mapping[str, str] | None,
         changed: Collection[str] | None, lost: list[Problem]) -> BuildReport:
    """:func:`run_build` once the seeds folder and the ledger are known to be usable."""
    out_dir = Path(settings.output_dir)
    cached = warm.load(ledger) if warm is not None else ledger.cached_files()
    scanned = warm.scan(settings.seeds_dir, changed) if warm is not None else None
    sources = gather(settings, ledger, progress, hold, cached, store=publish_output,
                     scanned=scanned)
    if publish_output:  # before reconcile: it would mark the missing articles gone
        lost = lost + guard.check_removals(settings, cached.keys(), sources.present,
                                           sources.forgotten)
    identities = ledger.reconcile(sources.stubs, sources.present, sources.seen_at, now,
                                  moves, warm.identities if warm is not None else None)
    identities = git_dated(identities, settings.seeds_dir,
                           warm.identities.dates if warm is not None else None)
    reuse = warm.reuse_for(settings) if warm is not None else None
    site, problems = assemble_site(sources.stubs, identities, settings, now,
                                   _bodies(sources, ledger, warm), reuse)
    manifest = warm.manifest_of(out_dir) if warm is not None else load_manifest(out_dir)
    if publish_output:
        begin(out_dir)  # workers stage files from here on; see publish.recover
        site = replace(site, signatures={**site.signatures, **page_signatures(
            site, sources.stubs, settings.fingerprint(), reuse)})
        site = replace(site, fresh=fresh_channels(site, manifest, out_dir)
                       | fresh_pages(site, manifest, out_dir),
                       executor=Executor(out_dir, manifest["files"], processes(settings),
                                        warm.items if warm is not None else None))
    output = (render or render_site)(site)
    report = BuildReport(articles=len(site.articles), channels=len(site.channels),
                         files=len(output.files) + len(output.staged) + len(output.kept),
                         parsed_files=sources.read, next_due=site.next_due,
                         rendered_channels=sum(c.slug not in site.fresh
                                               for c in site.channels),
                         problems=lost + sources.problems + problems + output.problems)
    if publish_output:
        live = _publish(out_dir, site, output, manifest, report, now)
        if warm is not None:
            warm.keep_manifest(out_dir, live)
        generation = ledger.store_files((), sources.forgotten, sources.touched)
        if warm is not None:
            warm.update(generation, sources.fresh, sources.forgotten, sources.touched)
        write_status(out_dir, now, [{"where": p.where, "reason": p.reason,
                                     "severity": p.severity} for p in report.problems],
                     report.articles)
    return report


def render_site(site: Site) -> Output:
    """Every channel of the site, validated, plus the pages, OPML, catalog and embeds."""
    output = render_channels(site, site.channels)
    output.files += render_pages(site)
    output.files += render_embeds(site, output.failed)
    output.kept |= site.fresh - {c.slug for c in site.channels}  # pages already published
    return output


def _publish(out_dir: Path, site: Site, output: Output, manifest: dict[str, Any],
             report: BuildReport, now: datetime) -> dict[str, Any] | None:
    """Commit what was rendered (and staged), keeping what is fresh or failed."""
    held = _kept_paths(manifest, output.failed)
    result = publish(out_dir, output.files, prepared=output.staged, keep=output.kept | held,
                     signatures=_signatures(site, output, manifest, held), old=manifest,
                     now=now)
    _record(report, result)
    return result.manifest


def _record(report: BuildReport, result: PublishResult) -> None:
    report.published = True
    report.written = result.written
    report.unchanged = result.unchanged
    report.removed = result.removed

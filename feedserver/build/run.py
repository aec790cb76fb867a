"""One build, from the seeds folder to the output folder (the shell around the core).

This is the only place that strings the I/O together: scan (stat), read only
new or changed files, parse (:mod:`feedserver.build.sources`), reconcile identities in
the ledger, assemble the site (pure), skip every channel and page whose content
signature is the one already published (pages: :mod:`feedserver.build.page_signatures`,
signed by output path beside the channel slugs), fetch the content of exactly the
articles the plan says will be rendered, render and validate the others (over
worker processes when there are many: :mod:`feedserver.build.parallel`), publish
atomically, remember the last good parse.  The CLI's ``build`` and the
scheduler's job both call :func:`run_build`; ``check`` calls it with
``publish_output=False`` (which validates every channel).

Everything reused between builds is in one :class:`BuildMemory`: a cold build
gets an empty one, the scheduler passes the one it keeps; the path is the same.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from itertools import compress
from operator import eq
from pathlib import Path
from typing import Any

from feedserver.build import guard
from feedserver.build.articles import fill, fill_packed
from feedserver.build.assemble import assemble_site, parse_source, with_full_articles
from feedserver.build.codeversion import page_version, render_version
from feedserver.build.deltas import add_deltas
from feedserver.build.media import MediaScan
from feedserver.build.memory import BuildMemory
from feedserver.build.page_signatures import (
    Stale,
    content_wanted,
    drawn_archives,
    page_signatures,
    stale_articles,
)
from feedserver.build.parallel import Executor
from feedserver.build.post_publish import after_publish
from feedserver.build.presence import Presence, tell
from feedserver.build.reassemble import Assembly, reassembled, shaping_of
from feedserver.build.render_gate import Output, Renderer, channel_file, render_channels
from feedserver.build.sources import (
    Hold,
    Progress,
    Sources,
    gather,
    processes,
    ready,
    release_detection,
)
from feedserver.build.spill import Spill
from feedserver.config import Settings
from feedserver.core.packed import Packed, pack
from feedserver.core.records import Article, Parsed, Problem, Rendered, SourceFile
from feedserver.identify.dates import git_dated
from feedserver.identify.ledger import Ledger
from feedserver.publish.output import (
    PublishResult,
    begin,
    note_status,
    publish,
    recover,
    write_status,
)
from feedserver.query.records import Drawer, index_file
from feedserver.render.embed import embed_makers
from feedserver.render.feeds import ItemCache
from feedserver.render.formats import FORMATS
from feedserver.render.pages import page_makers
from feedserver.render.site import Site

__all__ = [
    "BuildMemory",
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
Warm = BuildMemory  # the name it had: what a long-lived process keeps between builds
# Articles whose content a build that keeps no memory fetches and packs at a time (one
# buffer each): the ledger's own batch, a few MB of text.
PACK_SHARE = 500


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
    # Published files were found gone from disk (deleted by hand) after this build
    # rendered: it left them unsigned, for a build right after it to make.
    remake: bool = False

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def then(self, later: BuildReport) -> BuildReport:
        """This build and the one that made what it found gone, as one build."""
        written = set(self.written)
        return replace(later, written=[*self.written, *(p for p in later.written
                                                        if p not in written)],
                       removed=[*self.removed, *later.removed],
                       problems=[*self.problems, *(p for p in later.problems
                                                   if p not in self.problems)],
                       parsed_files=self.parsed_files + later.parsed_files,
                       rendered_channels=self.rendered_channels + later.rendered_channels)


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


NOTHING_MISSING: frozenset[str] = frozenset()


def _gone(site: Site, manifest: dict[str, Any], missing: frozenset[str]) -> frozenset[str]:
    """What ``site`` takes for fresh (channel slugs, page paths) that has a file ``missing``
    from disk: deleted by hand since it was published."""
    if not missing:
        return NOTHING_MISSING
    return site.fresh - fresh_channels(site, manifest, missing) \
        - fresh_pages(site, manifest, missing)


def fresh_channels(site: Site, manifest: dict[str, Any], missing: frozenset[str]
                   ) -> frozenset[str]:
    """Channels published with the signature they have now, all files still on disk
    (their .gz and .br bodies included: ``missing``, see :mod:`build.presence`)."""
    recorded, files = manifest["channels"], manifest["files"]
    return frozenset(
        c.slug for c in site.feed_view().channels
        if recorded.get(c.slug) == site.signatures[c.slug]
        and all(channel_file(c, f.filename) in files
                and channel_file(c, f.filename) not in missing for f in FORMATS.values()))


def fresh_pages(site: Site, manifest: dict[str, Any], missing: frozenset[str]
                ) -> frozenset[str]:
    """Page paths (:mod:`feedserver.build.page_signatures`) published with their signature,
    still on disk (not ``missing``)."""
    # Passes in C: a Python step per signature was 6% of a one-file build at 50,000
    # articles (120,000 signatures).  The signatures compared key by key (map, compress),
    # not as sets of (key, value) pairs: the items' intersection made a tuple a pair and a
    # dict of them, 108 ms of a 1.5 s one-file build there, against 36 ms.
    slugs = {c.slug for c in site.feed_view().channels}
    signatures, recorded = site.signatures, manifest["channels"]
    alike = set(compress(signatures.keys(),
                         map(eq, signatures.values(), map(recorded.get, signatures.keys()))))
    alike.difference_update(slugs, missing)
    return frozenset(alike.intersection(manifest["files"].keys()))


def _signatures(site: Site, output: Output, manifest: dict[str, Any],
                held: set[str]) -> dict[str, str]:
    """What the manifest records: new signatures of what was published, old ones for the
    channels that failed and the files ``held`` from before (a failed channel's views)."""
    # Set operations and a copy, not a Python step per signature (120,000 at 50,000
    # articles): dropped are those signed but failed, or neither a channel nor a file
    # made or kept by this build.
    dropped = (site.signatures.keys() - output.kept - {c.slug for c in site.feed_view().channels}
               - {f.path for f in output.files} - {p.path for p in output.staged}) \
        | output.failed
    current = dict(site.signatures)
    for key in dropped:
        current.pop(key, None)
    recorded = manifest["channels"]
    signed = {key: recorded[key] for key in (output.failed | held) & recorded.keys()}
    signed.update(current)
    return signed


def _kept_paths(manifest: dict[str, Any], failed: set[str]) -> set[str]:
    """Previously published files of channels that failed validation this time."""
    if not failed:  # the usual build: no walk of a manifest of 100,000 entries
        return set()
    return {path for path, entry in manifest["files"].items() if entry.get("channel") in failed}


def _packer(folder: str) -> Callable[[Sequence[str]], list[Packed]]:
    """What packs a build's content: a :class:`Spill` in ``folder`` (the state folder, on
    the disk the site's state is on), or buffers in memory where no file can be made
    there, or one write fails (a full disk): the build is the same either way."""
    try:
        spill = Spill(folder)
    except OSError:
        return pack

    def packer(texts: Sequence[str]) -> list[Packed]:
        try:
            return spill.pack(texts)
        except OSError:
            return pack(texts)
    return packer


def _with_content(site: Site, wanted: list[Article], drawn: frozenset[str], sources: Sources,
                  ledger: Ledger, memory: BuildMemory, spill_to: str) -> Site:
    """``site`` with the content of ``wanted``: copies made last build, else the bodies
    parsed this build, kept in memory, or (the rest) in the ledger.  Of the archive
    pages, only the ``drawn`` ones are filled.

    A build whose memory is not kept (a process that builds once) keeps no body either
    and packs the content (:func:`~feedserver.build.articles.fill_packed`), a share of
    the articles at a time, so the render workers it forks leave the text shared and
    the bodies fetched are never all held at once as strings.
    """
    full = memory.full_copies(wanted)
    paths = [a.path for a in wanted if a.id not in full]
    found = {path: sources.bodies[path] for path in paths if path in sources.bodies}
    found.update(memory.bodies_of(paths, sources.stubs))
    todo = [a for a in wanted if a.id not in full]
    if memory.lasting:
        found.update(ledger.bodies([path for path in paths if path not in found]))
        memory.keep_bodies(found, sources.stubs)
        made = [(a, fill(a, found[a.path])) for a in todo]
    else:
        made = []
        packer = _packer(spill_to) if todo else pack
        for start in range(0, len(todo), PACK_SHARE):
            share = todo[start:start + PACK_SHARE]
            bodies = {a.path: found[a.path] for a in share if a.path in found}
            bodies.update(ledger.bodies([a.path for a in share if a.path not in bodies]))
            made += zip(share, fill_packed(share, bodies, packer), strict=True)
    memory.keep_full(made)
    full.update((light.id, copy) for light, copy in made)
    return with_full_articles(site, full, drawn)


def run_build(settings: Settings, now: datetime | None = None,
              memory: BuildMemory | None = None, changes: Collection[str] | None = None, *,
              publish_output: bool = True, pages: bool = True,
              progress: Progress | None = None, hold: Hold | None = None,
              moves: Mapping[str, str] | None = None, one_shot: bool = False) -> BuildReport:
    """Scan, parse, identify, render, validate and (unless told not to) publish.

    ``memory`` is what a long-lived process (the scheduler) keeps between its
    builds; without one the build starts from an empty one (a cold build, the
    same path).  ``changes`` names the only paths that may have changed since
    the last build with this memory, from the watcher's events: just those are
    stat'ed, not the whole folder (None: scan it all).  ``pages=False`` builds
    the feeds only (the benchmarks).  ``moves`` (new path -> old path, from the
    watcher's rename events) lets an article moved and edited before this build
    keep its id.  ``one_shot``: the process builds once and exits (``feedserver build``,
    ``check``, the build before ``serve``), so the language model and the gazetteer are
    dropped once the files are parsed, before the render workers fork and inherit them;
    a process that builds again (the scheduler, tests, tools) keeps them loaded.
    """
    memory = memory if memory is not None else replace(BuildMemory.empty(), lasting=False)
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
            report = _run(settings, ledger, now, memory, changes, publish_output, pages,
                          progress, hold, moves, lost, one_shot=one_shot)
            if report.remake:  # published files were gone from disk: made now, once
                report = report.then(_run(settings, ledger, now, memory, (), publish_output,
                                          pages, progress, hold, None, lost,
                                          one_shot=one_shot))
    except BaseException:
        if publish_output:
            note_status(out_dir, building_since=None)
        raise
    report.seconds = time.perf_counter() - started
    return report


def _run(settings: Settings, ledger: Ledger, now: datetime, memory: BuildMemory,
         changes: Collection[str] | None, publish_output: bool, pages: bool,
         progress: Progress | None, hold: Hold | None, moves: Mapping[str, str] | None,
         lost: list[Problem], *, one_shot: bool = False) -> BuildReport:
    """:func:`run_build` once the seeds folder and the ledger are known to be usable."""
    out_dir = Path(settings.output_dir)
    manifest = memory.manifest_of(out_dir)
    # Which published files are gone from disk, checked by a fork (or a helper program,
    # in a process too big to fork) while this assembles.
    helper = None if one_shot or not publish_output else memory.helper("presence")
    presence = Presence(str(out_dir), manifest["files"] if publish_output else {}, helper,
                        memory.manifest[0] if memory.manifest is not None else None)
    try:
        return _built(settings, ledger, now, memory, changes, publish_output, pages,
                      progress, hold, moves, lost, manifest, presence, one_shot=one_shot)
    finally:
        presence.close()


def _built(settings: Settings, ledger: Ledger, now: datetime, memory: BuildMemory,
           changes: Collection[str] | None, publish_output: bool, pages: bool,
           progress: Progress | None, hold: Hold | None, moves: Mapping[str, str] | None,
           lost: list[Problem], manifest: dict[str, Any], presence: Presence, *,
           one_shot: bool = False) -> BuildReport:
    """:func:`_run` with the live manifest and its presence check under way."""
    out_dir = Path(settings.output_dir)
    known = memory.known(settings)
    readings = memory.readings_store(settings) if publish_output else None
    if readings is not None:
        readings.ready()  # made here, before any worker forks and reads it
    cached = memory.load(ledger)
    scanned = memory.scan(settings.seeds_dir, changes)
    media = memory.media_scan(settings, changes, store=publish_output)
    index = media.index(frozenset(entry.path for entry in scanned[0]))
    sources = gather(settings, ledger, progress, hold, cached, store=publish_output,
                     scanned=scanned, media=index,
                     helper=None if one_shot else memory.helper("parse"))
    if one_shot:
        release_detection()  # the render workers fork next: they would inherit it
    if publish_output:  # before reconcile: it would mark the missing articles gone
        lost = lost + guard.check_removals(settings, cached.keys(), sources.present,
                                           sources.forgotten)
    identities = ledger.reconcile(sources.stubs, sources.present, sources.seen_at, now,
                                  moves, memory.identities)
    identities = git_dated(identities, settings.seeds_dir, memory.identities.dates)
    artwork, unseen = media.artwork(settings)
    # A few articles swapped into the last assembly when that is all that changed, else
    # the whole assembly (feedserver.build.reassemble).
    code = render_version()
    assembly = reassembled(memory.assembly, sources.stubs, identities, settings, now, known,
                           render_code=code, artwork=artwork)
    if assembly is None:
        assembly = Assembly(sources.stubs, identities, now, shaping_of(settings, code, artwork),
                            assemble_site(sources.stubs, identities, settings, now, known,
                                          render_code=code, artwork=artwork,
                                          created=ledger.created(now)))
    made = assembly.made
    memory.remember_site(made, assembly)
    site, problems = made.site, made.problems
    renderer: Renderer | None = None  # a check renders here, staging nothing
    stale: Stale | None = None  # which articles' pages and records to make (None: all)
    if publish_output:
        begin(out_dir)  # workers stage files from here on; see publish.recover
        signed = page_signatures(site, sources.stubs, settings.fingerprint(),
                                 page_version(), known, settings.pages)
        memory.remember_pages(signed)
        site = replace(site, signatures={**site.signatures, **signed.signatures,
                                         **(media.signatures() if pages else {})})
        # Fresh as far as signatures tell: the presence check is asked before the publish,
        # once its fork has had the rest of the build to answer (files found gone then
        # are made by the build that follows, see run_build).
        site = replace(site, fresh=fresh_channels(site, manifest, NOTHING_MISSING)
                       | fresh_pages(site, manifest, NOTHING_MISSING))
        stale = stale_articles(site, settings.pages, signed)
        renderer = memory.renderer(out_dir, manifest["files"], processes(settings))
    html = settings.pages  # false: feeds, lists and embeds, no HTML pages
    drawn = drawn_archives(site, pages, html)
    site = _with_content(site, content_wanted(site, pages, html, drawn, stale), drawn, sources,
                         ledger, memory, settings.state_dir)
    if not pages:
        output = render_feeds(site, renderer)
    else:
        output = render_site(site, renderer, html, stale=stale.pages if stale else None,
                             more=partial(query_makers, site, settings, stale,
                                          memory.items)
                             if publish_output else None)
    if publish_output and pages:
        _add_media(output, site, media)
    report = BuildReport(articles=len(site.articles), channels=len(site.channels),
                         files=len(output.files) + len(output.staged) + len(output.kept),
                         parsed_files=sources.read, next_due=site.next_due,
                         rendered_channels=sum(c.slug not in site.fresh
                                               for c in site.channels),
                         problems=lost + sources.problems + media.problems + unseen + problems
                         + output.problems)
    if publish_output:
        gone = _gone(site, manifest, presence.missing())
        if gone:  # left unsigned: the build that follows renders them (run_build)
            site = replace(site, signatures={key: signature for key, signature
                                             in site.signatures.items() if key not in gone})
            report.remake = True
        deltas = add_deltas(site, output, manifest, settings, out_dir, memory.items)
        published = _publish(out_dir, site, output, manifest, report, now)
        if readings is not None:  # what feedparser read, for later processes
            readings.add(memory.items.readings.unsaved(),
                         memory.items.readings.unsaved_packed())
            readings.close()  # no descriptor held between builds (it opens when asked)
        live, was = published.manifest, memory.manifest
        memory.keep_manifest(out_dir, live)
        if "presence" in memory.helpers and was is not None and memory.manifest is not None:
            tell(memory.helpers["presence"], str(out_dir), was[0], memory.manifest, published)
        deltas.remember(live)
        generation = ledger.store_files((), sources.forgotten, sources.touched)
        memory.update(generation, sources.fresh, sources.forgotten, sources.touched)
        write_status(out_dir, now, [{"where": p.where, "reason": p.reason,
                                     "severity": p.severity} for p in report.problems],
                     report.articles)
        after_publish(settings, live, len(report.written), len(report.removed))
    if not one_shot:  # for the next build's changed files (this one may have made the
        ready(memory.helper("parse"), settings, index)  # process too big to fork)
    return report


def query_makers(site: Site, settings: Settings, stale: Stale | None = None,
                 items: ItemCache | None = None) -> list[Callable[[], Rendered]]:
    """What makes the index and the stale item records combined and filtered feeds are
    answered from (:mod:`feedserver.query.records`), one call a file; fresh records are
    kept like fresh pages (``stale``: which are not, when the build knows it).  A record
    carries its article's items (:class:`~feedserver.query.records.Drawer`), taken from
    ``items`` (the build's rendered items) where they are kept there.

    The index is made here, in this process: it reads every article of the site, and
    a worker that made it copied the pages they lie on (benchmarks/README.md, "A kept
    row, 4 KiB, ...": the index made in the build's process); its 1.7 MB at 10,000
    articles are then shared by the workers, one of which stages it."""
    found = stale if stale is not None else stale_articles(site, False)
    drawer = Drawer(site.context, items)
    made: list[Callable[[], Rendered]] = [
        partial(drawer, a) for a in found.among(site.articles, found.records)]
    made.append(partial(_given, index_file(site, settings.max_items,
                                           settings.refresh_interval,
                                           settings.freshness_ceiling, settings.language)))
    return made


def _given(file: Rendered) -> Rendered:
    """A file made already, as its maker."""
    return file


def _make(output: Output, renderer: Renderer | None,
          makers: list[Callable[[], Rendered]]) -> None:
    """Files from their makers into ``output``: rendered and staged by the shell's
    workers (:meth:`Executor.stage`: the bodies are never all in this process), or
    rendered here (a check, tests)."""
    if isinstance(renderer, Executor):
        output.staged += renderer.stage(makers)
    else:
        output.files += [make() for make in makers]


def _add_media(output: Output, site: Site, media: MediaScan) -> None:
    """The media files not published as they are now, read for the publish step
    (:mod:`feedserver.build.media`); the others are kept like fresh pages."""
    files, problems = media.rendered(set(media.signatures()) - site.fresh)
    output.files += files
    output.problems += problems


def render_feeds(site: Site, renderer: Renderer | None = None) -> Output:
    """Every channel of the site in every format, validated: the feeds, no pages.
    ``renderer`` (the worker processes) renders the stale channels."""
    feeds = site.feed_view()  # the channels and their archive pages
    return render_channels(feeds, feeds.channels, renderer=renderer)


def render_site(site: Site, renderer: Renderer | None = None, html: bool = True, *,
                stale: AbstractSet[str] | None = None,
                more: Callable[[], Sequence[Callable[[], Rendered]]] | None = None
                ) -> Output:
    """Every channel of the site, validated, plus the pages, OPML, catalog and embeds
    (``html=False``: no index, topic or article pages; the ``pages`` setting).  ``stale``:
    the ids of the articles whose pages to make, when the build knows them
    (:func:`~feedserver.build.page_signatures.stale_articles`).  ``more``: other files'
    makers (the query's records and index), asked for once the feeds are done and made
    with the pages: one Pool for all, so this process never holds the pages' manifest
    entries as objects beside a second Pool's workers (benchmarks/README.md, "The staged
    files held as bytes")."""
    output = render_feeds(site, renderer)
    # The pages' workers read the articles off the feeds' shelf too (build/shelf.py).
    listed = renderer.shipped(site) if isinstance(renderer, Executor) else site
    _make(output, renderer, [*page_makers(listed, html, stale),
                             *embed_makers(listed, output.failed),
                             *(more() if more is not None else ())])
    output.kept |= site.fresh - {c.slug for c in site.feed_view().channels}  # fresh pages
    return output


def _publish(out_dir: Path, site: Site, output: Output, manifest: dict[str, Any],
             report: BuildReport, now: datetime) -> PublishResult:
    """Commit what was rendered (and staged), keeping what is fresh or failed."""
    held = _kept_paths(manifest, output.failed)
    result = publish(out_dir, output.files, prepared=output.staged, keep=output.kept | held,
                     signatures=_signatures(site, output, manifest, held), old=manifest,
                     now=now)
    _record(report, result)
    return result


def _record(report: BuildReport, result: PublishResult) -> None:
    report.published = True
    report.written = result.written
    report.unchanged = result.unchanged
    report.removed = result.removed

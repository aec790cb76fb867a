"""One build, from the seeds folder to the output folder (the shell around the core).

This is the only place that strings the I/O together: scan (stat), read only
new or changed files, parse, reconcile identities in the ledger, render and
validate (pure), publish atomically, remember the last good parse.  The CLI's
``build`` and the scheduler's job both call :func:`run_build`; ``check`` calls
it with ``publish=False``.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import scan
from .config import Settings
from .embed import render_embeds
from .ledger import CachedFile, Ledger
from .models import Parsed, Problem, SourceFile
from .pages import render_pages
from .pipeline import Output, Site, assemble, parse_source, render_channels
from .publish import PublishResult, load_manifest, publish, write_status

Progress = Callable[[str, int, int], None]
# True for a changed file that is still being written (see feedserver.watcher.Writes).
Hold = Callable[[scan.Entry], bool]


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


@dataclass
class Sources:
    """Parsed articles by path, what to cache, and what was met on the way."""

    parsed: dict[str, Parsed] = field(default_factory=dict)
    fresh: dict[str, CachedFile] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)
    seen_at: dict[str, datetime] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    read: int = 0
    forgotten: set[str] = field(default_factory=set)


def gather(settings: Settings, ledger: Ledger, progress: Progress | None = None,
           hold: Hold | None = None) -> Sources:
    """Scan, then read and parse only files whose size, mtime or hash changed.

    A file that fails to parse keeps its last good version (from the cache)
    and adds a problem; a new file that fails is only a problem.  A changed
    file that ``hold`` says is still being written is not read: its last good
    version stays (a new one waits), and it is not gone either.
    """
    entries, problems = scan.list_files(settings.seeds_dir)
    cached = ledger.cached_files()
    shaping = settings.fingerprint()
    out = Sources(problems=problems)
    for done, entry in enumerate(entries, 1):
        out.present.add(entry.path)
        out.seen_at[entry.path] = datetime.fromtimestamp(entry.mtime_ns / 1e9, UTC)
        previous = cached.get(entry.path)
        if previous and (previous.size, previous.mtime_ns, previous.settings) == \
                (entry.size, entry.mtime_ns, shaping):
            out.parsed[entry.path] = previous.parsed
        elif hold is not None and hold(entry):
            if previous is not None:
                out.parsed[entry.path] = previous.parsed
        else:
            _read_one(entry, previous, settings, shaping, out)
        if progress:
            progress("reading", done, len(entries))
    out.forgotten = set(cached) - out.present
    return out


def _read_one(entry: scan.Entry, previous: CachedFile | None, settings: Settings,
              shaping: str, out: Sources) -> None:
    if entry.size > settings.max_file_bytes:
        _failed(entry.path, f"file is {entry.size:,} bytes; the limit is "
                            f"{settings.max_file_bytes:,} (max_file_bytes)", previous, out)
        return
    try:
        source = scan.read(entry, settings.max_file_bytes)
    except OSError as exc:
        _failed(entry.path, f"cannot read: {exc.strerror or exc}", previous, out)
        return
    out.read += 1
    digest = hashlib.sha256(source.data).hexdigest()
    if previous and previous.sha256 == digest and previous.settings == shaping:
        parsed: Parsed | None = previous.parsed
        found: list[Problem] = []
    else:
        parsed, found = parse_source(source, settings)
    if parsed is None:
        _failed(entry.path, found[0].reason, previous, out)
        return
    out.problems += found
    out.parsed[entry.path] = parsed
    out.fresh[entry.path] = CachedFile(entry.size, entry.mtime_ns, digest, shaping, parsed)


def _failed(path: str, reason: str, previous: CachedFile | None, out: Sources) -> None:
    if previous is not None:
        out.parsed[path] = previous.parsed
        reason += "; the last good version stays published"
    out.problems.append(Problem(path, reason))


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


def _kept_paths(out_dir: Path, failed: set[str]) -> set[str]:
    """Previously published files of channels that failed validation this time."""
    files = load_manifest(out_dir)["files"]
    return {path for path, entry in files.items() if entry.get("channel") in failed}


def run_build(settings: Settings, now: datetime | None = None, publish_output: bool = True,
              progress: Progress | None = None, hold: Hold | None = None) -> BuildReport:
    """Scan, parse, identify, render, validate and (unless told not to) publish."""
    started = time.perf_counter()
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    out_dir = Path(settings.output_dir)
    with Ledger(settings.ledger_file) as ledger:
        sources = gather(settings, ledger, progress, hold)
        identities = ledger.reconcile(sources.parsed, sources.present, sources.seen_at, now)
        site, problems = assemble(sources.parsed, identities, settings, now)
        output = render_site(site)
        report = BuildReport(articles=len(site.articles), channels=len(site.channels),
                             files=len(output.files), parsed_files=sources.read,
                             next_due=site.next_due,
                             problems=sources.problems + problems + output.problems)
        if publish_output:
            result = publish(out_dir, output.files, keep=_kept_paths(out_dir, output.failed))
            _record(report, result)
            ledger.store_files(sources.fresh, sources.forgotten)
            write_status(out_dir, now, [{"where": p.where, "reason": p.reason,
                                         "severity": p.severity} for p in report.problems],
                         report.articles)
    report.seconds = time.perf_counter() - started
    return report


def render_site(site: Site) -> Output:
    """Every channel of the site, validated, plus the pages, OPML, catalog and embeds."""
    output = render_channels(site, site.channels)
    output.files += render_pages(site)
    output.files += render_embeds(site, output.failed)
    return output


def _record(report: BuildReport, result: PublishResult) -> None:
    report.published = True
    report.written = result.written
    report.unchanged = result.unchanged
    report.removed = result.removed

"""Render, validate, compress and stage channels over worker processes (a shell).

The pure core renders one channel at a time (:func:`~feedserver.build.render_gate.render_channel`);
this module spreads the stale channels of a build over ``build_processes``
processes.  Each task validates one format of one channel (the gate stays on)
and stages the file if it changed (:func:`publish.prepare`: compressed,
written to temporary files), so the bytes never travel between processes;
only manifest entries and problems do.  The parent commits them all at once,
so the result is the same as a sequential build, byte for byte.

A job cheaper than :func:`split_worth` runs in the parent, and so does a small job in a
process too big to fork for it (:mod:`feedserver.build.forkcost`).  Others fork, two ways:

* A small job (an incremental build: a few channels) is split between the
  parent and ``processes - 1`` children forked for it alone
  (:func:`feedserver.build.forks.shared`: a bare fork is far cheaper than starting a
  ``Pool``).  The parent first renders every item the job needs into its item
  cache (kept across builds by a long-lived caller: :func:`warm_cache`), so the
  children inherit them copy-on-write and only splice, validate and stage.
* A big job (a cold build: every channel) goes to a ``Pool`` of workers that
  render their own items (in parallel, with a bounded cache each) and are
  replaced every :data:`RECYCLE` runs, which keeps the peak memory down.  The
  tasks go out in runs that keep each worker's items together (:func:`runs`): an
  article is listed by about five channels and their archive pages, and each item
  drawn for one of them is a cache hit for the others only if the same worker
  meets them before it is evicted.

Processes are forked after the site is assembled and the garbage collector's
objects are frozen, so they share the parent's articles instead of copying
them.  The unit of work is one channel in one format, costliest first.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feedserver.build import forkcost, heap
from feedserver.build.forks import shared
from feedserver.build.render_gate import Output, channel_file, render_checked
from feedserver.build.shelf import Shipping
from feedserver.core.errors import PublishError
from feedserver.core.records import Channel, Problem, Rendered
from feedserver.publish.output import Prepared, discard, prepare, stage_temp
from feedserver.render.feeds import ItemCache
from feedserver.render.formats import FORMATS, Format, Seen, preload
from feedserver.render.formats.readings import split_packed
from feedserver.render.site import Site

# Jobs cheaper than one channel of this many items in every format stay in this process:
# below it a fork costs more than it saves (figures: benchmarks/README.md, "Measurements
# behind the code").
SPLIT_ITEMS = 16
# Jobs of at most this many tasks (20 channels in 3 formats) are split between the
# parent and bare forks, their items rendered once in the parent; bigger ones go to a Pool.
SPLIT_MAX = 60
# Rendered items each Pool worker keeps: enough for the items a worker meets again, far
# fewer than a large site's channels list (memory per worker: the same README).  800
# items of about 5 kB: against 1,500, a cold feeds-only 10,000 build renders 50,500
# items instead of 45,700 (about 0.5 s of CPU, within its timing's spread) and its feed
# Pool peaks 5-10 MiB lower (benchmarks/README.md, "A kept row, 4 KiB, ...").
ITEM_CACHE = 800
# Items a long-lived cache keeps between builds (see :func:`warm_cache`).
WARM_ITEMS = 6000
# A worker is replaced (a new fork of the parent) after this many runs of tasks (see
# :func:`runs`): what feedparser and lxml leave fragmented in a worker's heap is given
# back (the peak memory per setting is in the same README).
RECYCLE = 4
# Each run of a format's tasks is 1 / (SHARE x processes) of what is left of them
# (:func:`runs`): long stretches of history first, short runs at the end, so no worker
# waits long for the others.
SHARE = 2
# The shortest run: below it a run's items are mostly new to the worker again.
MIN_RUN = 8
# Files (pages, records) made and staged per Pool task (:meth:`Executor.stage`), and the
# fewest worth a Pool at all (an incremental build's few stay in this process).
FILE_RUN = 250
FILES_POOLED = 1000


def split_worth() -> int:
    """The cost (items x each format's ``cost`` hint) below which a job stays in this
    process: :data:`SPLIT_ITEMS` items in every registered format."""
    return SPLIT_ITEMS * sum(fmt.cost for fmt in FORMATS.values())


def warm_cache() -> ItemCache:
    """An item cache for a long-lived process to hand every :class:`Executor` it makes.

    :data:`WARM_ITEMS` keeps the items of the 'all' channel and the busiest topic
    channels, the least recently used going first, and always more than the biggest
    small job (:data:`SPLIT_MAX` tasks of ``max_items`` items) pre-renders, so none is
    evicted before the fork.  A bigger corpus lists more articles but the cache stays
    this size; an evicted item is only rendered again, never wrong (sizes and costs:
    benchmarks/README.md).
    """
    return ItemCache(WARM_ITEMS)


@dataclass
class _Job:
    """What every worker inherits from the parent at fork time."""

    site: Site
    out_dir: Path
    published: dict[str, Any]
    cache: ItemCache
    # The parent keeps its workers' readings as bytes (a process that builds once): they
    # send them packed (:func:`~feedserver.render.formats.readings.split_packed`).
    packs: bool = False


@dataclass
class _Done:
    """One channel in one format: staged if it passed, or the problems it had."""

    index: int
    staged: Prepared | None
    problems: list[Problem]
    # What the gate's parser read from items this task met first (digest -> reading),
    # for the parent to keep: workers forked later (a Pool's replacements, the next
    # build's) start with them (:mod:`feedserver.render.formats.readings`).
    learned: dict[bytes, Seen] = field(default_factory=dict)


Result = _Done | PublishError
_JOB: _Job | None = None  # set in each Pool worker by _start, never in the parent


def _start(job: _Job) -> None:
    global _JOB
    _JOB = job


def stage_format(job: _Job, index: int, fmt: Format) -> _Done:
    """Render one channel in one format, validate it, and stage it if it passed."""
    channel = job.site.channels[index]
    body, problems = render_checked(channel, fmt, job.site.context, job.cache)
    learned = job.cache.readings.learned()
    if problems:
        return _Done(index, None, problems, learned)
    item = Rendered(channel_file(channel, fmt.filename), body, fmt.media_type,
                    channel.updated, channel.slug, fmt.name, fmt.cors, channel.max_age,
                    channel.sealed)
    return _Done(index, prepare(job.out_dir, item, job.published.get(item.path)), [],
                 learned)


def _run(job: _Job, task: tuple[int, str]) -> Result:
    try:
        return stage_format(job, task[0], FORMATS[task[1]])
    except PublishError as exc:
        return exc


Learned = tuple[dict[bytes, bytes], dict[bytes, Seen]]  # readings packed, and as objects


def _some(tasks: list[tuple[int, str]]) -> tuple[list[Learned], bytes]:
    """A run of tasks: what the parser learned in each (the parent teaches it at once:
    packed when it keeps bytes, :attr:`_Job.packs`), and the results without it,
    pickled (:func:`packed`)."""
    assert _JOB is not None, "worker started without a job"
    results = [_run(_JOB, task) for task in tasks]
    learned: list[Learned] = []
    for result in results:
        if isinstance(result, _Done):
            learned.append(split_packed(result.learned) if _JOB.packs
                           else ({}, result.learned))
            result.learned = {}
    return learned, packed(results)


def packed(value: object) -> bytes:
    """What a Pool worker sends back, as the parent keeps it until the Pool is done.

    A staged file's manifest entry and temporary names take about 2.2 kB as objects and
    0.7 kB pickled.  Unpickled as they arrived, a cold build's pages grew the parent by
    35-43 MiB while the workers were still alive beside it (10,000 articles, the peak of
    the build: benchmarks/README.md, "The staged files held as bytes"); kept pickled,
    they are unpickled once the workers are gone (:func:`unpacked`).
    """
    return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)


def unpacked(blobs: list[bytes]) -> Iterator[Any]:
    """Each of ``blobs`` unpickled, in order, each dropped from the list as it is read
    (so the bytes and the objects they make are not all held at once)."""
    blobs.reverse()
    while blobs:
        yield pickle.loads(blobs.pop())


def read_back(kept: list[bytes | str]) -> list[Any]:
    """:func:`unpacked` of blobs :func:`set_aside` kept, each file read and removed in
    turn; one that cannot be read is its :class:`PublishError` (the shares read are
    then discarded by the caller: only the lost one's files stay, for the next build's
    :func:`~feedserver.publish.output.recover`)."""
    kept.reverse()
    found: list[Any] = []
    while kept:
        try:
            found.append(pickle.loads(_taken_back(kept.pop())))
        except PublishError as exc:
            found.append(exc)
    return found


def set_aside(blob: bytes, folder: Path) -> bytes | str:
    """``blob`` written to a new temp file in ``folder``, and that file's path; or
    ``blob`` itself if the disk refuses it.

    A files Pool's workers send back their shares so: the parent kept them as bytes
    while the Pool lived, 10 MiB at its end for a cold 10,000 build, where the
    whole site's memory peaked (benchmarks/README.md, "A kept row, 4 KiB, ...":
    shares set aside).  The file is the output folder's, named as :func:`clean_temporaries`
    removes after a crash (the publish's marker is there from before the Pool)."""
    try:
        return stage_temp(str(folder), "feedserver-share", blob)
    except OSError:
        return blob


def _taken_back(kept: bytes | str) -> bytes:
    """A blob :func:`set_aside` kept: its bytes, its file removed; raises
    :class:`PublishError` if the file cannot be read."""
    if isinstance(kept, bytes):
        return kept
    try:
        with open(kept, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise PublishError(f"cannot read back {kept}: {exc.strerror or exc}; "
                           "the previous output is unchanged") from None
    finally:
        with suppress(OSError):
            os.unlink(kept)


def runs(site: Site, tasks: list[tuple[int, str]], processes: int
         ) -> list[list[tuple[int, str]]]:
    """The tasks of a big job in the runs the Pool hands out, each to one worker.

    An item is drawn per format and kept in the worker's bounded cache, so a worker
    draws it once if it meets every channel listing it within a short time.  The
    tasks go format by format, each format's channels in the order of the site's
    history (the median rank, newest first, of the articles each lists: a topic's
    archive page comes among the pages of 'all' that list the same articles), cut
    into consecutive runs so that the workers take different stretches of it.  Each
    run is a share of what is left of its format (:data:`SHARE`), so the runs shrink
    and the workers finish together.  On the 10,000-article benchmark this draws each
    item 1.4 times per format (13,700-13,800 draws of 10,000 items), against 4.6 times
    in the costliest-first order it replaced (benchmarks/README.md).
    """
    rank = {article.id: n for n, article in enumerate(site.articles)}
    place: dict[int, int] = {}
    for index in {t[0] for t in tasks}:
        ranks = sorted(rank.get(a.id, 0) for a in site.channels[index].articles)
        place[index] = ranks[len(ranks) // 2] if ranks else 0
    made: list[list[tuple[int, str]]] = []
    for name in FORMATS:
        ordered = sorted((t for t in tasks if t[1] == name), key=lambda t: (place[t[0]], t))
        start = 0
        while start < len(ordered):
            left = len(ordered) - start
            size = max(MIN_RUN, -(-left // (SHARE * processes)))
            made.append(ordered[start:start + size])
            start += size
    return made


def prerender(cache: ItemCache, site: Site, channels: list[Channel]) -> None:
    """Every item these channels list, in every format, into ``cache`` (the new ones
    rendered, the others only looked up), so processes forked next inherit them."""
    for fmt in FORMATS.values():
        for channel in channels:
            for article in channel.articles:
                cache.get(fmt, article, site.context)


class Executor:
    """The shell's :data:`~feedserver.build.assemble.Renderer`: stale channels -> staged output,
    the pure channel renderer mapped over worker processes.

    ``cache``: the build's memory (:class:`~feedserver.build.memory.BuildMemory`) hands
    the same :func:`warm_cache` to the executor of every build, so a small job
    renders only the items it has not rendered before; it makes a new one when the
    settings change (the old items are then dead weight; they are never reused: see
    :class:`~feedserver.render.feeds.ItemCache`).  Without it, each call uses a cache
    of its own.  A channel whose formats do not all pass is left out whole, as
    the sequential path does.
    """

    def __init__(self, out_dir: Path, published: dict[str, Any], processes: int,
                 cache: ItemCache | None = None, lasting: bool = True) -> None:
        self.out_dir = out_dir
        self.published = published
        self.processes = processes
        self.cache = cache
        self.lasting = lasting  # False: the process builds once (see _pooled)
        self._shipping: Shipping | None = None  # this build's shelf, once made (ship)

    def __call__(self, site: Site, channels: list[Channel]) -> Output:
        position = {c.slug: i for i, c in enumerate(site.channels)}
        tasks = [(position[c.slug], name) for c in channels for name in FORMATS]
        if len(tasks) > SPLIT_MAX and self.processes >= 2:
            readings = self.cache.readings if self.cache is not None else None
            return _combine(site, _pooled(_Job(self.ship(site), self.out_dir, self.published,
                                               ItemCache(ITEM_CACHE, readings),
                                               packs=not self.lasting),
                                          runs(site, tasks, self.processes),
                                          self.processes))
        cost = {t: len(site.channels[t[0]].articles) * FORMATS[t[1]].cost for t in tasks}
        tasks.sort(key=lambda t: (-cost[t], t))  # the last to finish is a short one
        cache = self.cache if self.cache is not None else ItemCache()
        job = _Job(site, self.out_dir, self.published, cache)
        if self.processes < 2 or len(tasks) < 2 or sum(cost.values()) < split_worth() \
                or forkcost.costly():  # a big process: the fork would cost it more
            return _combine(site, [_run(job, task) for task in tasks])
        prerender(cache, site, channels)
        results = _split(job, tasks, self.processes)
        for result in results:  # what the forks' parser read, for the next build
            if isinstance(result, _Done):
                cache.readings.teach(result.learned)
        return _combine(site, results)

    def ship(self, site: Site) -> Site:
        """``site`` as this build's Pool workers are handed it: in a process that builds
        once, its articles shipped as bytes (:mod:`feedserver.build.shelf`), once per
        build; a process that lasts keeps its objects (its own memory)."""
        if self.lasting:
            return site
        if self._shipping is None:
            self._shipping = Shipping(site)
        return self._shipping.site(site)

    def shipped(self, site: Site) -> Site:
        """``site`` on the shelf the feeds were shipped on, if they were (a cold build's
        pages follow its feeds over a Pool), else as it is."""
        return self._shipping.site(site) if self._shipping is not None else site

    def stage(self, makers: list[Callable[[], Rendered]]) -> list[Prepared]:
        """Render and stage the files these make: the pages
        (:func:`feedserver.render.pages.page_makers`), the embeds
        (:func:`feedserver.render.embed.embed_makers`), the query index and item records.

        A cold build's (10,000 articles: 12,500 pages, 100 MiB of HTML and 65 MiB
        compressed; 10,000 records, 120 MiB) go over a Pool, a share each, so they are
        made and compressed on every core and no process ever holds them all; a few (an
        incremental build) are staged here, one at a time.  Raises
        :class:`PublishError` with every staged file removed when the disk refuses a
        write.
        """
        if self.processes < 2 or len(makers) < FILES_POOLED:
            done = _stage_range(_Files(makers, self.out_dir, self.published), 0, len(makers))
            if isinstance(done, PublishError):
                raise done
            return done
        if self._shipping is not None:  # an article's page and record: from the shelf
            makers = list(map(self._shipping.maker, makers))
        return _pooled_files(_Files(makers, self.out_dir, self.published), self.processes)


def _pooled_files(job: _Files, processes: int) -> list[Prepared]:
    """Files made and staged over a Pool, :data:`FILE_RUN` at a time."""
    bounds = [(start, min(start + FILE_RUN, len(job.makers)))
              for start in range(0, len(job.makers), FILE_RUN)]
    with _forked_pool(min(processes, len(bounds)), _start_files, job) as pool:
        kept: list[bytes | str] = list(pool.imap(_file_range, bounds))
    shares: list[list[Prepared] | PublishError] = read_back(kept)
    errors = [share for share in shares if isinstance(share, PublishError)]
    staged = [p for share in shares if not isinstance(share, PublishError) for p in share]
    if errors:
        discard(staged)
        raise errors[0]
    return staged


@contextmanager
def _forked_pool(processes: int, start: Callable[[Any], None], job: object,
                 recycle: int | None = None) -> Iterator[Any]:
    """A fork ``Pool`` whose workers start with ``job``, forked from a frozen heap (no
    collection first: on a big heap it costs more than the fork, and the workers share
    the parent's articles); the workers leave on their sentinel when the block ends."""
    with heap.frozen():
        context = multiprocessing.get_context("fork")
        with context.Pool(processes, start, (job,), maxtasksperchild=recycle) as pool:
            yield pool
            # Let workers leave on their sentinel: the SIGTERM of the ``with``'s
            # terminate() is lost by a worker still starting up, whose join then
            # hangs the scheduler for good (CPython #78178; seen under load).
            pool.close()
            pool.join()


def _pooled(job: _Job, chunks: list[list[tuple[int, str]]], processes: int
            ) -> list[Result]:
    """A big job over a Pool of workers that render their own items, a run at a time.

    What the workers' parser read comes back with their results and is kept here, so
    that the workers forked later inherit it: as objects, or in a process that builds
    once (``job.packs``), as the bytes the workers packed (:meth:`Readings.teach_bytes`);
    the rest of the results stay pickled until the Pool is done (:func:`packed`).  This
    process writes nothing to the readings store while the Pool lives: the Pool forks
    from a thread of its own at any moment, and a fork made while this thread was inside
    SQLite would leave the child a lock nobody releases (its first SQLite call waits for
    good: tests/integration/test_gate_readings_workers.py).
    """
    results: list[Result] = []
    readings = job.cache.readings
    # What rendering and reading import (feedgen, lxml, feedparser with its C1 table of
    # 2.5 MiB), imported here once for all workers to share: each imported its own on its
    # first channel (benchmarks/README.md, "The staged files held as bytes, one Pool for
    # every file, the renderers imported once").
    preload()
    blobs: list[bytes] = []
    with _forked_pool(min(processes, len(chunks)), _start, job, RECYCLE) as pool:
        for learned, blob in pool.imap(_some, chunks):
            for as_bytes, as_objects in learned:  # a replacement worker forks with these
                readings.teach_bytes(as_bytes)
                readings.teach(as_objects)
            blobs.append(blob)
    for done in unpacked(blobs):  # the workers are gone (see packed)
        results += done
    return results


def _split(job: _Job, tasks: list[tuple[int, str]], processes: int) -> list[Result]:
    """A small job shared by the parent and ``processes - 1`` bare forks (:mod:`.forks`)."""
    def undo(results: list[Result]) -> None:
        discard(r.staged for r in results if isinstance(r, _Done) and r.staged is not None)

    return shared(len(tasks), lambda number: _run(job, tasks[number]), processes, undo)


@dataclass
class _Files:
    """What every file worker inherits: the makers and where to stage."""

    makers: list[Callable[[], Rendered]]
    out_dir: Path
    published: dict[str, Any]


_FILES: _Files | None = None  # set in each file worker by _start_files


def _start_files(job: _Files) -> None:
    global _FILES
    _FILES = job


def _stage_range(job: _Files, start: int, stop: int) -> list[Prepared] | PublishError:
    """Make and stage files ``start`` to ``stop``; a disk error undoes this share."""
    done: list[Prepared] = []
    try:
        for make in job.makers[start:stop]:
            made = make()
            done.append(prepare(job.out_dir, made, job.published.get(made.path)))
    except PublishError as exc:
        discard(done)
        return exc
    return done


def _file_range(bounds: tuple[int, int]) -> bytes | str:
    """A share staged, pickled (:func:`packed`) and set aside (:func:`set_aside`): its
    files or the error that undid it."""
    assert _FILES is not None, "file worker started without a job"
    return set_aside(packed(_stage_range(_FILES, *bounds)), _FILES.out_dir)


def _combine(site: Site, results: list[Result]) -> Output:
    """One output from every task, channel by channel in site order; on a disk error,
    undo every staged file."""
    out = Output()
    done = [r for r in results if isinstance(r, _Done)]
    errors = [r for r in results if isinstance(r, PublishError)]
    by_channel: dict[int, list[_Done]] = {}
    for item in done:
        by_channel.setdefault(item.index, []).append(item)
    staged = [d.staged for d in done if d.staged is not None]
    if errors:
        discard(staged)
        raise errors[0]
    order = list(FORMATS)
    for index in sorted(by_channel):
        parts = by_channel[index]
        problems = [p for d in parts for p in d.problems]
        if problems:
            discard([d.staged for d in parts if d.staged is not None])
            out.problems += sorted(problems, key=lambda p: order.index(_format_of(p, order)))
            out.failed.add(site.channels[index].slug)
        else:
            out.staged += [d.staged for d in parts if d.staged is not None]
    out.staged.sort(key=lambda p: p.path)
    return out


def _format_of(problem: Problem, order: list[str]) -> str:
    """Which format a validation problem names ('channel x (feed.atom)' -> 'atom')."""
    return next((name for name in order if f"({FORMATS[name].filename})" in problem.where),
                order[0])

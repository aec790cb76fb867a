"""Render, validate, compress and stage channels over worker processes (a shell).

The pure core renders one channel at a time (:func:`pipeline.render_channel`);
this module spreads the stale channels of a build over ``build_processes``
forked workers.  Each worker keeps its own item cache, validates every format
of its channels (the gate stays on), and stages the files that changed
(:func:`publish.prepare`: compressed, written to temporary files), so the bytes
never travel back to the parent; only manifest entries and problems do.  The
parent commits them all at once, so the result is the same as a sequential
build, byte for byte.

Workers are forked after the site is assembled and the garbage collector's
objects are frozen, so they share the parent's articles instead of copying
them.  The unit of work is one channel in one format, largest channels first,
so both cores stay busy even when only two channels changed.
"""

from __future__ import annotations

import gc
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PublishError
from .feeds import FORMATS, Format, ItemCache, render
from .models import Channel, Problem, Rendered
from .pipeline import Output, Site, channel_file
from .publish import Prepared, discard, prepare
from .validate import validate

PARALLEL_MIN = 4
# Rendered items each worker keeps (about 6 kB each): 10,000 articles' channels list
# ~4,500 items x 3 formats; keeping them all cost each worker ~40 MB.
ITEM_CACHE = 1500
# A worker is replaced (a new fork of the parent) after this many tasks: what
# feedparser and lxml leave fragmented in a worker's heap is given back.
RECYCLE = 120


@dataclass
class _Job:
    """What every worker inherits from the parent at fork time."""

    site: Site
    out_dir: Path
    published: dict[str, Any]
    cache: ItemCache


@dataclass
class _Done:
    """One channel in one format: staged if it passed, or the problems it had."""

    index: int
    staged: Prepared | None
    problems: list[Problem]


_JOB: _Job | None = None  # set in each forked worker by _start, never in the parent


def _start(job: _Job) -> None:
    global _JOB
    _JOB = job


def stage_format(job: _Job, index: int, fmt: Format) -> _Done:
    """Render one channel in one format, validate it, and stage it if it passed."""
    channel = job.site.channels[index]
    body = render(channel, fmt, job.site.context, job.cache)
    problems = validate(channel, fmt.name, body)
    if problems:
        return _Done(index, None, problems)
    item = Rendered(channel_file(channel, fmt.filename), body, fmt.media_type,
                    channel.updated, channel.slug)
    return _Done(index, prepare(job.out_dir, item, job.published.get(item.path)), [])


def _run(job: _Job, task: tuple[int, str]) -> _Done | PublishError:
    try:
        return stage_format(job, task[0], FORMATS[task[1]])
    except PublishError as exc:
        return exc


def _one(task: tuple[int, str]) -> _Done | PublishError:
    assert _JOB is not None, "worker started without a job"
    return _run(_JOB, task)


class Executor:
    """Callable the shell puts on :class:`Site`: stale channels -> staged output.

    The unit of work is one channel in one format, so even the two or three
    channels of an incremental build keep both cores busy; a channel whose
    formats do not all pass is then left out whole, as the sequential path does.
    """

    def __init__(self, out_dir: Path, published: dict[str, Any], processes: int) -> None:
        self.out_dir = out_dir
        self.published = published
        self.processes = processes

    def __call__(self, site: Site, channels: list[Channel]) -> Output:
        job = _Job(site, self.out_dir, self.published, ItemCache(ITEM_CACHE))
        position = {c.slug: i for i, c in enumerate(site.channels)}
        tasks = sorted(((position[c.slug], name) for c in channels for name in FORMATS),
                       key=lambda t: (-len(site.channels[t[0]].articles), t))
        if self.processes < 2 or len(tasks) < PARALLEL_MIN:
            return _combine(site, [_run(job, task) for task in tasks])
        gc.freeze()  # no collection first: on a big heap it costs more than the fork
        try:
            context = multiprocessing.get_context("fork")
            with context.Pool(min(self.processes, len(tasks)), _start, (job,),
                              maxtasksperchild=RECYCLE) as pool:
                results = list(pool.imap(_one, tasks))
                # Let workers leave on their sentinel: the SIGTERM of the ``with``'s
                # terminate() is lost by a worker still starting up, whose join then
                # hangs the scheduler for good (CPython #78178; seen under load).
                pool.close()
                pool.join()
            return _combine(site, results)
        finally:
            gc.unfreeze()


def _combine(site: Site, results: list[_Done | PublishError]) -> Output:
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

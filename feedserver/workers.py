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
them.  Channels go out largest first, one at a time, so both cores stay busy.
"""

from __future__ import annotations

import gc
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PublishError
from .feeds import ItemCache
from .models import Channel
from .pipeline import Output, Site, render_channel
from .publish import Prepared, discard, prepare

PARALLEL_MIN = 4


@dataclass
class _Job:
    """What every worker inherits from the parent at fork time."""

    site: Site
    out_dir: Path
    published: dict[str, Any]
    cache: ItemCache


_JOB: _Job | None = None  # set in each forked worker by _start, never in the parent


def _start(job: _Job) -> None:
    global _JOB
    _JOB = job


def stage_channel(job: _Job, channel: Channel) -> Output:
    """Render and validate one channel; stage its files if it passed."""
    out = render_channel(job.site, channel, cache=job.cache)
    staged: list[Prepared] = []
    try:
        for item in out.files:
            staged.append(prepare(job.out_dir, item, job.published.get(item.path)))
    except PublishError:
        discard(staged)
        raise
    return Output(problems=out.problems, failed=out.failed, staged=staged)


def _one(index: int) -> Output | PublishError:
    assert _JOB is not None, "worker started without a job"
    try:
        return stage_channel(_JOB, _JOB.site.channels[index])
    except PublishError as exc:
        return exc


class Executor:
    """Callable the shell puts on :class:`Site`: stale channels -> staged output."""

    def __init__(self, out_dir: Path, published: dict[str, Any], processes: int) -> None:
        self.out_dir = out_dir
        self.published = published
        self.processes = processes

    def __call__(self, site: Site, channels: list[Channel]) -> Output:
        job = _Job(site, self.out_dir, self.published, ItemCache())
        if self.processes < 2 or len(channels) < PARALLEL_MIN:
            results: list[Output | PublishError] = []
            for channel in channels:
                try:
                    results.append(stage_channel(job, channel))
                except PublishError as exc:
                    results.append(exc)
            return _combine(results)
        position = {c.slug: i for i, c in enumerate(site.channels)}
        order = sorted((position[c.slug] for c in channels),
                       key=lambda i: -len(site.channels[i].articles))
        gc.collect()
        gc.freeze()
        try:
            context = multiprocessing.get_context("fork")
            with context.Pool(min(self.processes, len(order)), _start, (job,)) as pool:
                results = list(pool.imap(_one, order))
        finally:
            gc.unfreeze()
        # Back in channel order, so problems are listed as a sequential build lists them.
        return _combine([r for _, r in sorted(zip(order, results, strict=True),
                                              key=lambda pair: pair[0])])


def _combine(results: list[Output | PublishError]) -> Output:
    """One output from every worker's share; on a disk error, undo every staged file."""
    out = Output()
    errors = [r for r in results if isinstance(r, PublishError)]
    for result in results:
        if isinstance(result, Output):
            out.merge(result)
    if errors:
        discard(out.staged)
        raise errors[0]
    out.staged.sort(key=lambda p: p.path)
    return out

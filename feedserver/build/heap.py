"""The build shell's hold on the garbage collector: one policy per process.

Two things want the heap frozen (``gc.freeze``: objects the collector no longer walks):

* **A fork's life.**  A bare fork or a ``Pool`` shares the parent's pages; a collection
  in either process writes to every object's header, and each page written is then
  copied.  :func:`frozen` (or :func:`hold` and :func:`release`, for a fork whose life
  is not one block) keeps the heap frozen while any such child lives.  They nest: the
  presence check's child lives across the render workers' forks, and the first
  release used to thaw the heap under it.
* **A process that builds again** (the scheduler, ``feedserver watch``).  What survives
  a build is what the next one reuses (articles, rendered items, readings: about
  700,000 objects at 50,000 articles), and Python collects in full whenever the objects
  that outlived two young collections reach a quarter of the old ones: every other
  build there, 0.45-0.65 s each time, walking objects that are still in use.
  :func:`settle`, after each build, freezes what survived it: later collections walk
  only what later builds make.  What a build leaves frozen and later drops in a cycle
  (refcounting frees the rest as ever) waits for the full collection :func:`settle`
  makes when the frozen objects have grown by :data:`GROWTH` since the last one, so
  what is kept for nothing stays bounded.  (The templates imported their macros ``with
  context``, which left every page render in such a cycle: 7,100 objects per changed
  build at 50,000 articles, until they took ``lang`` as an argument instead.)

A process that builds once (``feedserver build``, the build before ``serve``) never
settles: its forks thaw the heap as they end, as before.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# The frozen objects may grow by this share of what the last full collection left
# before the next one (Python's own rule for its old generation, applied here).
GROWTH = 0.25

_holds = 0  # children alive that want the heap frozen
_settled: int | None = None  # frozen objects after the last full collection, once settling


def hold() -> None:
    """Freeze the heap for a child about to fork; :func:`release` when it is reaped."""
    global _holds
    gc.freeze()
    _holds += 1


def release() -> None:
    """One child gone: the heap thaws when none is left, unless the process settles."""
    global _holds
    _holds = max(0, _holds - 1)
    if _holds == 0 and _settled is None:
        gc.unfreeze()


@contextmanager
def frozen() -> Iterator[None]:
    """The heap frozen for the block (the children forked in it live no longer)."""
    hold()
    try:
        yield
    finally:
        release()


def settle() -> bool:
    """After a build in a process that builds again: freeze what survived it, collecting
    in full first on the first call and whenever the frozen objects have grown by
    :data:`GROWTH`; returns whether it collected.  With a child alive, only freezes."""
    global _settled
    gc.freeze()
    if _holds:
        return False
    count = gc.get_freeze_count()
    if _settled is not None and count <= _settled * (1 + GROWTH):
        return False
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _settled = gc.get_freeze_count()
    return True

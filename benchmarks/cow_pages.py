"""Which of the parent's pages a cold build's Pool workers copy, by the objects on them.

A forked worker shares its parent's memory until either writes to a page, and CPython
writes the reference count of every object it merely reads: a worker that renders the
articles copies the pages they lie on.  This runs ``feedserver build`` (its arguments
follow) with two hooks, in this process only:

* just before the feed Pool (or, with ``--pages``, the Pool of pages and records) forks,
  every object the collector tracks and every untracked object they refer to is placed
  on the page it starts on, tagged by type (``owner->type`` for a referred one; an
  article's fields as ``A.<field>``).  A container's storage is not placed, and a page
  counts for the kind of object most numerous on it;
* after each run of tasks, each worker reads ``/proc/self/pagemap`` for those pages:
  one it maps exclusively (bit 56) is its own copy now.

Each worker writes ``DIR/<pid>.txt`` (default ``benchmarks/.work/cow``) after each run:
the MiB of copied pages by kind, against the MiB of such pages the parent had, and its
``smaps_rollup``.  No privilege is needed: a process reads the flags of its own pagemap
(not the frame numbers).  The placing takes a second or two in the parent, before the
fork.

    python -m benchmarks.cow_pages [--pages] [--out DIR] build --config CONFIG
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import gc
import os
import runpy
import struct
import sys
from pathlib import Path
from typing import Any

import feedserver.build.parallel as parallel
from feedserver.core.records import Article

PAGE = 4096
_pages: dict[int, collections.Counter[str]] = {}
_out = Path("benchmarks/.work/cow")


def _size(obj: Any) -> int:
    kind = type(obj)
    if kind in (str, bytes, int, float, tuple):
        return sys.getsizeof(obj)
    return max(getattr(kind, "__basicsize__", 16), 16)


def _place(obj: Any, done: set[int], tag: str | None = None) -> None:
    where = id(obj)
    if where in done:
        return
    done.add(where)
    name = tag or type(obj).__name__
    for page in range(where // PAGE, (where + _size(obj) - 1) // PAGE + 1):
        _pages.setdefault(page, collections.Counter())[name] += 1


def _map_parent() -> None:
    """Every object of this process placed on its pages (see the module)."""
    done: set[int] = set()
    objects = gc.get_objects()
    mine = {id(done), id(objects), id(_pages)}
    for obj in objects:
        if type(obj) is Article:
            _place(obj, done, "Article")
            for field in dataclasses.fields(Article):
                value = getattr(obj, field.name)
                _place(value, done, f"A.{field.name}")
                if isinstance(value, tuple):
                    for item in value:
                        _place(item, done, f"A.{field.name}[]")
    for obj in objects:
        if id(obj) in mine or type(obj) is collections.Counter:
            continue
        _place(obj, done)
        for referred in gc.get_referents(obj):
            if not gc.is_tracked(referred):
                _place(referred, done, f"{type(obj).__name__}->{type(referred).__name__}")


def _report() -> None:
    """This worker's copies of the mapped pages, by kind, to ``_out/<pid>.txt``."""
    copied: collections.Counter[str] = collections.Counter()
    held: collections.Counter[str] = collections.Counter()
    with open("/proc/self/pagemap", "rb") as pagemap:
        for page, kinds in sorted(_pages.items()):
            kind = kinds.most_common(1)[0][0]
            held[kind] += 1
            pagemap.seek(page * 8)
            flags = struct.unpack("<Q", pagemap.read(8))[0]
            if flags >> 63 & 1 and flags >> 56 & 1:  # present, mapped by this process only
                copied[kind] += 1
    mib = PAGE / 2**20
    lines = [f"copied {sum(copied.values()) * mib:.1f} MiB of the parent's "
             f"{len(_pages) * mib:.1f} MiB of mapped pages"]
    lines += [f"{n * mib:8.1f} MiB of {held[kind] * mib:8.1f}  {kind}"
              for kind, n in copied.most_common(40)]
    lines.append(Path("/proc/self/smaps_rollup").read_text())
    (_out / f"{os.getpid()}.txt").write_text("\n".join(lines), encoding="utf-8")


_ORIGINAL: dict[str, Any] = {}  # the hooked functions of feedserver.build.parallel


def _pooled_feeds(*args: Any) -> Any:
    _map_parent()
    return _ORIGINAL["_pooled"](*args)


def _some_tasks(*args: Any) -> Any:  # module level: the Pool pickles it by name
    done = _ORIGINAL["_some"](*args)
    _report()
    return done


def _pooled_files(*args: Any) -> Any:
    _map_parent()
    return _ORIGINAL["_pooled_files"](*args)


def _file_range(*args: Any) -> Any:
    done = _ORIGINAL["_file_range"](*args)
    _report()
    return done


def main() -> None:
    global _out
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", action="store_true",
                        help="the Pool of pages and records instead of the feeds'")
    parser.add_argument("--out", type=Path, default=_out)
    known, rest = parser.parse_known_args()
    _out = known.out
    _out.mkdir(parents=True, exist_ok=True)
    hooks = {"_pooled_files": _pooled_files, "_file_range": _file_range} if known.pages \
        else {"_pooled": _pooled_feeds, "_some": _some_tasks}
    for name, hook in hooks.items():
        _ORIGINAL[name] = getattr(parallel, name)
        setattr(parallel, name, hook)
    sys.argv = ["feedserver", *rest]
    runpy.run_module("feedserver", run_name="__main__")


if __name__ == "__main__":
    main()

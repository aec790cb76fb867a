"""A scheduler's cold build, run in a process of its own.

A long-lived scheduler (``feedserver watch``, the scheduler of ``serve``) builds cold
when nothing is published yet: a first start on an empty output folder, or the folder
removed while it runs.  Built in the scheduler's own process, that build left its heap
scattered over the memory of every article it parsed and rendered, and every later
one-file build of that process was slower, until it restarted (every stage, at 50,000
articles: benchmarks/README.md, "The scheduler's heap").  Emptying the build memory
afterwards did not help; building elsewhere does.

So the cold build runs in a forked child (the scheduler's heap is still small then), which
publishes and hands its :class:`~feedserver.build.run.BuildReport` back through a pipe,
with what its hold rule held (files still being written: the scheduler looks again);
the scheduler then builds again at once, from what was published (when it published an
article), as ``serve``'s scheduler does after the build ``serve`` makes before it starts.
The child is what a build's own workers are: forked from the scheduler's thread, ended
with the scheduler (:func:`feedserver.schedule.lifeline.bind_children`), inheriting the
build lock the scheduler holds for it.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from collections.abc import Mapping
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast

from feedserver.build.run import BuildReport, run_build
from feedserver.config import Settings
from feedserver.core.errors import FeedserverError
from feedserver.publish.output import MANIFEST, STATUS
from feedserver.schedule.watcher import HoldRule

log = logging.getLogger(__name__)


def is_cold(settings: Settings, holding: bool) -> bool:
    """Whether a build now would be cold: no manifest is published in the output folder,
    or, for a process ``holding`` nothing of the site yet, what is published lists no
    article (a first build that held every file back, all still being written, as a
    seeds folder copied just before the start is; an empty seeds folder, whose builds are
    cheap wherever they run)."""
    out = Path(settings.output_dir)
    if not (out / MANIFEST).is_file():
        return True
    if holding:
        return False
    try:
        status = json.loads((out / STATUS).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(status, dict) and status.get("articles") == 0


def build_apart(settings: Settings, now: datetime, rule: HoldRule,
                moves: Mapping[str, str] | None) -> BuildReport:
    """One cold build (publishing) in a forked child; its report, or its failure raised here
    as a :class:`FeedserverError` naming the reason (a child that dies says its exit code).
    ``rule`` is the child's hold rule, and learns what the child's copy of it held."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_build_and_send, args=(send, settings, now, rule, moves),
                            name="feedserver-cold-build")  # not daemonic: it forks a Pool
    child.start()
    send.close()
    try:
        outcome: tuple[object, ...] | None = receive.recv()
    except EOFError:  # it ended without a word: killed, or out of memory
        outcome = None
    finally:
        receive.close()
        child.join()
    if outcome is None:
        raise FeedserverError(f"the cold build's process ended with exit code {child.exitcode}")
    if outcome[0] != "report":
        raise FeedserverError(str(outcome[1]))
    report, rule.held, rule.retry_at = cast(
        "tuple[BuildReport, list[str], datetime | None]", outcome[1:])
    return report


def _build_and_send(send: Connection, settings: Settings, now: datetime, rule: HoldRule,
                    moves: Mapping[str, str] | None) -> None:
    """The child's work: build and publish, then send the report and what was held, or the
    failure's text (an exception's own class may not survive pickling; the scheduler
    needs its words)."""
    try:  # no memory: nothing is kept for a later build (its content is packed:
        # feedserver.build.run._with_content)
        report = run_build(settings, now, None, None, hold=rule, moves=moves, one_shot=True)
    except FeedserverError as exc:
        send.send(("error", str(exc)))
    except Exception as exc:  # a bug: its traceback here, its words to the scheduler
        log.exception("the cold build failed")
        send.send(("error", f"the cold build raised {type(exc).__name__}: {exc}"))
    else:
        send.send(("report", report, rule.held, rule.retry_at))
    finally:
        send.close()

"""The kill -9 loop (``python -m tests.killloop ROOT KILLS SEED BUDGET``), run by test_faults.

It runs in a process of its own that makes itself a child subreaper: the
build processes it forks and kills, and the render workers those builds fork
(orphaned by the kill), are all its children, so it can wait for every one of
them and stop nothing else.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import signal
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feedserver.build.run import run_build
from feedserver.config import Settings
from feedserver.publish.output import JOURNAL, PUBLISHING, recover

from .faultkit import NOW, FeedCheck, consistency, digest, make_site, mutate, tree

_PR_SET_CHILD_SUBREAPER = 36


@dataclass
class LoopResult:
    kills: int = 0
    completed: int = 0
    aimed: int = 0  # kills aimed at the renames (see _fork_build)
    seconds: float = 0.0
    build_seconds: float = 0.0
    phases: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    mutations: Counter[str] = field(default_factory=Counter)
    orphans: int = 0
    orphan_max_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


def _children() -> list[int]:
    me = os.getpid()
    found: list[int] = []
    for task in os.listdir(f"/proc/{me}/task"):
        with open(f"/proc/{me}/task/{task}/children") as handle:
            found += [int(pid) for pid in handle.read().split()]
    return found


def _reap_orphans(result: LoopResult, timeout: float = 10.0) -> None:
    """Wait for the killed build's worker processes (now ours) to end; they do on EOF."""
    started = time.monotonic()
    seen: set[int] = set()
    while children := _children():
        seen |= set(children)
        for pid in children:
            os.waitpid(pid, os.WNOHANG)
        if time.monotonic() - started > timeout:
            result.failures.append(f"orphaned workers still running: {children}")
            for pid in children:  # ours: forked by the build we forked
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            break
        time.sleep(0.005)
    result.orphans += len(seen)
    if seen:
        result.orphan_max_seconds = max(result.orphan_max_seconds, time.monotonic() - started)


def _fork_build(settings: Settings, log_path: Path, rename: int | None = None) -> int:
    """A process running one build; with ``rename`` it SIGKILLs itself at that rename.

    The publish's renames take a millisecond or two of a build's tenth of a
    second, so one kill in four is aimed there: the n-th ``os.replace`` of the
    build (the journal's own is the first), n drawn at random among the renames
    the last build made.
    """
    pid = os.fork()
    if pid == 0:  # the build process; it dies by SIGKILL or leaves at once
        code = 1
        try:  # orphaned workers' broken-pipe tracebacks go to the log, not the test output
            log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log, 2)
            if rename is not None:
                _die_at_rename(rename)
            run_build(settings, now=NOW)
            code = 0
        finally:
            os._exit(code)
    return pid


def _die_at_rename(wanted: int) -> None:
    real, calls = os.replace, [0]

    def replace(*args: Any, **kwargs: Any) -> None:
        calls[0] += 1
        if calls[0] == wanted:
            os.kill(os.getpid(), signal.SIGKILL)
        real(*args, **kwargs)

    os.replace = replace  # type: ignore[assignment]  # in this forked build only


def _ended_within(pid: int, seconds: float) -> bool:
    """Whether the child ``pid`` ended (it is then left to be reaped) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _exited(pid):
            return True
        time.sleep(0.005)
    return _exited(pid)


def _exited(pid: int) -> bool:
    """Peek at ``pid`` without reaping it (waitid with WNOWAIT), so its status stays."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is not None


class _Renames:
    """Counts the ``os.replace`` calls of a build run in this process."""

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> _Renames:
        real = self.real = os.replace

        def counting(*args: Any, **kwargs: Any) -> None:
            self.count += 1
            real(*args, **kwargs)

        os.replace = counting  # type: ignore[assignment]
        return self

    def __exit__(self, *_: object) -> None:
        os.replace = self.real  # type: ignore[assignment]


def _phase(out: Path) -> str:
    """Where the kill landed, as the output folder tells it."""
    if (out / JOURNAL).exists():
        return "renaming (journal written)"
    if (out / PUBLISHING).exists():
        return "rendering/staging (marker, no journal)"
    return "outside the publish (scan, parse, ledger, status)"


class KillLoop:
    """Build a changing corpus in forked processes and SIGKILL each at a random moment.

    After every kill: the folder as the kill left it holds whole files (every
    feed parses); :func:`recover` (what the next start does first) leaves it
    consistent and equal to the previous or the new version; the next build
    publishes the new version, consistent again.
    """

    def __init__(self, root: Path, seed: int) -> None:
        self.root = root
        self.settings = make_site(root)
        self.out = Path(self.settings.output_dir)
        self.rng = random.Random(seed)
        self.check = FeedCheck()
        self.result = LoopResult()
        self.read: dict[str, tuple[tuple[int, int, int], bytes]] = {}  # tree()'s readings
        self.renames = 1
        self.timings = [self.build()]
        self.current = digest(self.tree())

    def build(self) -> float:
        """The next start, in this process: recover, build, publish; timed, renames counted."""
        started = time.perf_counter()
        with _Renames() as renames:
            run_build(self.settings, now=NOW)
        self.renames = max(renames.count, 1)
        return time.perf_counter() - started

    def tree(self) -> dict[str, bytes]:
        return tree(self.out, self.read)

    def fail(self, step: int, where: str, errors: list[str]) -> None:
        self.result.failures += [f"step {step}, {where}: {e}" for e in errors]

    def step(self, step: int) -> None:
        """One change, one build killed (or finished first), recovery, the next build."""
        self.result.mutations[mutate(self.root / "seeds", step)] += 1
        window = statistics.median(self.timings[-9:]) * 1.15
        if step % 4 == 0:  # aimed at the renames (this build makes about as many as the last)
            pid = _fork_build(self.settings, self.root / "builds.log",
                              self.rng.randint(1, self.renames + 1))
            self.result.aimed += 1
            _ended_within(pid, window * 3)  # it dies at its rename, or finishes first
        else:
            pid = _fork_build(self.settings, self.root / "builds.log")
            time.sleep(self.rng.uniform(0, window))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        _reap_orphans(self.result)
        killed = os.WIFSIGNALED(status)
        phase, left, recovered = self.after_kill(step) if killed else ("", "", "")
        if not killed:
            self.result.completed += 1
            if os.WEXITSTATUS(status) != 0:
                self.fail(step, "build", ["failed on its own"])
            recovered = digest(self.tree())
        self.timings.append(self.build())  # the next start: recover, build, publish
        built = self.tree()
        new = digest(built)
        self.fail(step, "next build", consistency(self.out, built) + self.check(built))
        if recovered not in (self.current, new):
            self.fail(step, "recovered", ["neither the previous nor the new version"])
        if phase.startswith("rendering") and left != self.current:
            self.fail(step, "as killed", ["changed before the journal was written"])
        if phase.startswith("outside") and left not in (self.current, new):
            self.fail(step, "as killed", ["neither version outside a publish"])
        if killed:
            self.result.outcomes["same" if self.current == new else
                                 "previous" if recovered == self.current else "new"] += 1
        self.current = new

    def after_kill(self, step: int) -> tuple[str, str, str]:
        """Check the folder as the kill left it, then recover it as the next start does.

        Returns where the kill landed, and the digests as killed and as recovered.
        """
        self.result.kills += 1
        phase = _phase(self.out)
        self.result.phases[phase] += 1
        left = self.tree()
        self.fail(step, "as killed", self.check(left))
        recover(self.out)
        recovered = self.tree()
        self.fail(step, "after recovery",
                  consistency(self.out, recovered) + self.check(recovered))
        return phase, digest(left), digest(recovered)


def kill_loop(root: Path, kills: int, seed: int, budget: float) -> LoopResult:
    """Kill builds of a changing corpus at random moments until ``kills`` or ``budget``."""
    loop = KillLoop(root, seed)
    started = time.monotonic()
    step = 0
    while loop.result.kills < kills and time.monotonic() - started < budget:
        step += 1
        loop.step(step)
    loop.result.seconds = time.monotonic() - started
    loop.result.build_seconds = statistics.median(loop.timings)
    loop.result.failures = loop.result.failures[:50]
    return loop.result


def main() -> None:
    """``python -m tests.killloop ROOT KILLS SEED BUDGET``: prints the LoopResult as JSON."""
    root, kills, seed, budget = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), \
        float(sys.argv[4])
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    result = kill_loop(root, kills, seed, budget)
    print(json.dumps({name: dict(value) if isinstance(value, Counter) else value
                      for name, value in vars(result).items()}))


if __name__ == "__main__":
    main()

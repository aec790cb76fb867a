"""Run a command and measure it: wall time and the peak memory of all its processes.

Memory is sampled every few milliseconds over the whole process tree (the
command and every worker it forks): the sum of RSS (shared pages counted in every
process: an upper bound, and the unit of issue 18's memory figures).  With
``pss=True`` the sum of PSS is kept too (proportional set size: a page shared by N
processes counts 1/N in each, so the sum is what the tree really occupies), but only
in a run whose time is not a figure: the kernel walks a process's page tables to say
its PSS, 34-42 ms of CPU for a 1.3 GB process (``memory_full_info`` or
``/proc/PID/smaps_rollup``, measured 2026-12-03), so sampling it every 25 ms kept
nearly a core of a 2-core machine busy beside a 50,000-article build, and a cold
10,000-article build took 67.7 s under it against 55.2 s without (3 pairs,
alternating).  A sampler can miss a peak shorter than its interval; on builds that
last seconds that error is small.  CPU time (user +
system of the whole tree, from the kernel's accounting of reaped children) is reported
too: on a shared machine it is disturbed far less than wall time.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

INTERVAL = 0.05  # one sample (the tree from /proc, each process's RSS): ~2 ms of CPU
MiB = 1024 * 1024


@dataclass(frozen=True)
class Run:
    """One measured run."""

    seconds: float
    pss_mib: float | None  # None: not sampled (a timed run)
    rss_mib: float
    output: str
    cpu: float = 0.0


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _sample(root: psutil.Process, pss: bool) -> tuple[float, float]:
    """The tree's summed PSS (0 unless ``pss``) and RSS, in MiB."""
    pss_sum = rss = 0.0
    for proc in _tree(root):
        try:
            info = proc.memory_full_info() if pss else proc.memory_info()
        except psutil.Error:
            continue
        if pss:
            pss_sum += getattr(info, "pss", info.rss)
        rss += info.rss
    return pss_sum / MiB, rss / MiB


def run(command: list[str], env: dict[str, str] | None = None,
        cwd: Path | None = None, pss: bool = False) -> Run:
    """Run ``command`` (in ``cwd``) to completion; raise with its output if it fails.

    ``pss``: sample the tree's PSS too, which costs the machine enough CPU to slow what
    is measured (see the module): for a run that measures memory, not time."""
    peak = [0.0, 0.0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            cwd=cwd)
    root = psutil.Process(proc.pid)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            found_pss, rss = _sample(root, pss)
            peak[0], peak[1] = max(peak[0], found_pss), max(peak[1], rss)
            done.wait(INTERVAL)

    sampler = threading.Thread(target=watch, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    done.set()
    sampler.join()
    text = output.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}):\n{text[-3000:]}")
    return Run(seconds, peak[0] if pss else None, peak[1], text, cpu)


@dataclass(frozen=True)
class Figure:
    """Median, min and max of repeated measurements."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Figure:
        return cls(statistics.median(values), min(values), max(values))

    def show(self, digits: int = 2, unit: str = "") -> str:
        if self.low == self.high:
            return f"{self.median:.{digits}f}{unit}"
        return (f"{self.median:.{digits}f}{unit} "
                f"[{self.low:.{digits}f}-{self.high:.{digits}f}]")

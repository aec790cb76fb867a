"""Tools for the fault tests: a changing corpus, output checks, and the kill -9 loop.

The kill loop runs in a process of its own (``python -m tests.faultkit``) that
makes itself a child subreaper: the build processes it forks and kills, and
the render workers those builds fork (orphaned by the kill), are all its
children, so it can wait for every one of them and stop nothing else.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import feedparser

from feedserver.config import Settings, load_settings
from feedserver.job import run_build
from feedserver.publish import (
    ENCODINGS,
    JOURNAL,
    MANIFEST,
    META_DIR,
    PUBLISHING,
    etag_of,
    recover,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TOPICS = ("Grain", "Rail", "Water", "Schools", "Banks", "Mining", "Ports", "Roads", "Health",
          "Courts", "Space", "Trade", "Music", "Chess")
_PR_SET_CHILD_SUBREAPER = 36
_MEDIA = {".rss": "application/rss+xml", ".atom": "application/atom+xml"}


# -- a corpus that changes a little at every step -----------------------------------------

def article(index: int, version: int, topics: list[str]) -> str:
    """A small Markdown article; ``version`` changes its text (an edit)."""
    return ("---\n" f'title: "Report {index} (v{version})"\n'
            f"date: 2026-10-{1 + index % 28:02d}T08:{index % 60:02d}:00Z\n"
            f"topics: [{', '.join(topics)}]\n---\n"
            f"Paragraph {index}.{version}: the grain train reached the port.\n\n"
            f"Second paragraph, version {version}, with *emphasis* and a [link](/about/).\n")


def write_article(seeds: Path, name: str, text: str, stamp: float) -> None:
    path = seeds / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.utime(path, (stamp, stamp))


def seed_corpus(seeds: Path, count: int) -> None:
    """``count`` articles over the topics, in two folders, dated by index."""
    for index in range(count):
        topics = [TOPICS[index % len(TOPICS)], TOPICS[(index * 5 + 3) % len(TOPICS)]]
        write_article(seeds, f"{'desk/' if index % 3 else ''}a{index:03d}.md",
                      article(index, 0, topics), NOW.timestamp() - 86_400 + index)


def mutate(seeds: Path, step: int) -> str:
    """One deterministic change of the corpus: edit, add, rename, delete or retopic."""
    rng = random.Random(step)
    files = sorted(p for p in seeds.rglob("*.md"))
    stamp = NOW.timestamp() - 3_600 + step
    kind = ("edit", "add", "rename", "delete", "retopic")[step % 5]
    victim = files[rng.randrange(len(files))]
    index = int(victim.stem.lstrip("a").split("-")[0])
    if kind == "edit" or (kind == "delete" and len(files) < 20):
        write_article(seeds, str(victim.relative_to(seeds)),
                      article(index, step, [TOPICS[index % len(TOPICS)]]), stamp)
    elif kind == "add":
        write_article(seeds, f"new/a{1000 + step:04d}.md",
                      article(1000 + step, 0, [rng.choice(TOPICS)]), stamp)
    elif kind == "rename":
        target = seeds / "moved" / f"a{index:03d}-{step}.md"
        target.parent.mkdir(exist_ok=True)
        victim.rename(target)
    elif kind == "delete":
        victim.unlink()
    else:  # a topic of its own: a channel appears now and goes away at a later retopic
        lone = f"Lone {step % 3}"
        for other in files:
            if lone in other.read_text(encoding="utf-8"):
                write_article(seeds, str(other.relative_to(seeds)),
                              article(index, step, [TOPICS[0]]), stamp)
        write_article(seeds, str(victim.relative_to(seeds)), article(index, step, [lone]), stamp)
    return kind


def make_site(root: Path, count: int = 40) -> Settings:
    """A site under ``root``: config (auto topics off), seeds, output and state."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.toml").write_text(
        'site_title = "Fault site"\nbase_url = "https://feeds.example.org/"\n'
        "auto_topics = false\nmax_items = 30\n", encoding="utf-8")
    seed_corpus(root / "seeds", count)
    return load_settings(root / "config.toml", env={})


# -- what a consistent output folder is ------------------------------------------------------

def tree(out: Path) -> dict[str, bytes]:
    """Every published file's bytes (metadata folder and temp files aside)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and META_DIR not in p.parts and not p.name.endswith(".tmp")}


def digest(files: dict[str, bytes]) -> str:
    whole = hashlib.sha256()
    for path, body in sorted(files.items()):
        whole.update(f"{path}\0{len(body)}\0".encode())
        whole.update(body)
    return whole.hexdigest()[:16]


class FeedCheck:
    """feedparser over every feed file, remembering bodies already found good."""

    def __init__(self) -> None:
        self.good: set[str] = set()

    def __call__(self, files: dict[str, bytes]) -> list[str]:
        errors = []
        for path, body in files.items():
            kind = Path(path).suffix
            key = hashlib.sha256(body).hexdigest()
            feed = kind in _MEDIA or path.endswith("feed.json")
            if not feed or key in self.good:
                continue
            if kind == ".json":
                try:
                    ok = isinstance(json.loads(body)["items"], list)
                except (ValueError, KeyError, TypeError):
                    ok = False
                error = "" if ok else "not a JSON Feed"
            else:
                parsed = feedparser.parse(io.BytesIO(body),
                                          response_headers={"content-type": _MEDIA[kind]})
                error = str(parsed.get("bozo_exception", "")) if parsed.bozo else ""
            if error:
                errors.append(f"{path}: {error}")
            else:
                self.good.add(key)
        return errors


def consistency(out: Path, files: dict[str, bytes]) -> list[str]:
    """Every manifest entry's bytes (and encodings) carry its ETag; nothing else is there.

    ``files`` is :func:`tree` of ``out``, read once by the caller.
    """
    errors = []
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    expected = set()
    for path, entry in manifest["files"].items():
        variants = {"": entry["etag"]} | {ENCODINGS[name]: info["etag"]
                                          for name, info in entry.get("encodings", {}).items()}
        for suffix, etag in variants.items():
            expected.add(path + suffix)
            body = files.get(path + suffix)
            if body is None:
                errors.append(f"{path + suffix}: listed, missing")
            elif etag_of(body) != etag:
                errors.append(f"{path + suffix}: bytes do not match the manifest's ETag")
    errors += [f"{path}: on disk, not in the manifest" for path in sorted(set(files) - expected)]
    errors += [f"{p}: temp file left" for p in out.rglob("*.tmp")]
    return errors


# -- the kill loop -----------------------------------------------------------------------------

@dataclass
class LoopResult:
    kills: int = 0
    completed: int = 0
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


def _fork_build(settings: Settings, log_path: Path) -> int:
    pid = os.fork()
    if pid == 0:  # the build process; it dies by SIGKILL or leaves at once
        code = 1
        try:  # orphaned workers' broken-pipe tracebacks go to the log, not the test output
            log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log, 2)
            run_build(settings, now=NOW)
            code = 0
        finally:
            os._exit(code)
    return pid


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
        self.timings = [self.build()]
        self.current = digest(tree(self.out))

    def build(self) -> float:
        started = time.perf_counter()
        run_build(self.settings, now=NOW)
        return time.perf_counter() - started

    def fail(self, step: int, where: str, errors: list[str]) -> None:
        self.result.failures += [f"step {step}, {where}: {e}" for e in errors]

    def step(self, step: int) -> None:
        """One change, one build killed (or finished first), recovery, the next build."""
        self.result.mutations[mutate(self.root / "seeds", step)] += 1
        pid = _fork_build(self.settings, self.root / "builds.log")
        time.sleep(self.rng.uniform(0, statistics.median(self.timings[-9:]) * 1.15))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        _reap_orphans(self.result)
        killed = os.WIFSIGNALED(status)
        phase, left, recovered = self.after_kill(step) if killed else ("", "", "")
        if not killed:
            self.result.completed += 1
            if os.WEXITSTATUS(status) != 0:
                self.fail(step, "build", ["failed on its own"])
            recovered = digest(tree(self.out))
        self.timings.append(self.build())  # the next start: recover, build, publish
        built = tree(self.out)
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
        left = tree(self.out)
        self.fail(step, "as killed", self.check(left))
        recover(self.out)
        recovered = tree(self.out)
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
    """``python -m tests.faultkit ROOT KILLS SEED BUDGET``: prints the LoopResult as JSON."""
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


# -- a disk that fills up ----------------------------------------------------------------------

@contextlib.contextmanager
def tiny_disk(folder: Path, size: str) -> Iterator[bool]:
    """A tmpfs of ``size`` mounted at ``folder``; yields False where mounting is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                  str(folder)], capture_output=True).returncode == 0
    except OSError:  # no mount command
        mounted = False
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave: int) -> Path:
    """A filler file that leaves about ``leave`` bytes free on ``folder``'s file system."""
    stats = os.statvfs(folder)
    filler = folder / "filler"
    with filler.open("wb") as handle:
        handle.truncate(0)
        remaining = stats.f_bavail * stats.f_frsize - leave
        while remaining > 0:
            chunk = min(remaining, 1 << 20)
            handle.write(b"\0" * chunk)
            remaining -= chunk
    return filler

"""The churn side of the load test: a seeds folder that keeps changing, as scrapers change it.

One thread adds, edits, renames and deletes articles of its own; slow writers
(one thread each) write a file half, pause with it open, then finish it.  Every
churn article is recognisable and checkable from what the server sends:

- its title is ``Churn <key> v<version>`` and its body ends with the line
  ``END-OF-ARTICLE <key> v<version>``, which only a complete file has: an item
  whose title names a version its content does not end with was published
  half-written;
- ``<key>`` stays with the article through edits and renames, so the ids the
  feeds give one key must never change (a rename keeps the bytes; an edit keeps
  the path, as the ledger promises).

Churn articles carry the topic ``Churn``, so ``/topics/churn/feed.json`` lists
them all (fewer than ``max_items``).
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

TITLE = re.compile(r"^Churn (k\d+) v(\d+)$")
_WORDS = ("morning", "ledger", "quiet", "harbour", "lantern", "meadow", "copper", "ribbon",
          "window", "pebble", "orchard", "signal", "paper", "violet", "engine", "summer")


def marker(key: str, version: int) -> str:
    return f"END-OF-ARTICLE {key} v{version}"


def article(key: str, version: int, rng: random.Random) -> tuple[bytes, bytes]:
    """The two halves of one version of an article (front matter and some text first)."""
    paragraphs = [" ".join(rng.choices(_WORDS, k=60)).capitalize() + "." for _ in range(12)]
    head = (f"---\ntitle: Churn {key} v{version}\ntopics: [Churn]\n---\n\n"
            + "\n\n".join(paragraphs[:6]) + "\n\n")
    tail = "\n\n".join(paragraphs[6:]) + f"\n\n{marker(key, version)}\n"
    return head.encode(), tail.encode()


@dataclass
class Live:
    path: Path
    version: int


@dataclass
class Churn:
    """Changes ``seeds`` until stopped; what is live is in ``live`` (key -> path, version)."""

    seeds: Path
    seed: int = 1
    pause: float = 0.25  # between two operations
    slow_pause: tuple[float, float] = (0.5, 4.0)  # a slow writer's pause with the file open
    quiet: float = 0.0  # an article is left alone this long after each change
    live: dict[str, Live] = field(default_factory=dict)
    busy: set[str] = field(default_factory=set)
    done: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    writers: list[threading.Thread] = field(default_factory=list)
    journal: list[str] = field(default_factory=list)  # what was done, when (for a log)
    touched: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.folder = self.seeds / "churn"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.next_key = 0

    def populate(self, count: int) -> None:
        """Articles present before the server starts."""
        for _ in range(count):
            key = self._key()
            self._write_now(key, Live(self.folder / f"{key}.md", 1))

    def run(self) -> None:
        """The churn thread's body: one operation every ``pause`` seconds."""
        operations = (self.add, self.edit, self.rename, self.delete, self.slow_add,
                      self.slow_edit)
        weights = (3, 3, 2, 1, 2, 2)
        while not self.stop.wait(self.pause):
            with self.lock:
                now = time.monotonic()
                idle = [k for k in self.live if k not in self.busy
                        and now - self.touched.get(k, 0.0) >= self.quiet]
                if len(self.live) > 30:  # keep the channel under max_items
                    self.delete(idle)
                    continue
            operation = self.rng.choices(operations, weights)[0]
            with self.lock:
                operation(idle)
        for writer in self.writers:
            writer.join(timeout=30)

    def note(self, operation: str, key: str, live: Live) -> None:
        self.touched[key] = time.monotonic()
        stamp = time.strftime("%H:%M:%S") + f".{int(time.time() * 1000) % 1000:03d}"
        self.journal.append(f"{stamp} {operation} {key} v{live.version} {live.path.name}")

    def _key(self) -> str:
        self.next_key += 1
        return f"k{self.next_key:04d}"

    def _write_now(self, key: str, live: Live) -> None:
        head, tail = article(key, live.version, self.rng)
        tmp = live.path.with_name(f".{live.path.name}.part")  # ignored by the scan
        tmp.write_bytes(head + tail)
        os.replace(tmp, live.path)
        self.live[key] = live

    def add(self, idle: list[str]) -> None:
        key = self._key()
        self._write_now(key, Live(self.folder / f"{key}-{self.rng.randrange(10**6)}.md", 1))
        self.done["add"] += 1
        self.note("add", key, self.live[key])

    def edit(self, idle: list[str]) -> None:
        if idle:
            key = self.rng.choice(idle)
            self._write_now(key, Live(self.live[key].path, self.live[key].version + 1))
            self.done["edit"] += 1
            self.note("edit", key, self.live[key])

    def rename(self, idle: list[str]) -> None:
        if idle:
            key = self.rng.choice(idle)
            target = self.folder / f"{key}-{self.rng.randrange(10**6)}.md"
            os.rename(self.live[key].path, target)
            self.live[key] = Live(target, self.live[key].version)
            self.done["rename"] += 1
            self.note("rename", key, self.live[key])

    def delete(self, idle: list[str]) -> None:
        if len(idle) > 3:
            key = self.rng.choice(idle)
            live = self.live.pop(key)
            live.path.unlink()
            self.done["delete"] += 1
            self.note("delete", key, live)

    def slow_add(self, idle: list[str]) -> None:
        key = self._key()
        self._slow(key, Live(self.folder / f"{key}-{self.rng.randrange(10**6)}.md", 1))
        self.done["slow add"] += 1

    def slow_edit(self, idle: list[str]) -> None:
        if idle:
            key = self.rng.choice(idle)
            self._slow(key, Live(self.live[key].path, self.live[key].version + 1))
            self.done["slow edit"] += 1

    def _slow(self, key: str, live: Live) -> None:
        """Write in place: the first half, a pause with the file open, the rest."""
        self.busy.add(key)
        head, tail = article(key, live.version, self.rng)
        pause = self.rng.uniform(*self.slow_pause)
        self.note(f"slow write ({pause:.1f} s) begins", key, live)
        thread = threading.Thread(target=self._write_slowly, args=(key, live, head, tail, pause))
        self.writers.append(thread)
        thread.start()

    def _write_slowly(self, key: str, live: Live, head: bytes, tail: bytes,
                      pause: float) -> None:
        with live.path.open("wb") as handle:
            handle.write(head)
            handle.flush()
            time.sleep(pause)
            handle.write(tail)
        with self.lock:
            self.live[key] = live
            self.busy.discard(key)
            self.note("slow write ends", key, live)

    def expected(self) -> dict[str, int]:
        """Key -> the version that must be published once things settle."""
        with self.lock:
            return {key: live.version for key, live in self.live.items()}

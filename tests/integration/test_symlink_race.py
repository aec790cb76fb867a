"""A folder of seeds/ swapped with a link to an outside folder never publishes outside text.

Checking a path for links and then opening it is a race: between the two, a
subfolder can be renamed away and replaced by a symbolic link to any folder
(it took 250 swaps to publish an outside ``.txt``).  The scan and the reads
walk from the seeds folder with directory descriptors opened ``O_NOFOLLOW``,
so a component that is a link when it is opened fails instead of being
followed.  A thread swaps the folder and the link for a bounded number of
rounds while the scan, the watched-build path (``entry_at``) and real builds
run; no outside byte may come back.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from feedserver.build import scan
from feedserver.build.run import BuildMemory, run_build
from feedserver.config import Settings
from tests.conftest import NOW, write

SECRET = b"OUTSIDE-SECRET"
SWAPS = 4_000  # rounds of the swapping thread: bounded, whatever the machine's speed


@contextmanager
def _swapping(seeds: Path, outside: Path, rounds: int = SWAPS,
              hold: float = 0.0) -> Iterator[threading.Event]:
    """Swap ``seeds/sub`` (a real folder) with a link to ``outside`` until told to stop or
    ``rounds`` rounds are done, each state kept ``hold`` seconds (a build is slow next to
    one swap: the link must last to be met twice); the folder is put back at the end."""
    stop = threading.Event()
    sub, away = seeds / "sub", seeds / ".away"

    def swap() -> None:
        for _ in range(rounds):
            if stop.is_set():
                break
            os.rename(sub, away)
            os.symlink(outside, sub)
            time.sleep(hold)
            os.unlink(sub)
            os.rename(away, sub)
            time.sleep(hold)
        stop.set()

    thread = threading.Thread(target=swap, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=60)


def _setup(tmp_path: Path, seeds: Path) -> Path:
    outside = tmp_path / "outside"
    for name in ("inside.txt", "secret.txt"):  # the same name as inside, and another
        write(outside / name, b"Outside title\n\n" + SECRET + b"\n")
    write(seeds / "sub/inside.txt", "Inside title\n\nInside text.\n")
    return outside


def test_scan_and_read_never_return_outside_bytes_while_a_folder_is_swapped(
        tmp_path: Path, settings: Settings) -> None:
    seeds = Path(settings.seeds_dir)
    outside = _setup(tmp_path, seeds)
    reads = 0
    with _swapping(seeds, outside) as stop:
        while not stop.is_set():
            entries, _ = scan.list_files(seeds)
            found, _ = scan.entry_at(seeds, "sub/secret.txt")
            maybe, _ = scan.entry_at(seeds, "sub/inside.txt")
            for entry in [*entries, *(e for e in (found, maybe) if e is not None)]:
                try:
                    data = scan.read(entry, 1 << 20).data
                except OSError:
                    continue  # a link met on the way: refused, which is the point
                reads += 1
                assert SECRET not in data, entry.path
    assert reads > 0


def test_builds_never_publish_outside_text_while_a_folder_is_swapped(
        tmp_path: Path, settings: Settings) -> None:
    seeds, out = Path(settings.seeds_dir), Path(settings.output_dir)
    outside = _setup(tmp_path, seeds)
    warm, builds = BuildMemory.empty(), 0
    with _swapping(seeds, outside, rounds=SWAPS, hold=0.002) as stop:
        while not stop.is_set() and builds < 60:  # full scans, and watched builds told the
            builds += 1  # paths (the ledger forgets what the last build saw, so both are new)
            changed = ["sub/secret.txt", "sub/inside.txt"] if builds % 2 else None
            run_build(settings, now=NOW + timedelta(minutes=builds), memory=warm, changes=changed)
            for published in out.rglob("*"):  # feeds, pages, compressed copies
                if published.is_file() and published.suffix not in {".gz", ".br"}:
                    assert SECRET not in published.read_bytes(), published
    assert builds > 0

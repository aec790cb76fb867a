"""The scan's rules, and one path at a time (watched builds) agreeing with a full scan."""

from __future__ import annotations

import os
from pathlib import Path

from feedserver.build import scan
from tests.hostile_corpus import write_corpus


def _all_names(seeds: Path) -> set[str]:
    """Every name under ``seeds`` (links not followed), files and folders alike."""
    found: set[str] = set()
    for folder, dirs, files in os.walk(seeds):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(folder, name), seeds).replace(os.sep, "/"))
    return found


def test_full_scan_lists_articles_and_passes_over_the_rest(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    write_corpus(seeds)
    entries, problems = scan.list_files(seeds)
    paths = [e.path for e in entries]
    assert len(paths) == len(set(paths))
    assert "fs/inside-link.txt" not in paths  # a link inside the folder: its target is read
    assert not any(p.split("/")[-1].startswith(".") for p in paths)
    for entry in entries:
        info = os.lstat(seeds / entry.path)
        assert (entry.size, entry.mtime_ns) == (info.st_size, info.st_mtime_ns)
        assert entry.abspath == os.path.join(os.path.realpath(seeds), *entry.path.split("/"))
    reported = {p.where for p in problems}
    assert "fs/passwd.txt" in reported  # a link out of the folder is named, not followed


def test_one_path_gives_what_the_full_scan_gives(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    write_corpus(seeds)
    (seeds / ".hidden").mkdir()
    (seeds / ".hidden" / "secret.txt").write_text("Hidden\n\nNot an article.\n")
    (seeds / "linked").symlink_to(seeds / "enc")
    entries, problems = scan.list_files(seeds)
    listed = {e.path: e for e in entries}
    for rel in sorted(_all_names(seeds) | {"linked/utf8.txt", "missing.txt", "a/../b.txt"}):
        entry, found = scan.entry_at(seeds, rel)
        assert entry == listed.get(rel), rel
        assert {p.where for p in found} <= {p.where for p in problems}, rel

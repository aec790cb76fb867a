"""The architecture issue moved every module without changing one published byte.

A full build of the seeded corpus (``tests/golden_build.py``) is compared file by
file with the digests the code before the move produced, with the pages rendered in
the build's process (a small site) and over its worker processes (a big one).
A ``.gz`` made by another kind of CPU than the digests' (:func:`gzip_probe`) is judged
by what it inflates to: its plain sibling, itself compared byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feedserver.build import parallel
from tests.golden_build import (
    GOLDEN,
    digests,
    gzip_probe,
    inflates_to_its_sibling,
    library_versions,
)


@pytest.mark.parametrize("pages", ["here", "pooled"])
def test_a_full_build_publishes_the_same_bytes_as_before_the_move(
        tmp_path: Path, pages: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if pages == "pooled":  # the pages of a big site: rendered and staged by a Pool
        monkeypatch.setattr(parallel, "FILES_POOLED", 1)
        monkeypatch.setattr(parallel, "FILE_RUN", 37)
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    found = digests(tmp_path, golden["size"])
    changed = sorted(set(found) ^ set(golden["files"])
                     | {path for path, digest in found.items()
                        if golden["files"].get(path) != digest})
    if golden["gzip_probe"] != gzip_probe():  # another CPU's gzip code: another stream
        changed = [path for path in changed if not (
            path.endswith(".gz") and path in golden["files"]
            and inflates_to_its_sibling(tmp_path / "out", path))]
    if changed:  # the same bytes pass whatever made them; a difference is blamed only
        # on the code when the libraries are those the digests were recorded with (a fresh
        # install takes each library's newest release: lxml 6.2.0 drew the same bytes)
        newer = {name: version for name, version in library_versions().items()
                 if golden["libraries"].get(name) != version}
        assert not newer, (
            f"{len(changed)} files differ, and the libraries that shape the bytes differ "
            f"from those the digests were recorded with ({newer}): compare with a build of "
            "the old code, then `python -m tests.golden_build`")
    assert changed == []

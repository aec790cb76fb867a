"""deploy/rsync-replicas: the post_publish hook that copies each publish to replicas.

Real rsync between two local folders (the builder's output and a replica's
copy).  A stand-in ``rsync`` first on PATH runs the real one, then snapshots
the replica's folder: every state a replica could serve between two passes is
checked, not only the end.  In each, every file is whole (the bytes of the old
or the new publish) and the manifest there names only files that are there
(while the old manifest is there, deletes have not come); once the new
manifest is there, every file it names has the new bytes (bodies before the
manifest).  A body newer than the old manifest is what a publish in place
shows too: the app serves it with its own ETag and no Last-Modified.  At the
end the copy is the output, byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from feedserver.build.run import run_build
from feedserver.config import Settings
from feedserver.core.layout import ENCODINGS, MANIFEST, STATUS
from feedserver.publish.manifest import PARTS_DIR
from tests.faultkit import article, make_site, write_article

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "rsync-replicas"
REAL_RSYNC = shutil.which("rsync")
pytestmark = pytest.mark.skipif(REAL_RSYNC is None, reason="rsync is not installed")

SNAPSHOTTING = """#!/bin/sh
"$REAL_RSYNC" "$@" || exit $?
for last; do :; done
n=$(ls "$SNAPSHOTS" | wc -l)
cp -a "$last" "$SNAPSHOTS/$(printf %03d "$n")"
"""


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def listed(tree: dict[str, bytes]) -> set[str]:
    """Every file the manifest in ``tree`` names (with its .gz/.br bodies)."""
    manifest = json.loads(tree[MANIFEST])
    parts = [f"{PARTS_DIR}/{name}" for name in manifest["parts"]["files"] if name]
    names = set(parts) | {f"{PARTS_DIR}/{name}" for name in manifest["parts"]["channels"]
                          if name}
    files: dict[str, dict[str, dict[str, object]]] = {}
    for part in parts:  # a part the tree lacks is a KeyError: the check fails, as it should
        files.update(json.loads(tree[part]))
    for path, entry in files.items():
        names.add(path)
        names |= {path + ENCODINGS[name] for name in entry.get("encodings", {})}
    return names


def sync(settings: Settings, replica: Path, snapshots: Path, bin_dir: Path,
         written: int, removed: int) -> list[dict[str, bytes]]:
    """Run the hook as post_publish would; the replica's states, one per rsync pass."""
    shutil.rmtree(snapshots, ignore_errors=True)
    snapshots.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "REAL_RSYNC": str(REAL_RSYNC), "SNAPSHOTS": str(snapshots),
           "FEEDSERVER_OUTPUT_DIR": str(Path(settings.output_dir).resolve()),
           "FEEDSERVER_WRITTEN": str(written), "FEEDSERVER_REMOVED": str(removed)}
    done = subprocess.run([str(SCRIPT), f"{replica}/"], env=env, capture_output=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return [files(state) for state in sorted(snapshots.iterdir())]


def check_states(states: list[dict[str, bytes]], old: dict[str, bytes],
                 new: dict[str, bytes]) -> None:
    for number, state in enumerate(states):
        where = f"after rsync pass {number + 1}"
        if MANIFEST not in state:
            assert not old, where  # only the very first copy starts without one
            continue
        assert state[MANIFEST] in (old.get(MANIFEST), new[MANIFEST]), where
        names = listed(state)
        assert not names - set(state), f"{where}: the manifest names missing files"
        if state[MANIFEST] == new[MANIFEST]:  # the new publish is live: all of it is there
            assert all(state[name] == new[name] for name in names), \
                f"{where}: the new manifest came before the bodies it names"
        assert all(body in (old.get(path), new.get(path)) for path, body in state.items()), \
            f"{where}: a file of neither publish"


def test_each_publish_reaches_the_replica_whole_and_in_order(tmp_path: Path) -> None:
    settings = make_site(tmp_path / "builder", count=6)
    seeds, out = Path(settings.seeds_dir), Path(settings.output_dir)
    replica, snapshots, bin_dir = tmp_path / "replica", tmp_path / "states", tmp_path / "bin"
    replica.mkdir()
    bin_dir.mkdir()
    (bin_dir / "rsync").write_text(SNAPSHOTTING)
    (bin_dir / "rsync").chmod(0o755)
    stamp = 1_700_000_000.0

    def publish() -> tuple[int, int]:
        report = run_build(settings, one_shot=True)
        assert report.published and not report.errors
        return len(report.written), len(report.removed)

    rounds = [
        ("first copy", lambda: None),
        ("an article with a topic of its own", lambda: write_article(
            seeds, "lone.md", article(50, 0, ["Lone"]), stamp + 1)),
        ("an edit", lambda: write_article(seeds, "a000.md", article(0, 1, ["Rail"]), stamp + 2)),
        ("the topic's last article deleted", lambda: (seeds / "lone.md").unlink()),
        ("nothing changed", lambda: None),
    ]
    for what, change in rounds:
        old = files(replica)
        change()
        written, removed = publish()
        new = files(out)
        states = sync(settings, replica, snapshots, bin_dir, written, removed)
        if what == "the topic's last article deleted":
            assert removed and any(p.startswith("topics/lone/") for p in old)
        if what == "nothing changed":
            assert (written, removed) == (0, 0)
        assert len(states) == 3, what
        check_states(states, old, new)
        assert files(replica) == new, f"{what}: the replica is not the output"
    assert not any(p.startswith("topics/lone/") for p in files(replica))
    assert STATUS in files(replica)

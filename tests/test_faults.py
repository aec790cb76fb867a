"""Faults: kill -9 in a loop, a full disk, a locked ledger, a config that turns bad.

Everything here is real: builds are SIGKILLed processes, the disk is a tmpfs
that fills up (or a file-size limit where mounting is not allowed), the lock
is another process's ``BEGIN EXCLUSIVE``, the server is ``feedserver serve``
with gunicorn on 127.0.0.1.  Every process a test starts is stopped by its PID.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from feedserver import publish
from feedserver.config import Settings
from feedserver.job import run_build
from feedserver.publish import JOURNAL, MANIFEST, recover

from .conftest import NOW, ROOT
from .faultkit import consistency, tree

KILLS = 100
KILL_BUDGET = 150.0  # seconds; the loop stops there even if it has fewer kills


def test_kill_9_at_random_moments_of_a_publish(tmp_path: Path) -> None:
    """At least 100 builds of a changing corpus killed at random moments.

    After each kill: every file is whole as the kill left it (every feed
    parses); after the next start's recovery the folder is consistent (each
    manifest entry's bytes hash to its ETag, nothing unlisted, no temp file)
    and is the previous or the new version; the next build publishes the new
    one without any manual step.  See :class:`tests.faultkit.KillLoop`.
    """
    done = subprocess.run([sys.executable, "-m", "tests.faultkit", str(tmp_path / "site"),
                           str(KILLS), "7", str(KILL_BUDGET)], cwd=ROOT, capture_output=True,
                          text=True, timeout=KILL_BUDGET + 120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["failures"] == []
    assert result["kills"] >= KILLS, result
    phases = result["phases"]
    assert phases.get("renaming (journal written)", 0) > 0, phases  # roll-forward exercised
    assert phases.get("rendering/staging (marker, no journal)", 0) > 0, phases
    assert result["outcomes"].get("new", 0) > 0 and result["outcomes"].get("previous", 0) > 0


def test_a_publish_killed_after_its_manifest_still_removes_what_went_away(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kill loop found it: removals were not in the journal, so a kill between the
    last rename and the unlinks left removed pages on disk for good (nginx served them)."""
    run_build(settings, now=NOW)
    out = Path(settings.output_dir)
    victim = next(Path(settings.seeds_dir).glob("*.md"))
    victim.unlink()

    def killed(*_: object) -> None:
        raise KeyboardInterrupt("kill -9 after the renames")

    monkeypatch.setattr(publish, "_remove", killed)
    with pytest.raises(KeyboardInterrupt):
        run_build(settings, now=NOW)
    monkeypatch.undo()
    assert (out / JOURNAL).exists()
    gone = json.loads((out / MANIFEST).read_text(encoding="utf-8"))["gone"]
    assert gone and all((out / path).exists() for path in gone)  # the new manifest is live
    recover(out)
    files = tree(out)
    assert consistency(out, files) == [] and not any((out / p).exists() for p in gone)

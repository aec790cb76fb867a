"""A cold ``feedserver build`` of the bundled seeds keeps the readings it made.

The build splits its few channels between its own process and a fork; both opened the
new readings store as writers at once and one lost ("database is locked"): the build
said the store was unusable and, when the build's own process lost, kept nothing for
the next one.  That happened in most cold builds of the seeds a new user runs first.
Each run here is what the user runs, in a process of its own (an in-process build from a
large test process does not fork: ``feedserver.build.forkcost``).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from feedserver.publish.readings_store import FILENAME

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
RUNS = 4  # before the fix, 5 cold builds of 6 said it


def test_cold_builds_of_the_seeds_keep_their_readings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
    for n in range(RUNS):
        site = tmp_path / str(n)
        shutil.copytree(SEEDS, site / "seeds")
        (site / "config.toml").write_text(
            'seeds_dir = "seeds"\noutput_dir = "public"\nstate_dir = "state"\n'
            "build_processes = 2\n", encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "feedserver", "build", "--config",
                               str(site / "config.toml")], cwd=site, env=env,
                              capture_output=True, text=True, timeout=120, check=True)
        said = done.stdout + done.stderr
        assert "unusable" not in said and "locked" not in said, said
        with sqlite3.connect(site / "state" / FILENAME) as kept:
            assert kept.execute("SELECT count(*) FROM readings").fetchone()[0] > 0, said

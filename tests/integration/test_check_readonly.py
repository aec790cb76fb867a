"""``feedserver check`` is read-only: it never creates or changes the state folder (the
ledger and its -wal/-shm files included) or the output folder, down to the modification
times, and still finds the problems a build would (issue 13)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from feedserver.build.run import run_build
from feedserver.cli import main
from feedserver.config import Settings
from tests.conftest import NOW, write

Tree = dict[str, tuple[str, int, int]]


def tree(folder: Path) -> Tree:
    """Every entry under ``folder`` (itself included): its bytes' hash, mode and mtime in ns."""
    if not folder.exists():
        return {}
    found: Tree = {}
    for path in [folder, *sorted(folder.rglob("*"))]:
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        found[str(path.relative_to(folder))] = (digest, info.st_mode, info.st_mtime_ns)
    return found


def check(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(main, ["check", "--config", settings.config_path, *args])


def both(settings: Settings) -> tuple[Tree, Tree]:
    return tree(Path(settings.state_dir)), tree(Path(settings.output_dir))


def test_check_on_a_fresh_folder_creates_nothing(site_dir: Path, settings: Settings) -> None:
    before = sorted(site_dir.rglob("*"))
    result = check(settings)
    assert result.exit_code == 0, result.output
    assert "5 articles, 10 channels, 0 errors" in result.output
    assert not Path(settings.state_dir).exists() and not Path(settings.output_dir).exists()
    assert sorted(site_dir.rglob("*")) == before


def test_check_changes_no_byte_and_no_mtime(site_dir: Path, settings: Settings) -> None:
    assert run_build(settings, now=NOW).published
    write(site_dir / "seeds" / "new.md", "---\ntitle: Brand new\n---\nText.\n")  # an id to mint
    (site_dir / "seeds" / "2026-10-14-rail-freight.md").rename(site_dir / "seeds" / "moved.md")
    before = both(settings)
    time.sleep(0.05)  # a rewrite of the same bytes would show in the mtimes
    result = check(settings)
    assert result.exit_code == 0, result.output
    assert "6 articles" in result.output
    assert both(settings) == before


def _live_writer(ledger: Path) -> None:
    """Leave the ledger as a process that committed and never checkpointed does (a
    running scheduler, or one killed): a -wal file with the last commits, and a -shm."""
    code = ("import os, sqlite3, sys\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('PRAGMA journal_mode=WAL'); db.execute('PRAGMA wal_autocheckpoint=0')\n"
            "db.execute('CREATE TABLE scratch(x)'); db.execute('INSERT INTO scratch VALUES (1)')\n"
            "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", code, str(ledger)], check=True, timeout=30)


def test_check_leaves_a_live_writers_wal_and_shm_alone(site_dir: Path,
                                                      settings: Settings) -> None:
    assert run_build(settings, now=NOW).published
    ledger = settings.ledger_file
    _live_writer(ledger)
    assert Path(f"{ledger}-wal").is_file() and Path(f"{ledger}-shm").is_file()
    before = both(settings)
    time.sleep(0.05)
    result = check(settings)
    assert result.exit_code == 0, result.output
    assert both(settings) == before
    # what the writer committed is in the -wal only, and still readable after check
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        assert db.execute("SELECT x FROM scratch").fetchall() == [(1,)]
    finally:
        db.close()


@pytest.mark.parametrize("published", [False, True])
def test_check_reports_what_a_build_would(site_dir: Path, settings: Settings,
                                          published: bool) -> None:
    if published:
        assert run_build(settings, now=NOW).published
    write(site_dir / "seeds" / "bad.md", "---\ntitle: x\n")  # an error
    write(site_dir / "seeds" / "wide.md", "---\ntitle: T\ntags: " + ", ".join(  # a warning
        f"t{i}" for i in range(60)) + "\n---\nx\n")
    before = both(settings)
    result = check(settings)
    assert both(settings) == before
    assert result.exit_code == 1
    report = run_build(settings, now=NOW)
    assert report.errors and len(report.problems) > len(report.errors)
    for problem in report.problems:
        assert f"{problem.severity}: {problem}" in result.output
    assert (f"{len(report.errors)} errors, {len(report.problems) - len(report.errors)} "
            "warnings") in result.output


def test_check_on_a_read_only_state_folder(site_dir: Path, settings: Settings) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    assert run_build(settings, now=NOW).published
    state = Path(settings.state_dir)
    state.chmod(0o555)
    try:
        result = check(settings)
    finally:
        state.chmod(0o755)
    assert result.exit_code == 0, result.output

"""Crash safety: kill -9 during a publish, a full disk, a ledger locked by another process.

The crashes are real: a child process runs a build and SIGKILLs itself at a
chosen step (while staging files, between two renames, before the manifest's
rename).  The full disk is real too: the output folder sits on a tiny tmpfs
(or, where mounting is not allowed, the child runs under RLIMIT_FSIZE, which
makes the kernel refuse the large writes).  The lock is held by another
process with ``BEGIN EXCLUSIVE``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedserver.build.run import run_build
from feedserver.config import Settings, load_settings
from feedserver.core.errors import PublishError
from feedserver.identify.ledger import Ledger, LedgerBusy
from feedserver.publish.manifest import load_manifest
from feedserver.publish.output import etag_of, recover
from tests.conftest import NOW, ROOT, write
from tests.faultkit import tiny_disk

CHILD = textwrap.dedent("""
    import os, signal, sys, tempfile
    from datetime import datetime
    from feedserver.config import load_settings
    from feedserver.build.run import run_build
    what, at = sys.argv[2], int(sys.argv[3])
    module = {"replace": os, "stage": tempfile}[what]
    name = {"replace": "replace", "stage": "mkstemp"}[what]
    real, calls = getattr(module, name), [0]
    def dying(*args, **kwargs):
        calls[0] += 1
        if calls[0] == at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    setattr(module, name, dying)
    run_build(load_settings(sys.argv[1], env={}), now=datetime.fromisoformat(sys.argv[4]))
""")


def outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and ".feedserver" not in p.parts and p.suffix != ".tmp"}


def consistent(out: Path) -> None:
    """Every manifest entry names a whole file whose bytes carry that ETag; no temp left."""
    files = load_manifest(out)["files"]
    for path, entry in files.items():
        assert etag_of((out / path).read_bytes()) == entry["etag"], path
    assert not list(out.rglob("*.tmp"))


def crash(settings: Settings, what: str, at: int) -> int:
    config = Path(settings.seeds_dir).parent / "config.toml"
    done = subprocess.run([sys.executable, "-c", CHILD, str(config), what, str(at),
                           NOW.isoformat()], timeout=120, cwd=ROOT)
    return done.returncode


def test_kill_while_staging_leaves_the_old_output(settings: Settings) -> None:
    run_build(settings, now=NOW)
    out = Path(settings.output_dir)
    before = outputs(out)
    write(Path(settings.seeds_dir) / "late.md", "---\ntitle: Late news\n---\nText.\n")
    assert crash(settings, "stage", 3) == -9
    assert outputs(out) == before  # temp files aside, nothing changed
    run_build(settings, now=NOW)
    consistent(out)
    assert b"Late news" in (out / "feed.rss").read_bytes()


@pytest.mark.parametrize("at", [1, 5, -1])
def test_kill_between_renames_is_rolled_forward(settings: Settings, at: int,
                                                tmp_path: Path) -> None:
    run_build(settings, now=NOW)
    out = Path(settings.output_dir)
    before = outputs(out)
    write(Path(settings.seeds_dir) / "late.md", "---\ntitle: Late news\n---\nText.\n")
    reference = load_settings(Path(settings.seeds_dir).parent / "config.toml", env={
        "FEEDSERVER_OUTPUT_DIR": str(tmp_path / "ref"),
        "FEEDSERVER_STATE_DIR": str(tmp_path / "refstate")})
    run_build(reference, now=NOW)
    renames = _count_renames(settings)
    assert crash(settings, "replace", renames if at == -1 else at) == -9
    recover(out)  # what the next start does first
    consistent(out)
    after = outputs(out)
    # Killed before the journal was complete (the first rename is the journal's
    # own): the old output; after it: the new one, whole.
    assert after == (before if at == 1 else outputs(tmp_path / "ref"))
    run_build(settings, now=NOW)
    consistent(out)
    assert outputs(out) == outputs(tmp_path / "ref")


def _count_renames(settings: Settings) -> int:
    """How many renames the pending publish makes (a dry run on a copy)."""
    import shutil

    root = Path(settings.seeds_dir).parent
    copy = root.parent / f"{root.name}-count"
    shutil.copytree(root, copy)
    counted = load_settings(copy / "config.toml", env={})
    calls = [0]
    real = os.replace

    def counting(*args: object) -> None:
        calls[0] += 1
        real(*args)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "replace", counting)
        run_build(counted, now=NOW)
    return calls[0] - 1  # the status file's rename comes after the publish


LIMITED = textwrap.dedent("""
    import resource, signal, sys
    from datetime import datetime
    from feedserver.config import load_settings
    from feedserver.core.errors import PublishError
    from feedserver.build.run import run_build
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        run_build(load_settings(sys.argv[1], env={}), now=datetime.fromisoformat(sys.argv[3]))
    except PublishError as exc:
        print("PublishError:", exc)
        sys.exit(3)
""")


def test_full_disk_keeps_the_previous_output_and_resumes(site_dir: Path) -> None:
    big = "---\ntitle: A very long report\n---\n" + "Words upon words. " * 60_000
    with tiny_disk(site_dir / "disk", "3m") as mounted:
        settings = load_settings(site_dir / "config.toml", env={
            "FEEDSERVER_OUTPUT_DIR": str(site_dir / "disk" / "out")})
        out = Path(settings.output_dir)
        run_build(settings, now=NOW)
        before = outputs(out)
        write(Path(settings.seeds_dir) / "big.md", big)
        if mounted:
            with pytest.raises(PublishError, match="previous output is unchanged"):
                run_build(settings, now=NOW)
        else:
            state = max(p.stat().st_size for p in Path(settings.state_dir).iterdir())
            done = subprocess.run([sys.executable, "-c", LIMITED, str(site_dir / "config.toml"),
                                   str(state + 600_000), NOW.isoformat()], cwd=ROOT,
                                  capture_output=True, text=True, timeout=120,
                                  env={**os.environ, "FEEDSERVER_OUTPUT_DIR": str(out)})
            assert done.returncode == 3, done.stdout + done.stderr
        assert outputs(out) == before
        consistent(out)
        (Path(settings.seeds_dir) / "big.md").write_text(big[:3000], encoding="utf-8")
        report = run_build(settings, now=NOW)
        assert report.published and "feed.rss" in report.written
        consistent(out)


LOCKER = textwrap.dedent("""
    import sqlite3, sys, time
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    db.execute("COMMIT")
""")


@contextlib.contextmanager
def locked(path: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen([sys.executable, "-c", LOCKER, str(path), str(seconds)],
                          stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            yield holder
        finally:
            holder.wait(timeout=seconds + 30)


def test_build_waits_out_a_ledger_locked_longer_than_sqlites_timeout(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    run_build(settings, now=NOW)
    write(Path(settings.seeds_dir) / "late.md", "---\ntitle: Late news\n---\nText.\n")
    caplog.set_level(logging.WARNING, logger="feedserver.identify.ledger")
    with locked(settings.ledger_file, 3.0):
        started = time.monotonic()
        report = run_build(settings, now=NOW)
    assert time.monotonic() - started > 2.0
    assert report.published and "is locked" in caplog.text
    assert b"Late news" in (Path(settings.output_dir) / "feed.rss").read_bytes()


def test_ledger_says_busy_when_its_patience_runs_out(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    with locked(path, 2.0), Ledger(path, timeout=0.1, patience=0.5) as ledger, \
            pytest.raises(LedgerBusy, match="locked by another process"):
        ledger.set_meta("k", "v")
    with Ledger(path) as ledger:
        ledger.set_meta("k", "v")
        assert ledger.get_meta("k") == "v"


def test_a_status_file_torn_by_a_crash_is_cleaned_up(settings: Settings) -> None:
    run_build(settings, now=NOW)
    leftover = Path(settings.output_dir) / ".feedserver" / ".status.json.k1ll3d.tmp"
    leftover.write_bytes(b'{"last_su')
    run_build(settings, now=NOW)
    assert not leftover.exists()
    consistent(Path(settings.output_dir))


def test_recovery_after_a_finished_publish_does_not_walk_the_output(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """No marker, no journal: only the status file can have been torn, so only
    ``.feedserver/`` itself is looked at (walking its item records and deltas cost
    every build of 50,000 articles a tenth of a second); a marker still means a walk."""
    run_build(settings, now=NOW)
    out = Path(settings.output_dir)
    torn = out / ".feedserver" / ".status.json.k1ll3d.tmp"
    torn.write_bytes(b'{"last_su')

    def walk(self: Path, pattern: str) -> Iterator[Path]:
        raise AssertionError(f"walked {self} for {pattern}")

    with monkeypatch.context() as patch:
        patch.setattr(Path, "rglob", walk)
        assert recover(out) == 1
    assert not torn.exists()
    staged = next(out.rglob("feed.rss")).with_name(".feed.rss.k1ll3d.tmp")
    staged.write_bytes(b"<rss")
    (out / ".feedserver" / "publishing").write_bytes(b"")
    assert recover(out) == 1
    assert not staged.exists()
    consistent(out)

"""Never wipe a live site, never print a traceback, and `check` never writes.

Each test publishes the bundled seeds first, then breaks something a person
can break (the seeds folder, the ledger, the state disk) and checks that the
published output is the same bytes, the command says what is wrong in one
line and exits non-zero, and /healthz is "degraded" with a ``last_error``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedserver.build.run import BuildReport, run_build
from feedserver.config import Settings
from feedserver.core.errors import MassRemovalRefused, SeedsUnavailable, StateUnavailable
from feedserver.publish.output import STATUS
from feedserver.schedule.scheduler import Refresher
from tests.conftest import NOW, write
from tests.faultkit import cli, fill, health, tiny_disk, tree


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` with a checksum of its bytes (metadata too)."""
    if not folder.exists():
        return {}
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        found[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return found


def published(site_dir: Path) -> dict[str, bytes]:
    result = cli(site_dir, "build")
    assert result.returncode == 0, result.stderr
    return tree(site_dir / "public")


def refused(site_dir: Path, settings: Settings, before: dict[str, bytes], *words: str,
            args: tuple[str, ...] = ()) -> str:
    """The CLI build refuses: non-zero, one line, no traceback, output as it was."""
    result = cli(site_dir, "build", *args)
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines()  # the error, beside the base_url note
             if line.strip() and not line.startswith("note: base_url is not set")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert tree(site_dir / "public") == before
    state = health(settings)
    assert state["status"] == "degraded", state
    return lines[0]


# -- the seeds folder ---------------------------------------------------------------------------

def test_missing_seeds_folder_keeps_the_site(site_dir: Path, settings: Settings) -> None:
    before = published(site_dir)
    shutil.move(site_dir / "seeds", site_dir / "elsewhere")
    refused(site_dir, settings, before, str(site_dir / "seeds"), "missing")
    with pytest.raises(SeedsUnavailable):
        run_build(settings, now=NOW)
    assert tree(site_dir / "public") == before
    # The scheduler's job skips the run and says why: /healthz degraded, output kept.
    assert Refresher(settings, clock=lambda: NOW).run("test").report is None
    assert tree(site_dir / "public") == before
    assert health(settings)["status"] == "degraded"
    assert "missing" in status_file(settings)["last_error"]["message"]  # type: ignore[index]


def test_seeds_that_are_not_a_folder_keep_the_site(site_dir: Path, settings: Settings) -> None:
    before = published(site_dir)
    shutil.rmtree(site_dir / "seeds")
    (site_dir / "seeds").write_text("not a folder\n", encoding="utf-8")
    refused(site_dir, settings, before, str(site_dir / "seeds"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_unreadable_seeds_folder_keeps_the_site(site_dir: Path, settings: Settings) -> None:
    before = published(site_dir)
    (site_dir / "seeds").chmod(0)
    try:
        refused(site_dir, settings, before, str(site_dir / "seeds"))
    finally:
        (site_dir / "seeds").chmod(0o755)


def test_suddenly_empty_seeds_folder_keeps_the_site(site_dir: Path, settings: Settings) -> None:
    before = published(site_dir)
    shutil.rmtree(site_dir / "seeds")
    (site_dir / "seeds").mkdir()
    line = refused(site_dir, settings, before, str(site_dir / "seeds"), "empty")
    assert "--allow-mass-removal" in line
    # The scheduler's job calls the same build: one logged line, /healthz degraded.
    outcome = Refresher(settings, clock=lambda: NOW).run("test")
    assert outcome.report is None
    assert tree(site_dir / "public") == before
    assert health(settings)["status"] == "degraded"  # details stay private (status.json)
    assert "empty" in status_file(settings)["last_error"]["message"]  # type: ignore[index]


def test_a_new_site_with_an_empty_folder_may_publish_nothing(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    result = cli(tmp_path, "build")
    assert result.returncode == 0, result.stderr


def test_mass_removal_needs_to_be_allowed(site_dir: Path, settings: Settings) -> None:
    before = published(site_dir)
    seeds = sorted(p for p in (site_dir / "seeds").rglob("*") if p.is_file())
    assert len(seeds) == 6  # five articles and a draft
    for path in seeds[:4]:
        path.unlink()
    refused(site_dir, settings, before, "4 of 6", "--allow-mass-removal")
    with pytest.raises(MassRemovalRefused):
        run_build(settings, now=NOW)
    report = run_build(replace(settings, allow_mass_removal=True), now=NOW)
    assert report.published and report.articles == 1 and report.removed
    assert any("mass removal" in p.reason and p.severity == "warning" for p in report.problems)
    assert health(settings)["status"] == "ok"


def test_mass_removal_flag_on_the_command_line(site_dir: Path, settings: Settings) -> None:
    published(site_dir)
    for path in sorted((site_dir / "seeds").rglob("*.md"))[:4]:
        path.unlink()
    result = cli(site_dir, "build", "--allow-mass-removal")
    assert result.returncode == 0, result.stderr
    assert "mass removal" in result.stderr


def test_removing_half_or_less_needs_nothing(site_dir: Path, settings: Settings) -> None:
    published(site_dir)
    for path in sorted((site_dir / "seeds").rglob("*.md"))[:3]:  # 3 of 6
        path.unlink()
    assert cli(site_dir, "build").returncode == 0


# -- the state folder -----------------------------------------------------------------------

def test_corrupt_ledger_is_one_line_and_keeps_the_site(site_dir: Path,
                                                       settings: Settings) -> None:
    before = published(site_dir)
    ledger = settings.ledger_file
    ledger.write_bytes(b"this is not a database, just garbage bytes " * 200)
    line = refused(site_dir, settings, before, str(ledger))
    assert "corrupt" in line or "not a database" in line
    with pytest.raises(StateUnavailable):
        run_build(settings, now=NOW)


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[bool]:
    """``folder`` bind-mounted read-only over itself; False where mounting is not allowed."""
    try:
        ok = subprocess.run(["mount", "--bind", str(folder), str(folder)],
                            capture_output=True).returncode == 0
    except OSError:
        ok = False
    try:
        if ok:
            ok = subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)],
                                capture_output=True).returncode == 0
        yield ok
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def test_read_only_state_folder_is_one_line(site_dir: Path, settings: Settings) -> None:
    before = published(site_dir)
    write(site_dir / "seeds" / "new.md", "---\ntitle: A new one\n---\nText.\n")
    with read_only(Path(settings.state_dir)) as ok:
        if not ok:
            pytest.skip("cannot mount a read-only folder here")
        refused(site_dir, settings, before, str(settings.state_dir), "read-only")
        with pytest.raises(StateUnavailable, match="read-only") as caught:
            run_build(settings, now=NOW)  # the scheduler's job: no lock file in the way
        assert str(settings.ledger_file) in str(caught.value)
        assert tree(site_dir / "public") == before


def test_full_state_disk_is_one_line(site_dir: Path, settings: Settings) -> None:
    before = published(site_dir)
    state = Path(settings.state_dir)
    kept = tmp = site_dir / "state-before"
    shutil.copytree(state, tmp)
    with tiny_disk(state, "400k") as ok:
        if not ok:
            pytest.skip("cannot mount a small file system here")
        shutil.copytree(kept, state, dirs_exist_ok=True)
        for index in range(30):  # enough new content to need new pages in the ledger
            write(site_dir / "seeds" / f"bulk/n{index:02d}.md",
                  f"---\ntitle: New {index}\n---\n" + f"Paragraph {index}. " * 400 + "\n")
        fill(state, 4096)
        line = refused(site_dir, settings, before, str(settings.ledger_file))
        assert "full" in line


def test_lost_ledger_is_a_warning(site_dir: Path, settings: Settings) -> None:
    published(site_dir)
    settings.ledger_file.unlink()
    report = run_build(settings, now=NOW)
    assert report.published
    lost = [p for p in report.problems if "ledger missing" in p.reason]
    assert len(lost) == 1 and lost[0].severity == "warning", report.problems
    assert "ids of renamed articles may change" in lost[0].reason
    again = run_build(settings, now=NOW)  # the new ledger is there now
    assert not [p for p in again.problems if "ledger missing" in p.reason]


# -- check is read-only -----------------------------------------------------------------------

def test_check_writes_nothing_on_a_new_site(site_dir: Path, settings: Settings) -> None:
    result = cli(site_dir, "check")
    assert result.returncode == 0, result.stderr
    assert "5 articles" in result.stdout
    assert not Path(settings.state_dir).exists() and not Path(settings.output_dir).exists()


def test_check_leaves_ledger_and_output_as_they_were(site_dir: Path,
                                                     settings: Settings) -> None:
    published(site_dir)
    write(site_dir / "seeds" / "new.md", "---\ntitle: Brand new\n---\nText.\n")
    (site_dir / "seeds" / "2026-10-14-rail-freight.md").rename(site_dir / "seeds" / "moved.md")
    state, out = snapshot(Path(settings.state_dir)), snapshot(Path(settings.output_dir))
    result = cli(site_dir, "check")
    assert "6 articles" in result.stdout, result.stdout + result.stderr
    assert snapshot(Path(settings.state_dir)) == state
    assert snapshot(Path(settings.output_dir)) == out


def test_check_on_a_corrupt_ledger_is_one_line(site_dir: Path, settings: Settings) -> None:
    published(site_dir)
    settings.ledger_file.write_bytes(b"garbage" * 500)
    before = snapshot(Path(settings.state_dir))
    result = cli(site_dir, "check")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert str(settings.ledger_file) in result.stderr
    assert snapshot(Path(settings.state_dir)) == before


# -- a build in progress is visible ----------------------------------------------------------

def status_file(settings: Settings) -> dict[str, object]:
    return json.loads((Path(settings.output_dir) / STATUS).read_text(encoding="utf-8"))


def test_building_since_is_set_during_a_build_and_cleared_after(
        settings: Settings, build: Callable[..., BuildReport]) -> None:
    build()
    seen: list[object] = []

    def hold(_entry: object) -> bool:  # called by the build while it reads changed files
        seen.append(status_file(settings).get("building_since"))
        return False

    write(Path(settings.seeds_dir) / "new.md", "---\ntitle: New\n---\nText.\n")
    before = datetime.now(UTC).replace(microsecond=0)
    build(hold=hold)
    assert seen and isinstance(seen[0], str)
    started = datetime.fromisoformat(str(seen[0]))
    assert started.tzinfo is not None and started.utcoffset() == timedelta(0)
    assert before <= started <= datetime.now(UTC)
    assert status_file(settings).get("building_since") is None


def test_building_since_is_cleared_when_a_build_fails(site_dir: Path,
                                                      settings: Settings) -> None:
    published(site_dir)
    shutil.rmtree(site_dir / "seeds")
    (site_dir / "seeds").mkdir()
    with pytest.raises(SeedsUnavailable):
        run_build(settings, now=NOW)
    assert status_file(settings).get("building_since") is None
    settings.ledger_file.write_bytes(b"garbage" * 500)
    write(site_dir / "seeds" / "a.md", "---\ntitle: A\n---\nText.\n")
    with pytest.raises(StateUnavailable):
        run_build(settings, now=NOW)
    assert status_file(settings).get("building_since") is None

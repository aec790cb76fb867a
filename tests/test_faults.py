"""Faults: kill -9 in a loop, a full disk, a locked ledger, a config that turns bad.

Everything here is real: builds are SIGKILLed processes, the disk is a tmpfs
that fills up (or a file-size limit where mounting is not allowed), the lock
is another process's ``BEGIN EXCLUSIVE``, the server is ``feedserver serve``
with gunicorn on 127.0.0.1.  Every process a test starts is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from feedserver import publish
from feedserver.cli import main
from feedserver.config import Settings, load_settings
from feedserver.job import run_build
from feedserver.publish import JOURNAL, MANIFEST, STATUS, recover
from feedserver.scheduler import Refresher
from feedserver.watcher import Writes
from feedserver.web import create_app

from .conftest import NOW, ROOT, write
from .faultkit import consistency, fill, make_site, mutate, tiny_disk, tree
from .test_serve_e2e import free_port, stop, wait_ready

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


def cli(site: Path, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """``feedserver ARGS`` in the site folder, as a person runs it."""
    return subprocess.run([sys.executable, "-m", "feedserver", *args], cwd=site, text=True,
                          capture_output=True, timeout=120,
                          env={**clean_env(), **(env or {})})


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}


def health(settings: Settings) -> dict[str, Any]:
    response = create_app({"FEEDSERVER_SETTINGS": settings}).test_client().get("/healthz")
    assert response.status_code == 200
    return response.get_json()


def test_a_full_disk_keeps_the_output_reports_and_publishing_resumes(
        site_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    big = "---\ntitle: The long report\n---\n" + "".join(
        f"Paragraph {i}: {os.urandom(60).hex()}\n\n" for i in range(1500))  # ~200 kB
    disk = site_dir / "disk"
    with tiny_disk(disk, "4m") as mounted:
        if not mounted:
            pytest.skip("mount -t tmpfs is not allowed here (test_publish_safety covers "
                        "RLIMIT_FSIZE)")
        env = {"FEEDSERVER_OUTPUT_DIR": str(disk / "out")}
        settings = load_settings(site_dir / "config.toml", env=env)
        out = Path(settings.output_dir)
        assert cli(site_dir, "build", env=env).returncode == 0
        before, status = tree(out), json.loads((out / STATUS).read_text())
        write(Path(settings.seeds_dir) / "long.md", big)
        filler = fill(disk, leave=96 * 1024)  # room for a status note, not for the page
        failed = cli(site_dir, "build", env=env)
        assert failed.returncode == 1
        assert "No space left on device" in failed.stderr
        assert "previous output is unchanged" in failed.stderr
        assert tree(out) == before and consistency(out, before) == []
        report = health(settings)
        assert report["status"] == "degraded" and report["last_success"] == \
            status["last_success"]
        assert "No space left on device" in report["last_error"]["message"]
        refresher = Refresher(settings)  # the scheduler's job meets the same disk
        assert refresher.run("test").report is None and "build failed" in caplog.text
        filler.unlink()  # space returns
        outcome = refresher.run("test")
        assert outcome.report is not None and "feed.rss" in outcome.report.written
        assert "The long report" in (out / "feed.rss").read_text(encoding="utf-8")
        assert consistency(out, tree(out)) == []
        assert health(settings)["status"] == "ok" and "last_error" not in health(settings)


# -- a broken config.toml ----------------------------------------------------------------------

GOOD = 'site_title = "Good news"\nbase_url = "https://news.example.org/"\n'


@pytest.mark.parametrize("text,env,message", [
    (GOOD + "max_items = \n", {}, "invalid TOML: Invalid value (at line 3, column 13)"),
    (GOOD + 'colour = "red"\n', {}, "config.toml, line 3: unknown key 'colour'"),
    (GOOD + 'max_items = "many"\n', {}, "config.toml, line 3: 'max_items' must be int"),
    (GOOD + "refresh_interval = 0\n", {}, "line 3: 'refresh_interval' must be at least 1"),
    ('base_url = "ftp://x"\n', {}, "config.toml, line 1: base_url must be an absolute"),
    (GOOD + '[topics.energy]\nname = "Energy"\ncolour = 1\n', {},
     "config.toml, line 5: topics.energy: unknown key 'colour'"),
    (GOOD + '[topics.energy]\nphrases = "gas"\n', {},
     "config.toml, line 4: topics.energy.phrases must be a list of strings"),
    (GOOD + '[debris]\nlines = ["(unclosed"]\n', {},
     "config.toml, line 4: debris.lines: bad regular expression '(unclosed'"),
    (GOOD, {"FEEDSERVER_MAX_ITEMS": "lots"}, "environment FEEDSERVER_MAX_ITEMS: 'max_items'"),
])
@pytest.mark.parametrize("command", ["build", "check"])
def test_a_broken_config_at_start_names_the_key_and_line(
        site_dir: Path, command: str, text: str, env: dict[str, str], message: str) -> None:
    (site_dir / "config.toml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, [command, "--config", str(site_dir / "config.toml")],
                                env=env)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (site_dir / "public").exists()  # nothing was built


def test_serve_with_a_broken_config_exits_with_the_message(site_dir: Path) -> None:
    (site_dir / "config.toml").write_text(GOOD + 'colour = "red"\n', encoding="utf-8")
    done = cli(site_dir, "serve", "--port", str(free_port()))
    assert done.returncode == 1
    assert done.stderr.strip() == "Error: config.toml, line 3: unknown key 'colour'"


def channel_title(out: Path) -> str:
    return json.loads((out / "feed.json").read_text(encoding="utf-8"))["title"]


def test_a_config_that_turns_bad_keeps_the_last_good_one(
        site_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The scheduler re-reads config.toml when it changes; a bad one is reported, not used."""
    config = site_dir / "config.toml"
    shipped = config.read_text(encoding="utf-8")
    settings = load_settings(config, env={})
    out, refresher = Path(settings.output_dir), Refresher(settings)
    refresher.run("start")
    assert channel_title(out) == "feedserver news"
    config.write_text(shipped.replace('"feedserver news"', '"Renamed news"'), encoding="utf-8")
    refresher.run("interval")
    assert channel_title(out) == "Renamed news"  # a good change is picked up
    line = shipped.count("\n", 0, shipped.index("base_url")) + 1
    config.write_text(shipped.replace('"feedserver news"', '"Renamed news"').replace(
        "base_url =", "base_ulr ="), encoding="utf-8")
    write(Path(settings.seeds_dir) / "late.md", "---\ntitle: Published anyway\n---\nText.\n",
          mtime=time.time() - 60)  # settled: the hold rule lets it through
    caplog.set_level(logging.INFO, logger="feedserver")
    refresher.run("interval")
    refresher.run("interval")
    wanted = f"line {line}: unknown key 'base_ulr'"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and wanted in errors[0] and "keeping the last good" in errors[0]
    assert channel_title(out) == "Renamed news"
    assert "Published anyway" in (out / "feed.rss").read_text(encoding="utf-8")
    report = health(settings)
    assert report["status"] == "degraded" and wanted in report["config_error"]
    checked = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert checked.exit_code == 1 and wanted in checked.output
    config.write_text(shipped.replace('"feedserver news"', '"Fixed news"').replace(
        'output_dir = "public"', 'output_dir = "elsewhere"'), encoding="utf-8")
    refresher.run("interval")
    assert channel_title(out) == "Fixed news" and health(settings)["status"] == "ok"
    assert "changes output_dir: kept as they are until a restart" in caplog.text
    assert not (site_dir / "elsewhere").exists()


# -- a real server: the ledger locked, the config turned bad -----------------------------------

@dataclass
class Served:
    port: int
    log: Path
    seeds: Path

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read(), response.getheader("ETag") or ""
        finally:
            conn.close()

    def health(self) -> dict[str, Any]:
        return json.loads(self.get("/healthz")[1])

    def titles(self) -> set[str]:
        return {item["title"] for item in json.loads(self.get("/feed.json")[1])["items"]}


@contextlib.contextmanager
def serving(site: Path, interval: int = 1) -> Iterator[Served]:
    """``feedserver serve --workers 2`` on the site (its own config.toml), stopped by PID."""
    port = free_port()
    env = {**clean_env(), "FEEDSERVER_BASE_URL": f"http://127.0.0.1:{port}/",
           "FEEDSERVER_REFRESH_INTERVAL": str(interval)}
    log = site / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "feedserver", "serve", "--port",
                                    str(port), "--workers", "2"], cwd=site, env=env,
                                   stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}/", process, log)
        yield Served(port, log, site / "seeds")
    finally:
        stop(process)


def until(check: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout}s:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.1)


LOCK_SECONDS = 30.0
LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""
PATHS = ("/healthz", "/feed.rss", "/feed.json", "/topics/energy/feed.atom", "/", "/topics/")


def hammer(served: Served, stop_when: Callable[[], bool]) -> Counter[str]:
    """Requests from 4 threads, with and without validators, until ``stop_when()``."""
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def client(index: int) -> None:
        etags: dict[str, str] = {}
        while not stop_when():
            path = PATHS[(index + sum(seen.values())) % len(PATHS)]
            headers = {"If-None-Match": etags[path]} if index % 2 and path in etags else {}
            try:
                status, _, etag = served.get(path, headers)
                etags[path] = etag
                outcome = str(status)
            except OSError as exc:
                outcome = f"error {type(exc).__name__}"
            with lock:
                seen[outcome] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=LOCK_SECONDS + 30)
    return seen


def test_a_ledger_locked_for_30_s_costs_no_request_and_the_job_retries(site_dir: Path) -> None:
    """The web never touches the ledger: every request is answered while another process
    holds it with BEGIN EXCLUSIVE for 30 s; the job waits, retries and publishes after."""
    with serving(site_dir) as served:
        ledger = site_dir / "state" / "ledger.sqlite3"
        with subprocess.Popen([sys.executable, "-c", LOCKER, str(ledger), str(LOCK_SECONDS)],
                              stdout=subprocess.PIPE, text=True) as holder:
            try:
                assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
                write(served.seeds / "late.md", "---\ntitle: After the lock\n---\nText.\n")
                seen = hammer(served, lambda: holder.poll() is not None)
                blocked = "After the lock" not in served.titles() or holder.poll() is None
            finally:
                holder.wait(timeout=LOCK_SECONDS + 30)
        until(lambda: "After the lock" in served.titles(), 30, "publish after the lock",
              served.log)
        assert set(seen) <= {"200", "304"}, seen
        assert sum(seen.values()) > 100 and seen["304"] > 0, seen
        assert blocked  # nothing was published while the ledger was held
        assert "is locked" in served.log.read_text() and "retrying" in served.log.read_text()
        assert served.health()["status"] == "ok"


def test_serve_keeps_its_last_good_config_and_healthz_says_so(site_dir: Path) -> None:
    config = site_dir / "config.toml"
    shipped = config.read_text(encoding="utf-8")
    with serving(site_dir) as served:
        config.write_text(shipped + '\n[topics.energy2]\nname = "Energy"\ncolour = 1\n',
                          encoding="utf-8")
        until(lambda: "config_error" in served.health(), 20, "config_error in /healthz",
              served.log)
        report = served.health()
        assert report["status"] == "degraded"
        assert "topics.energy2: unknown key 'colour'" in report["config_error"]
        assert f"line {shipped.count(chr(10)) + 4}" in report["config_error"]
        assert served.get("/feed.rss")[0] == 200 and served.get("/topics/energy/")[0] == 200
        assert "keeping the last good configuration" in served.log.read_text()
        config.write_text(shipped.replace('"feedserver news"', '"Repaired news"'),
                          encoding="utf-8")
        until(lambda: served.health()["status"] == "ok", 20, "recovery in /healthz",
              served.log)
        until(lambda: b"Repaired news" in served.get("/feed.rss")[1], 20, "new title",
              served.log)


def test_an_edit_before_the_scheduler_first_looks_is_not_missed(site_dir: Path) -> None:
    """serve loads the config, then starts the scheduler: an edit in between still counts."""
    config = site_dir / "config.toml"
    settings = load_settings(config, env={})
    config.write_text(config.read_text(encoding="utf-8") + "\ncolour = 1\n", encoding="utf-8")
    refresher = Refresher(settings)
    assert refresher.run("start").report is not None  # built with the settings it was given
    assert "unknown key 'colour'" in (refresher.config.error or "")
    assert "unknown key 'colour'" in health(settings)["config_error"]


def test_build_workers_leave_on_their_own_never_by_sigterm(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The load test found the scheduler stuck for good: ``with Pool()`` ends in
    terminate(), whose SIGTERM a worker still starting up loses (Python clears
    pending signals after fork), and the join that follows never returns
    (CPython #78178).  Workers must be closed and joined instead."""
    make_site(tmp_path, count=70)
    settings = load_settings(tmp_path / "config.toml", env={"FEEDSERVER_BUILD_PROCESSES": "2"})
    terminated: list[int | None] = []
    real = multiprocessing.process.BaseProcess.terminate

    def recording(process: multiprocessing.process.BaseProcess) -> None:
        terminated.append(process.pid)
        real(process)

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "terminate", recording)
    forked: list[int] = []
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", _counting(forked))
    report = run_build(settings, now=NOW)  # cold: parse and render pools
    mutate(tmp_path / "seeds", 1)
    run_build(settings, now=NOW)  # incremental: a render pool
    assert report.published and len(forked) >= 4  # both pools ran
    assert terminated == []


def _counting(forked: list[int]) -> Callable[..., None]:
    real = multiprocessing.process.BaseProcess.start

    def start(process: multiprocessing.process.BaseProcess) -> None:
        real(process)
        forked.append(process.pid or 0)
    return start


@pytest.mark.skipif(not Path("/proc/self/fdinfo").is_dir(), reason="asks Linux's /proc")
@pytest.mark.parametrize("events", ["none seen", "a late move vouched for the first half"])
def test_a_file_open_for_writing_is_never_read_whatever_the_events_said(
        settings: Settings, events: str) -> None:
    """The load test published half-written files twice: a writer that opened before the
    watcher started and paused past the settle time, and a move event handled after the
    rewrite had begun (its snapshot vouched for the first half)."""
    writes = Writes(close_events=True)  # Linux's rules; this test plays the events
    refresher = Refresher(settings, writes=writes)
    refresher.run("start")
    path = Path(settings.seeds_dir) / "slow.md"
    with path.open("w", encoding="utf-8") as writer:
        writer.write("---\ntitle: Slowly written\n---\nThe first half.\n")
        writer.flush()
        os.utime(path, (time.time() - 30, time.time() - 30))  # past the settle time
        if events != "none seen":
            info = path.stat()
            writes.renamed_in("slow.md", (info.st_size, info.st_mtime_ns))
        outcome = refresher.run("interval")
        assert outcome.held == ["slow.md"] and outcome.retry_at is not None
        assert "Slowly written" not in all_titles(settings)
        writer.write("The second half.\n")
    info = path.stat()
    writes.closed("slow.md", (info.st_size, info.st_mtime_ns), wrote=True)
    assert refresher.run("slow.md written").held == []
    items = json.loads((Path(settings.output_dir) / "feed.json").read_text())["items"]
    item = next(i for i in items if i["title"] == "Slowly written")
    assert "The second half." in item["content_html"]


def all_titles(settings: Settings) -> set[str]:
    items = json.loads((Path(settings.output_dir) / "feed.json").read_text())["items"]
    return {item["title"] for item in items}

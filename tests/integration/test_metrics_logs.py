"""Build metrics and machine-readable log lines: the scheduler's runs, ``feedserver build``,
the JSON formatter, and the multiprocess folder of a server run."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedserver.cli import main
from feedserver.config import Settings
from feedserver.metrics import instruments, multiproc
from feedserver.metrics.logs import JsonFormatter
from feedserver.schedule.scheduler import Refresher
from tests.conftest import NOW


def builds(outcome: str) -> float:
    tools = instruments.get()
    assert not tools.multiprocess
    return tools.registry.get_sample_value("feedserver_builds_total",
                                           {"outcome": outcome}) or 0.0


def durations() -> float:
    return instruments.get().registry.get_sample_value(
        "feedserver_build_duration_seconds_count") or 0.0


def test_scheduler_runs_are_counted_and_summarised(settings: Settings,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    refresher = Refresher(settings, clock=lambda: NOW)
    published, unchanged, timed = builds("published"), builds("unchanged"), durations()
    with caplog.at_level(logging.INFO, logger="feedserver.schedule.scheduler"):
        first = refresher.run("test").report
        second = refresher.run("test").report
    assert first is not None and second is not None and not second.written
    assert builds("published") - published == 1
    assert builds("unchanged") - unchanged == 1
    assert durations() - timed == 2
    summaries = [r for r in caplog.records if getattr(r, "fields", None)]
    assert [r.fields["outcome"] for r in summaries] == ["published", "unchanged"]
    line = json.loads(JsonFormatter().format(summaries[0]))
    assert line["event"] == "build" and line["articles"] == first.articles
    assert line["written"] == len(first.written) and line["reason"] == "test" and line["run"] == 1
    assert line["message"].startswith("run 1 (test): ")  # the text line, kept


def test_a_failed_build_is_counted(settings: Settings, tmp_path: Path) -> None:
    failed = builds("failed")
    Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
    Path(settings.ledger_file).write_bytes(b"not a database" * 100)  # a corrupt ledger
    assert Refresher(settings, clock=lambda: NOW).run("test").report is None
    assert builds("failed") - failed == 1


def test_json_formatter_escapes_and_keeps_exceptions() -> None:
    record = logging.LogRecord("feedserver.x", logging.WARNING, __file__, 1,
                               'path "%s"', ('a"b\\c\n',), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == 'path "a"b\\c\n"' and line["level"] == "WARNING"
    assert line["pid"] == os.getpid() and line["time"].endswith("+00:00")
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["exception"]


def test_feedserver_build_prints_its_summary_as_json(settings: Settings) -> None:
    env = {"FEEDSERVER_LOG_FORMAT": "json"}
    done = CliRunner().invoke(main, ["build", "--config", settings.config_path], env=env)
    assert done.exit_code == 0, done.output
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["event"] == "build" and line["outcome"] == "published"
    assert line["reason"] == "command" and line["articles"] > 0
    assert line["message"].startswith(f"published {line['articles']} articles")
    text = CliRunner().invoke(main, ["build", "--config", settings.config_path])
    assert text.stdout.strip().splitlines()[-1].startswith("published ")


def test_a_killed_servers_folder_is_swept(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{multiproc.PREFIX}{dead.pid}-abc"
    live = tmp_path / f"{multiproc.PREFIX}{os.getppid()}-def"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "counter_1.db").write_bytes(b"x")
    multiproc.sweep(tmp_path)
    assert not stale.exists() and live.exists()


def _holder(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """A live server's folder as another pid namespace shows it: named by a pid that
    does not exist here (a container's, a replica host's), in use by a live process."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    code = ("import sys\nfrom feedserver.metrics import multiproc\n"
            "made = multiproc.private_dir()\n"
            "print(made, flush=True)\nsys.stdin.read()\n")
    live = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp_path)})
    assert live.stdout is not None
    made = Path(live.stdout.readline().strip())
    renamed = made.with_name(made.name.replace(f"-{live.pid}-", f"-{gone.pid}-"))
    made.rename(renamed)  # its master's pid, as seen from here: nobody's
    return live, renamed


def test_a_live_servers_folder_named_by_a_pid_of_another_namespace_is_kept(
        tmp_path: Path) -> None:
    """A server in another pid namespace sharing the temp folder (containers sharing
    /tmp; the replica-hosts test) is alive though its pid is nobody's here: sweeping
    its folder made its workers fail to boot (seen in CI)."""
    live, folder = _holder(tmp_path)
    try:
        multiproc.sweep(tmp_path)
        assert folder.is_dir(), "a live server's folder was swept"
    finally:
        assert live.stdin is not None and live.stdout is not None
        live.stdin.close()
        live.wait(30)
        live.stdout.close()
    multiproc.sweep(tmp_path)  # its processes are gone: now it is stale
    assert not folder.exists()

"""A config.toml that is broken at start, or turns bad while serve or watch runs.

At start: ``build``, ``check`` and ``serve`` stop with one line naming the key
and its line.  While running: the scheduler re-reads the file when it changes
(:mod:`feedserver.schedule.liveconfig`), keeps the last good configuration when the new
one is invalid, and says so in its log, ``check`` and ``/healthz``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedserver.cli import main
from feedserver.config import load_settings
from feedserver.publish.output import STATUS
from feedserver.schedule.scheduler import Refresher
from tests.conftest import write
from tests.faultkit import cli, health, serving, until
from tests.system.test_serve_e2e import free_port

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


def config_error(out: Path) -> str:
    """The full message, kept in status.json for the log and check (/healthz shows a fixed one)."""
    return str(json.loads((out / STATUS).read_text(encoding="utf-8")).get("config_error"))


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
    line = shipped.count("\n", 0, shipped.index("\nmax_items")) + 2
    config.write_text(shipped.replace('"feedserver news"', '"Renamed news"').replace(
        "\nmax_items =", "\nmax_itmes ="), encoding="utf-8")
    write(Path(settings.seeds_dir) / "late.md", "---\ntitle: Published anyway\n---\nText.\n",
          mtime=time.time() - 60)  # settled: the hold rule lets it through
    caplog.set_level(logging.INFO, logger="feedserver")
    refresher.run("interval")
    refresher.run("interval")
    wanted = f"line {line}: unknown key 'max_itmes'"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and wanted in errors[0] and "keeping the last good" in errors[0]
    assert channel_title(out) == "Renamed news"
    assert "Published anyway" in (out / "feed.rss").read_text(encoding="utf-8")
    report = health(settings)
    assert report["status"] == "degraded" and wanted in config_error(out)
    assert "max_itmes" not in json.dumps(report)  # public: no config text
    checked = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert checked.exit_code == 1 and wanted in checked.output
    config.write_text(shipped.replace('"feedserver news"', '"Fixed news"').replace(
        'output_dir = "public"', 'output_dir = "elsewhere"'), encoding="utf-8")
    refresher.run("interval")
    assert channel_title(out) == "Fixed news" and health(settings)["status"] == "ok"
    assert "changes output_dir: kept as they are until a restart" in caplog.text
    assert not (site_dir / "elsewhere").exists()


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
        assert "colour" not in json.dumps(report) and report["config_error"]
        full = config_error(site_dir / "public")
        assert "topics.energy2: unknown key 'colour'" in full
        assert f"line {shipped.count(chr(10)) + 4}" in full
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
    assert "unknown key 'colour'" in config_error(Path(settings.output_dir))
    assert health(settings)["config_error"]

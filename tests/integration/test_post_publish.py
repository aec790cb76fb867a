"""After each publish: nginx_conf follows the manifest, and the post_publish hook runs.

The hook is the operator's (reload nginx, copy the folder to replicas); the
builder never runs anything else, and a hook that fails or hangs never costs a
publish.  The exported config is rewritten only when its text changes (channels,
gone paths, a channel's max-age), so an unchanged publish needs no reload.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from feedserver.build.run import run_build
from feedserver.config import Settings, load_settings
from feedserver.publish import nginx
from feedserver.publish.manifest import load_manifest
from feedserver.publish.output import later_mtimes
from tests.conftest import NOW

RECORD = ("import json, os, sys; "
          "open(sys.argv[1], 'a').write(json.dumps({k: v for k, v in os.environ.items() "
          "if k.startswith('FEEDSERVER_')}) + '\\n')")


def hooked(settings: Settings, tmp_path: Path, command: str | None = None) -> Settings:
    record = tmp_path / "hook.jsonl"
    return replace(settings, nginx_conf=str(tmp_path / "nginx" / "site.conf"),
                   nginx_listen="127.0.0.1:8081",
                   post_publish=command or shlex.join([sys.executable, "-c", RECORD,
                                                        str(record)]))


def runs(tmp_path: Path) -> list[dict[str, str]]:
    lines = (tmp_path / "hook.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_each_publish_runs_the_hook_and_rewrites_nginx_conf_only_on_change(
        settings: Settings, tmp_path: Path) -> None:
    site = hooked(settings, tmp_path)
    conf = Path(site.nginx_conf)
    first = run_build(site, now=NOW)
    assert first.published and not first.errors
    text = conf.read_text()
    assert text == nginx.render(site, load_manifest(Path(site.output_dir)), "127.0.0.1:8081")
    assert "listen 127.0.0.1:8081;" in text and f'root "{site.output_dir}";' in text
    assert '"/topics/open-web/feed.rss" "public, max-age=' in text
    [ran] = runs(tmp_path)
    assert ran["FEEDSERVER_OUTPUT_DIR"] == site.output_dir
    assert ran["FEEDSERVER_NGINX_CONF"] == site.nginx_conf
    assert ran["FEEDSERVER_NGINX_CHANGED"] == "1" and int(ran["FEEDSERVER_WRITTEN"]) > 0

    stamp = conf.stat().st_mtime_ns
    again = run_build(site, now=NOW)
    assert again.published and not again.written
    assert conf.stat().st_mtime_ns == stamp  # the same text: not rewritten, no reload
    assert runs(tmp_path)[-1]["FEEDSERVER_NGINX_CHANGED"] == "0"
    assert runs(tmp_path)[-1]["FEEDSERVER_WRITTEN"] == "0"

    (Path(site.seeds_dir) / "2026-11-03-feeds-still-matter.md").unlink()
    run_build(site, now=NOW)
    assert "topics/open-web/feed.rss" in load_manifest(Path(site.output_dir))["gone"]
    gone = conf.read_text()
    assert '"/topics/open-web/feed.rss" 1;' in gone and '"/topics/open-web/" 1;' in gone
    assert '"/topics/open-web/feed.rss" "public' not in gone
    assert runs(tmp_path)[-1]["FEEDSERVER_NGINX_CHANGED"] == "1"
    assert len(runs(tmp_path)) == 3


def test_a_failing_hook_is_logged_and_the_publish_stands(
        settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    site = hooked(settings, tmp_path, command="echo reload refused >&2; exit 3")
    with caplog.at_level(logging.WARNING, logger="feedserver.build.post_publish"):
        report = run_build(site, now=NOW)
    assert report.published and (Path(site.output_dir) / "feed.rss").is_file()
    assert "exited with 3: reload refused" in caplog.text
    assert Path(site.nginx_conf).is_file()  # written before the hook ran


def test_no_hook_and_no_conf_by_default(settings: Settings, tmp_path: Path) -> None:
    defaults = load_settings(None, env={})
    assert defaults.post_publish == "" and defaults.nginx_conf == ""
    assert run_build(settings, now=NOW).published
    assert not list(tmp_path.rglob("*.conf"))


def test_settings_come_from_the_environment_and_config_folder(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('nginx_conf = "deploy/site.conf"\n')
    loaded = load_settings(tmp_path / "config.toml",
                           env={"FEEDSERVER_POST_PUBLISH": "nginx -s reload"})
    assert loaded.nginx_conf == str(tmp_path / "deploy" / "site.conf")
    assert loaded.post_publish == "nginx -s reload" and loaded.nginx_listen == "80"


def test_a_new_body_gets_a_later_mtime_than_the_one_it_replaces(tmp_path: Path) -> None:
    """nginx's ETag is mtime (seconds) and size: equal sizes within one second kept it."""
    old, new = tmp_path / "feed.rss", tmp_path / ".feed.rss.1.tmp"
    old.write_bytes(b"body one")
    new.write_bytes(b"body two")
    second = int(old.stat().st_mtime)
    os.utime(new, (second, second + 0.5))
    later_mtimes([[str(new), str(old)]])
    assert int(new.stat().st_mtime) == second + 1
    os.utime(new, (second + 5, second + 5))
    later_mtimes([[str(new), str(old)]])  # already later: left alone
    assert int(new.stat().st_mtime) == second + 5


def test_export_prints_or_writes_the_config_of_the_published_folder(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from feedserver.cli import main

    assert run_build(settings, now=NOW).published
    monkeypatch.chdir(settings.config_path and Path(settings.config_path).parent)
    for key in [k for k in os.environ if k.startswith("FEEDSERVER_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("FEEDSERVER_POLL_BUDGET", "0")
    expected = nginx.render(settings, load_manifest(Path(settings.output_dir)), "8080")
    printed = CliRunner().invoke(main, ["export", "nginx", "--listen", "8080"])
    assert printed.exit_code == 0 and printed.output == expected
    target = tmp_path / "out" / "site.conf"
    written = CliRunner().invoke(main, ["export", "nginx", "--listen", "8080",
                                        "--out", str(target)])
    assert written.exit_code == 0 and target.read_text() == expected
    again = CliRunner().invoke(main, ["export", "nginx", "--listen", "8080",
                                      "--out", str(target)])
    assert "unchanged" in again.output


def test_an_unwritable_nginx_conf_is_logged_and_the_hook_still_runs(
        settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "blocked").write_text("a file where the folder should be")
    site = replace(hooked(settings, tmp_path), nginx_conf=str(tmp_path / "blocked" / "x.conf"))
    with caplog.at_level(logging.WARNING, logger="feedserver.build.post_publish"):
        assert run_build(site, now=NOW).published
    assert "not written" in caplog.text
    assert runs(tmp_path)[-1]["FEEDSERVER_NGINX_CHANGED"] == "0"

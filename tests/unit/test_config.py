"""Settings: the TOML file, environment overrides, clear errors, documentation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from feedserver.config import SETTINGS, load_settings
from feedserver.core.errors import ConfigError
from tests.conftest import ROOT


def test_env_overrides_scalars(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('max_items = 10\nbase_url = "https://a.example/x"\n')
    s = load_settings(cfg, env={"FEEDSERVER_MAX_ITEMS": "7", "FEEDSERVER_SEEDS_DIR": "s"})
    assert s.max_items == 7 and s.base_url == "https://a.example/x/"
    assert s.seeds_dir == str(tmp_path / "s")


@pytest.mark.parametrize("text,env,message", [
    ("colour = 1\n", {}, "line 1: unknown key 'colour'"),
    ('# comment\nmax_items = "many"\n', {}, "line 2: 'max_items' must be int"),
    ("", {"FEEDSERVER_MAX_ITEMS": "x"}, "FEEDSERVER_MAX_ITEMS: 'max_items' must be int"),
    ("max_items = 1\nmax_items = 2\n", {}, "line 2"),
    ('base_url = "ftp://x"\n', {}, "base_url must be an absolute http"),
    ("[topics.a]\npatterns = ['(']\n", {}, "topics.a.patterns: bad regular expression"),
    ("[topics.a]\ncolour = 'x'\n", {}, "unknown key 'colour'"),
])
def test_errors_name_the_key(tmp_path: Path, text: str, env: dict[str, str],
                             message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(cfg, env=env)


def test_every_setting_is_documented_in_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shipped = (ROOT / "config.toml").read_text(encoding="utf-8")
    for name, _, _, help_text in SETTINGS:
        assert f"| `{name}` |" in readme, f"README does not document {name}"
        plain = readme.replace("`", "").replace("'", "")
        assert help_text.rstrip(".").replace("'", "") in plain
    load_settings(ROOT / "config.toml", env={})  # the shipped config is valid
    assert "[topics.kazakhstan]" in shipped


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```sh\n(.+?)\n```", readme)
    assert len(commands) == 2, "the README's set-up is exactly two commands"
    assert commands[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")

"""Cache keys come from the code: a changed parser, renderer or library reaches an
existing deployment, and redoes only the work it affects (issue 13's first step)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedserver.build import codeversion
from feedserver.build.run import run_build
from feedserver.config import Settings
from tests.conftest import NOW


@pytest.fixture
def code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the package's source that the versions are computed from."""
    copy = tmp_path / "code"
    shutil.copytree(codeversion.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codeversion, "PACKAGE", copy)
    codeversion.parse_version.cache_clear()
    codeversion.render_version.cache_clear()
    yield copy
    codeversion.parse_version.cache_clear()
    codeversion.render_version.cache_clear()


def change(code: Path, module: str) -> None:
    """Edit one module of the copy (as an upgrade would) and forget the versions."""
    with (code / f"{module}.py").open("a", encoding="utf-8") as source:
        source.write("\n# changed\n")
    codeversion.parse_version.cache_clear()
    codeversion.render_version.cache_clear()


def test_versions_follow_the_source_and_the_libraries(code: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    parse, render = codeversion.parse_version(), codeversion.render_version()
    change(code, "render/feeds")
    assert codeversion.parse_version() == parse and codeversion.render_version() != render
    render = codeversion.render_version()
    change(code, "parse/article")
    assert codeversion.parse_version() != parse and codeversion.render_version() == render
    parse = codeversion.parse_version()
    real = codeversion._installed
    monkeypatch.setattr(codeversion, "_installed",
                        lambda name: "99.0" if name == "nh3" else real(name))
    codeversion.parse_version.cache_clear()
    assert codeversion.parse_version() != parse


def test_a_code_change_redoes_exactly_the_affected_work(code: Path, settings: Settings) -> None:
    first = run_build(settings, now=NOW)
    assert first.parsed_files > 0 and first.rendered_channels == first.channels > 1
    quiet = run_build(settings, now=NOW)
    assert (quiet.parsed_files, quiet.rendered_channels) == (0, 0)

    change(code, "parse/article")  # the parser: every file is parsed again; same output, no render
    parsed = run_build(settings, now=NOW)
    assert parsed.parsed_files == first.parsed_files and parsed.rendered_channels == 0

    change(code, "render/feeds")  # a renderer: every channel is rendered again, nothing parsed
    rendered = run_build(settings, now=NOW)
    assert rendered.parsed_files == 0 and rendered.rendered_channels == first.channels
    assert rendered.written == []  # the same bytes: files, ETags and Last-Modified stay

    assert run_build(settings, now=NOW).rendered_channels == 0

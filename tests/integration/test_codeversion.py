"""Cache keys come from the code: a changed parser, renderer or library reaches an
existing deployment, and redoes only the work it affects (issue 13's first step)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from jinja2 import FileSystemLoader

from feedserver.build import codeversion
from feedserver.build.run import run_build
from feedserver.config import Settings
from feedserver.core.layout import ERROR_PAGES
from feedserver.publish import codedigest
from feedserver.render import embed, pages
from tests.conftest import NOW


@pytest.fixture
def code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the package's source that the versions are computed from."""
    copy = tmp_path / "code"
    shutil.copytree(codedigest.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codedigest, "PACKAGE", copy)
    forget()
    yield copy
    forget()


def forget() -> None:
    """Drop every version and every template or static file read by this process."""
    codeversion.forget()
    for cached in (pages._environment, pages.stylesheet, embed._environment, embed.asset):
        cached.cache_clear()


def change(code: Path, module: str, line: str = "\n# changed\n") -> None:
    """Edit one file of the copy (as an upgrade would: ``module`` without ``.py`` is a
    Python module) and forget the versions."""
    with (code / (module if "." in module else f"{module}.py")).open("a",
                                                                    encoding="utf-8") as f:
        f.write(line)
    forget()


@pytest.fixture
def assets(code: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The renderers read their templates and static files from the copy too, so a patched
    template or stylesheet changes what is published (as it would in an upgrade)."""
    folder = code / "render"
    for module in (pages, embed):
        monkeypatch.setattr(module, "PackageLoader",
                            lambda package, templates: FileSystemLoader(folder / templates))
        monkeypatch.setattr(module, "resources", SimpleNamespace(files=lambda name: folder))
    forget()
    yield folder
    forget()


def built(settings: Settings) -> dict[str, bytes]:
    """Every published file (by output path) with its bytes; not their .gz and .br
    bodies, nor the publisher's own files."""
    out = Path(settings.output_dir)
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*")
            if p.is_file() and p.suffix not in (".gz", ".br")
            and not p.relative_to(out).parts[0].startswith(".")}


FEEDS = (".rss", ".atom", ".json")


def test_versions_follow_the_source_and_the_libraries(code: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    parse, render = codeversion.parse_version(), codeversion.render_version()
    change(code, "render/feeds")
    assert codeversion.parse_version() == parse and codeversion.render_version() != render
    render = codeversion.render_version()
    change(code, "parse/article")
    assert codeversion.parse_version() != parse and codeversion.render_version() == render
    parse = codeversion.parse_version()
    page = codeversion.page_version()
    change(code, "render/templates/base.html", "\n")  # pages only, never a feed
    assert codeversion.render_version() == render and codeversion.page_version() != page
    page = codeversion.page_version()
    change(code, "validate")  # feeds only: the gate the pages do not pass through
    assert codeversion.render_version() != render and codeversion.page_version() == page
    real = codedigest.installed
    monkeypatch.setattr(codedigest, "installed",
                        lambda name: "99.0" if name == "nh3" else real(name))
    codeversion.forget()
    assert codeversion.parse_version() != parse
    parse = codeversion.parse_version()
    # A new language model may detect other languages: every article is parsed again.
    monkeypatch.setattr(codedigest, "installed",
                        lambda name: "99.0" if name in ("nh3", "py3langid") else real(name))
    codeversion.forget()
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


def test_a_template_change_rewrites_exactly_its_pages(code: Path, assets: Path,
                                                     settings: Settings) -> None:
    first = run_build(settings, now=NOW)
    assert first.rendered_channels == first.channels
    articles = {path for path in built(settings) if path.startswith("articles/")}
    assert articles and all(path.endswith("/index.html") for path in articles)

    template = assets / "templates" / "article.html"  # inside its block: what a page shows
    template.write_text(template.read_text(encoding="utf-8").replace(
        "</article>", "</article><!-- changed -->"), encoding="utf-8")
    forget()
    report = run_build(settings, now=NOW)
    assert (report.parsed_files, report.rendered_channels) == (0, 0)  # no feed channel
    assert set(report.written) == articles  # every article page, and nothing else
    assert all(b"<!-- changed -->" in built(settings)[path] for path in articles)
    assert run_build(settings, now=NOW).written == []


def test_a_stylesheet_change_reaches_the_pages_that_link_it(code: Path, assets: Path,
                                                           settings: Settings) -> None:
    run_build(settings, now=NOW)
    before = built(settings)
    linking = {path for path, body in before.items() if b"static/style.css?v=" in body}
    assert "index.html" in linking and not any(path.endswith(FEEDS) for path in linking)

    change(code, "render/static/style.css", "/* changed */\n")
    report = run_build(settings, now=NOW)
    assert (report.parsed_files, report.rendered_channels) == (0, 0)  # feeds: not redone
    # A new versioned URL in every page linking it, the published error pages too.
    assert set(report.written) == linking | {pages.STYLESHEET, *ERROR_PAGES.values()}
    after = built(settings)
    assert b"/* changed */" in after[pages.STYLESHEET]
    assert all(after[path] == before[path] for path in before if path.endswith(FEEDS))


def test_a_validator_change_redoes_every_channel_and_parses_nothing(
        code: Path, settings: Settings) -> None:
    first = run_build(settings, now=NOW)
    change(code, "validate")
    report = run_build(settings, now=NOW)
    assert report.parsed_files == 0 and report.rendered_channels == first.channels
    assert report.written == []  # the same bytes pass the same gate
    assert run_build(settings, now=NOW).rendered_channels == 0

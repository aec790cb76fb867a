"""A feed format is one module: registering one more reaches build, check and the web app.

The dummy format is a plain-text list (``feed.txt``): a header line with the
channel's title, then one line per item, its fields escaped and separated by
tabs.  Its round-trip check reads the lines back, and the gate compares them
with the articles exactly as it does for RSS, Atom and JSON Feed.  Before
formats were modules, one more entry in ``FORMATS`` crashed the build with a
``KeyError`` in the workers' cost table and failed every channel in ``check``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from benchmarks.corpus import generate
from feedserver.build import parallel
from feedserver.build.run import BuildReport, run_build
from feedserver.cli import main
from feedserver.config import Settings, load_settings
from feedserver.core.records import Article, Channel
from feedserver.publish.manifest import load_manifest
from feedserver.render.feeds import Context
from feedserver.render.formats import (
    FORMATS,
    Finding,
    Format,
    ReadBack,
    Seen,
    register,
    unregister,
    utc,
)
from feedserver.web.app import create_app
from tests.conftest import NOW, ROOT, write

Build = Callable[..., BuildReport]
TEXT_TYPE = "text/plain; charset=utf-8"


def _field(text: str) -> bytes:
    return text.encode("unicode_escape")


def text_item(article: Article, ctx: Context) -> bytes:
    fields = (article.id, article.title, article.link, article.published.isoformat(),
              article.updated.isoformat())
    return b"\t".join(_field(f) for f in fields) + b"\n"


def text_channel(channel: Channel, ctx: Context, items: list[bytes]) -> bytes:
    return b"# " + _field(channel.title) + b"\n" + b"".join(items)


def _date(text: str) -> tuple[int, ...] | None:
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def text_check(channel: Channel, body: bytes) -> ReadBack:
    """The lines read back: a header, then five tab-separated fields per item."""
    header, *lines = body.decode("utf-8").splitlines()
    if not header.startswith("# "):
        return ReadBack([Finding("no '# title' header line")])
    seen = []
    for number, line in enumerate(lines, start=1):
        fields = [f.encode().decode("unicode_escape") for f in line.split("\t")]
        if len(fields) != 5:
            return ReadBack([Finding(f"line {number}: {len(fields)} fields, expected 5")])
        seen.append(Seen(fields[0], fields[1], fields[2],
                         {"published": _date(fields[3]), "updated": _date(fields[4])}))
    return ReadBack([], seen)


TEXT = Format(name="txt", filename="feed.txt", media_type=TEXT_TYPE, label="Plain text",
              item=text_item, channel=text_channel, check=text_check, cost=1,
              checked_by="the text check")


@pytest.fixture
def text_format() -> Iterator[Format]:
    """The dummy format, registered for one test and unregistered afterwards."""
    register(TEXT)
    try:
        yield TEXT
    finally:
        unregister(TEXT.name)


def _text_feeds_match_the_catalog(settings: Settings) -> int:
    """Every channel has its feed.txt, one line per item; returns how many channels."""
    out = Path(settings.output_dir)
    catalog = json.loads((out / "topics.json").read_bytes())["channels"]
    for channel in catalog:
        url = channel["feeds"]["txt"]
        assert url.endswith("feed.txt")
        path = url[len(settings.base_url):]
        lines = (out / path).read_text(encoding="utf-8").splitlines()
        assert lines[0] == f"# {channel['title']}" and len(lines) == 1 + channel["items"]
    return len(catalog)


def test_a_registered_format_is_built_validated_and_listed(text_format: Format,
                                                           build: Build,
                                                           settings: Settings) -> None:
    report = build()
    assert report.published and not report.errors, report.problems
    assert _text_feeds_match_the_catalog(settings) > 5
    out = Path(settings.output_dir)
    manifest = load_manifest(out)["files"]
    assert manifest["feed.txt"]["media_type"] == TEXT_TYPE
    page = (out / "index.html").read_text(encoding="utf-8")
    assert 'type="text/plain"' in page and "Plain text" in page


def test_forked_workers_build_a_registered_format(text_format: Format, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A cold build big enough for the Pool of workers: they inherit the registry."""
    generate(tmp_path / "seeds", 120, seed=5)
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    settings = load_settings(tmp_path / "config.toml", env={
        "FEEDSERVER_SEEDS_DIR": str(tmp_path / "seeds"), "FEEDSERVER_BUILD_PROCESSES": "2",
        "FEEDSERVER_ARCHIVE_SIZE": "0"})  # one task per channel (archive pages are more)
    pooled: list[int] = []
    real = parallel._pooled

    def spy(job: Any, runs: list[list[tuple[int, str]]], *rest: Any) -> Any:
        pooled.append(len([t for run in runs for t in run if t[1] == "txt"]))
        return real(job, runs, *rest)

    monkeypatch.setattr(parallel, "_pooled", spy)
    report = run_build(settings, now=NOW)
    assert report.published and not report.errors, report.problems
    assert pooled == [report.channels] and _text_feeds_match_the_catalog(settings) == pooled[0]


def test_check_reads_and_validates_a_registered_format(text_format: Format,
                                                       site_dir: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--config", str(site_dir / "config.toml"),
                                       "--strict"])
    assert result.exit_code == 0, result.output
    assert "0 errors" in result.output


def test_the_web_app_serves_a_registered_format(text_format: Format, build: Build,
                                                settings: Settings) -> None:
    assert build().published
    client: FlaskClient = create_app({"FEEDSERVER_SETTINGS": settings}).test_client()
    first = client.get("/feed.txt")
    assert first.status_code == 200
    assert first.headers["Content-Type"] == TEXT_TYPE
    assert first.data == (Path(settings.output_dir) / "feed.txt").read_bytes()
    again = client.get("/feed.txt", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_the_web_app_lets_other_sites_read_a_registered_format(
        text_format: Format, build: Build, settings: Settings) -> None:
    assert build().published
    manifest = load_manifest(Path(settings.output_dir))
    assert manifest["files"]["feed.txt"].get("format") == "txt"
    assert manifest["files"]["feed.txt"].get("cors") is True
    client: FlaskClient = create_app({"FEEDSERVER_SETTINGS": settings}).test_client()
    assert client.get("/feed.txt").headers.get("Access-Control-Allow-Origin") == "*"


def test_a_format_whose_check_fails_is_not_published(
        text_format: Format, build: Build, settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = Path(settings.output_dir)
    assert build().published
    before = {p: (out / p).read_bytes() for p in ("feed.txt", "feed.rss", "feed.atom")}
    write(Path(settings.seeds_dir) / "new.md", "---\ntitle: Fresh news\n---\nText.\n")

    def fails(channel: Channel, body: bytes) -> ReadBack:
        return ReadBack([Finding("injected: cannot read it back")])

    monkeypatch.setitem(FORMATS, "txt", replace(text_format, check=fails))
    report = build()
    checked = CliRunner().invoke(main, ["check", "--config", settings.config_path])
    failed = [p for p in report.errors if p.where == "channel all (feed.txt)"]
    assert [p.reason for p in failed] == ["injected: cannot read it back"]
    assert {p: (out / p).read_bytes() for p in before} == before  # the last good version
    assert checked.exit_code == 1
    assert "channel all (feed.txt): injected: cannot read it back" in checked.output
    monkeypatch.undo()
    assert build().published
    assert "Fresh news" in (out / "feed.txt").read_text(encoding="utf-8")


def test_a_renderer_that_raises_fails_its_channel_not_the_build(
        text_format: Format, build: Build, settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def raises(channel: Channel, ctx: Context, items: list[bytes]) -> bytes:
        raise ValueError("no paper left")

    monkeypatch.setitem(FORMATS, "txt", replace(text_format, channel=raises))
    report = build()
    assert "channel all (feed.txt)" in {p.where for p in report.errors}
    assert not (Path(settings.output_dir) / "feed.txt").exists()


def test_the_registry_keeps_its_order_and_refuses_a_taken_name_or_file() -> None:
    names = list(FORMATS)
    assert names == ["rss", "atom", "json"]
    with pytest.raises(ValueError, match=r"feed\.rss"):
        register(replace(TEXT, filename="feed.rss"))
    with pytest.raises(ValueError, match="'rss'"):
        register(replace(TEXT, name="rss"))
    assert list(FORMATS) == names
    register(TEXT)
    try:
        assert list(FORMATS) == [*names, "txt"] and FORMATS["txt"] is TEXT
    finally:
        unregister("txt")
    assert list(FORMATS) == names

"""The web app learns what a file is from the manifest, not from the renderers (issue 13).

The build records each file's feed format and CORS in the manifest
(``Rendered.format``/``cors``) and publishes the 404/410 pages under
``.feedserver/errors/``; the web app serves from those facts alone, so a format
it has never heard of is negotiated like the built-in ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from flask.testing import FlaskClient

from feedserver.build.run import BuildReport
from feedserver.config import Settings
from feedserver.core import layout
from feedserver.core.records import Rendered
from feedserver.publish.manifest import load_manifest
from feedserver.publish.output import publish
from feedserver.web.app import create_app

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
WHEN = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ERROR_TITLE = {code: title for code, (title, _) in layout.ERRORS.items()}


def test_the_manifest_records_feed_formats_cors_and_the_error_pages(
        build: Callable[..., BuildReport], settings: Settings) -> None:
    build()
    files = load_manifest(Path(settings.output_dir))["files"]
    assert files["feed.rss"]["format"] == "rss" and files["feed.rss"]["cors"] is True
    assert files["topics/energy/feed.json"]["format"] == "json"
    assert files["feeds.opml"]["cors"] is True and "format" not in files["feeds.opml"]
    assert files[layout.loader_path("energy")]["cors"] is True
    assert "cors" not in files["index.html"] and "format" not in files["index.html"]
    for code, page in layout.ERROR_PAGES.items():
        body = (Path(settings.output_dir) / page).read_text(encoding="utf-8")
        assert files[page]["media_type"].startswith("text/html")
        assert ERROR_TITLE[code] in body and settings.site_title in body


def test_the_published_error_page_is_the_answer_and_is_not_served_itself(
        client: FlaskClient, settings: Settings) -> None:
    published = (Path(settings.output_dir) / layout.ERROR_PAGES[404]).read_bytes()
    assert client.get("/no/such/page/").data == published
    for page in layout.ERROR_PAGES.values():
        assert client.get(f"/{page}").status_code == 404


def test_before_any_build_a_plain_404_page_is_answered(settings: Settings) -> None:
    client = create_app({"FEEDSERVER_SETTINGS": settings}).test_client()
    missing = client.get("/")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert b"Not found" in missing.data


def test_a_format_only_the_manifest_knows_is_negotiated_and_shared(
        tmp_path: Path, settings: Settings) -> None:
    """A feed file of an unknown format (its name and media type too) gets CORS, Vary:
    Accept and its preview page for browsers, from its manifest entry alone."""
    out = tmp_path / "site"
    settings = replace(settings, output_dir=str(out))
    publish(out, [
        Rendered("topics/x/feed.dummy", b"<dummy/>", "application/x-dummy+xml", WHEN, "x",
                 format="dummy", cors=True),
        Rendered("topics/x/feed.html", b"<p>preview</p>", "text/html; charset=utf-8", WHEN,
                 "x"),
        Rendered("topics/x/plain.xml", b"<plain/>", "application/x-dummy+xml", WHEN, "x"),
    ])
    client = create_app({"FEEDSERVER_SETTINGS": settings}).test_client()
    reader = client.get("/topics/x/feed.dummy", headers={"Accept": "application/x-dummy+xml"})
    assert reader.data == b"<dummy/>" and reader.headers["Access-Control-Allow-Origin"] == "*"
    assert reader.headers["Vary"] == "Accept"
    # text/html must beat the feed's own type: a tie goes to the feed.
    tie = client.get("/topics/x/feed.dummy",
                     headers={"Accept": "text/html, application/x-dummy+xml"})
    assert tie.data == b"<dummy/>"
    browser = client.get("/topics/x/feed.dummy", headers={"Accept": BROWSER})
    assert browser.data == b"<p>preview</p>"
    assert browser.headers["Cache-Control"].startswith("private, ")
    other = client.get("/topics/x/plain.xml", headers={"Accept": BROWSER})
    assert other.data == b"<plain/>" and "Access-Control-Allow-Origin" not in other.headers
    assert "Vary" not in other.headers


def test_a_version_1_manifest_is_not_trusted_for_skipping(
        build: Callable[..., BuildReport], settings: Settings) -> None:
    """Entries written before format and cors existed lack them: the next build goes
    through every channel once (writing no changed byte) and the entries get them."""
    build()
    path = Path(settings.output_dir) / layout.MANIFEST
    old = load_manifest(Path(settings.output_dir))  # written as one file, as then
    for entry in old["files"].values():
        entry.pop("format", None)
        entry.pop("cors", None)
    path.write_text(json.dumps({"version": 1, "files": old["files"], "gone": old["gone"],
                                "channels": old["channels"]}), encoding="utf-8")
    assert load_manifest(Path(settings.output_dir))["channels"] == {}
    again = build()
    assert again.rendered_channels == again.channels and again.written == []
    files = load_manifest(Path(settings.output_dir))["files"]
    assert files["feed.atom"]["format"] == "atom" and files["feed.atom"]["cors"] is True

"""Articles with media through a whole build: feeds, pages, the web app, incremental builds.

The seeds are the bundled ones plus ``posts/``: an article with a picture beside it, a
relative link to another article, an mp3 enclosure and a pdf attachment
(:mod:`tests.media_fixtures`).  What the feeds say is read back with feedparser and
``json`` and compared with the files written.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path

import feedparser
import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from feedserver.build.run import run_build
from feedserver.config import Podcast, Settings
from feedserver.web.app import create_app
from tests.conftest import NOW
from tests.media_fixtures import media_seeds, png

ARTICLE = "Solar farm tour"


@pytest.fixture
def media(site_dir: Path) -> dict[str, bytes]:
    return media_seeds(site_dir / "seeds")


def entry(feed: object, title: str = ARTICLE) -> dict[str, object]:
    return next(e for e in feed.entries if e.title == title)  # type: ignore[attr-defined]


def url_path(url: str, settings: Settings) -> str:
    assert url.startswith(settings.base_url)
    return "/" + url[len(settings.base_url):]


def test_every_feed_carries_the_picture_enclosure_and_attachment(
        settings: Settings, media: dict[str, bytes]) -> None:
    report = run_build(settings, now=NOW)
    assert report.published and not report.errors, report.errors
    out = Path(settings.output_dir)
    for name in ("posts/photos/panels.png", "posts/tour.mp3", "posts/slides.pdf"):
        assert (out / "media" / name).read_bytes() == media[name]
    sizes = {name.rsplit("/", 1)[1]: len(body) for name, body in media.items()}

    rss = feedparser.parse(out / "feed.rss")
    assert not rss.bozo
    item = entry(rss)
    [enclosure] = item["enclosures"]  # one <enclosure> per item: the RSS profile
    assert enclosure["href"].split("?")[0].endswith("/media/posts/tour.mp3")
    assert (enclosure["type"], int(enclosure["length"])) == ("audio/mpeg", sizes["tour.mp3"])
    [extra] = item["media_content"]
    assert extra["url"].split("?")[0].endswith("/media/posts/slides.pdf")
    assert (extra["type"], int(extra["filesize"])) == ("application/pdf", sizes["slides.pdf"])
    [thumb] = item["media_thumbnail"]
    assert thumb["url"].split("?")[0].endswith("/media/posts/photos/panels.png")
    assert (thumb["width"], thumb["height"]) == ("6", "4")

    atom = feedparser.parse(out / "feed.atom")
    assert not atom.bozo
    item = entry(atom)
    assert item["link"].endswith("/articles/solar-farm-tour/")
    assert [(e["type"], int(e["length"])) for e in item["enclosures"]] == [
        ("audio/mpeg", sizes["tour.mp3"]), ("application/pdf", sizes["slides.pdf"])]
    assert item["media_thumbnail"][0]["url"] == thumb["url"]

    doc = json.loads((out / "feed.json").read_text())
    item = next(i for i in doc["items"] if i["title"] == ARTICLE)
    assert item["image"] == item["banner_image"] == thumb["url"]
    assert [(a["mime_type"], a["size_in_bytes"], a.get("duration_in_seconds"), a.get("title"))
            for a in item["attachments"]] == [
        ("audio/mpeg", sizes["tour.mp3"], 3, None),
        ("application/pdf", sizes["slides.pdf"], None, "Slides of the tour")]
    # The relative link to the other article points at its page, in every format.
    follow = next(i for i in doc["items"] if i["title"] == "Solar farm follow-up")
    assert f'href="{follow["url"]}"' in item["content_html"]
    assert f'<img src="{thumb["url"]}" alt="A panel" width="6" height="4" loading="lazy">' \
        in item["content_html"]
    # Articles without media carry none of it.
    plain = next(i for i in doc["items"] if i["title"] != ARTICLE)
    assert not {"image", "banner_image", "attachments"} & set(plain)
    assert 'xmlns:media' not in (out / "topics/kazakhstan/feed.rss").read_text()


def test_the_app_serves_media_with_ranges_and_a_long_cache(
        settings: Settings, media: dict[str, bytes]) -> None:
    assert not run_build(settings, now=NOW).errors
    client: FlaskClient = create_app({"FEEDSERVER_SETTINGS": settings}).test_client()

    def get(path: str, headers: dict[str, str] | None = None) -> TestResponse:
        """One answer, read and closed (a media body is streamed from an open file)."""
        with client.get(path, headers=headers or {}) as answer:
            answer.get_data()
        return answer
    doc = json.loads(get("/feed.json").data)
    item = next(i for i in doc["items"] if i["title"] == ARTICLE)
    urls = [item["image"], *(a["url"] for a in item["attachments"])]
    bodies = [media["posts/photos/panels.png"], media["posts/tour.mp3"], media["posts/slides.pdf"]]
    for url, body, kind in zip(urls, bodies, ("image/png", "audio/mpeg", "application/pdf"),
                               strict=True):
        answer = get(url_path(url, settings))
        assert answer.status_code == 200 and answer.data == body
        assert answer.headers["Content-Type"] == kind
        assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert answer.headers["Accept-Ranges"] == "bytes" and answer.headers["ETag"]
        assert "Content-Encoding" not in answer.headers
        again = get(url_path(url, settings),
                           headers={"If-None-Match": answer.headers["ETag"]})
        assert again.status_code == 304
    mp3 = url_path(urls[1], settings)
    part = get(mp3, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == media["posts/tour.mp3"][100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(media['posts/tour.mp3'])}"
    tail = get(mp3, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.data == media["posts/tour.mp3"][-10:]
    stale = get(mp3, headers={"Range": "bytes=0-9", "If-Range": '"not-it"'})
    assert stale.status_code == 200 and stale.data == media["posts/tour.mp3"]
    assert get(mp3, {"Range": "bytes=999999-"}).status_code == 416
    # Without its version the same file may change: the feeds' short cache.
    bare = get(mp3.split("?")[0])
    assert bare.status_code == 200 and bare.headers["Cache-Control"] != \
        "public, max-age=31536000, immutable"
    page = get("/articles/solar-farm-tour/")
    assert "media-src 'self'" in page.headers["Content-Security-Policy"]


def test_the_article_page_shows_picture_player_and_attachment(
        settings: Settings, media: dict[str, bytes]) -> None:
    assert not run_build(settings, now=NOW).errors
    page = (Path(settings.output_dir) / "articles/solar-farm-tour/index.html").read_text()
    assert '<figure class="content picture"><img src="' in page
    assert 'alt="Rows of panels" width="6" height="4" loading="lazy"></figure>' in page
    assert '<audio controls preload="metadata" src="' in page and "tour.mp3?v=" in page
    assert 'type="application/pdf" download>Slides of the tour</a>' in page
    frame = (Path(settings.output_dir) / "embed/all/index.html").read_text()
    assert '<img class="thumb" src="' in frame


def test_a_changed_picture_republishes_the_items_that_show_it(
        settings: Settings, media: dict[str, bytes]) -> None:
    first = run_build(settings, now=NOW)
    out = Path(settings.output_dir)
    before = json.loads((out / "feed.json").read_text())
    (Path(settings.seeds_dir) / "posts/photos/panels.png").write_bytes(png(8, 5, (0, 90, 200)))
    second = run_build(settings, now=NOW)
    assert not second.errors
    after = json.loads((out / "feed.json").read_text())
    old = next(i for i in before["items"] if i["title"] == ARTICLE)
    new = next(i for i in after["items"] if i["title"] == ARTICLE)
    assert new["image"] != old["image"] and new["id"] == old["id"]
    assert 'width="8" height="5"' in new["content_html"]
    assert (out / "media/posts/photos/panels.png").read_bytes() == png(8, 5, (0, 90, 200))
    written = set(second.written)
    assert {"feed.json", "feed.rss", "topics/energy/feed.atom",
            "articles/solar-farm-tour/index.html", "media/posts/photos/panels.png"} <= written
    # Nothing else changed: the other channels, pages and media files keep their bytes.
    assert not {"topics/kazakhstan/feed.rss", "media/posts/tour.mp3",
                "articles/solar-farm-follow-up/index.html"} & written
    assert first.published and run_build(settings, now=NOW).written == []


def test_a_deleted_picture_is_reported_and_its_article_keeps_its_text(
        settings: Settings, media: dict[str, bytes]) -> None:
    assert not run_build(settings, now=NOW).errors
    (Path(settings.seeds_dir) / "posts/photos/panels.png").unlink()
    report = run_build(settings, now=NOW)
    assert report.published and not report.errors
    warnings = [(p.where, p.reason) for p in report.problems if p.severity == "warning"]
    assert ("posts/solar-tour.md", "image 'photos/panels.png': no file posts/photos/panels.png "
            "in the seeds folder; shown as text") in warnings
    out = Path(settings.output_dir)
    assert not (out / "media/posts/photos/panels.png").exists()
    doc = json.loads((out / "feed.json").read_text())
    item = next(i for i in doc["items"] if i["title"] == ARTICLE)
    assert "<img" not in item["content_html"] and "We walked the rows. A panel" in \
        item["content_html"]
    assert "image" not in item and len(item["attachments"]) == 2


def test_media_over_the_limit_is_a_problem_and_the_article_stays(
        settings: Settings, media: dict[str, bytes]) -> None:
    small = replace(settings, max_media_bytes=10_000)
    report = run_build(small, now=NOW)
    assert report.published
    assert any(p.where == "posts/tour.mp3" and "max_media_bytes" in p.reason
               for p in report.errors)
    doc = json.loads((Path(settings.output_dir) / "feed.json").read_text())
    item = next(i for i in doc["items"] if i["title"] == ARTICLE)
    assert [a["mime_type"] for a in item["attachments"]] == ["application/pdf"]


def test_a_podcast_channel_has_what_podcast_apps_require(
        settings: Settings, media: dict[str, bytes]) -> None:
    (Path(settings.seeds_dir) / "cover.png").write_bytes(png(1400, 1400))
    podcast = Podcast(channels=("energy",), image="cover.png", category="Technology",
                      author="Media desk", owner_email="desk@example.org")
    report = run_build(replace(settings, podcast=podcast), now=NOW)
    assert report.published and not report.errors
    out = Path(settings.output_dir)
    text = (out / "topics/energy/feed.rss").read_text()
    feed = feedparser.parse(out / "topics/energy/feed.rss")
    assert not feed.bozo
    # The artwork is a media file like the others: versioned, so cached for a year.
    artwork = feed.feed["image"]["href"]
    assert artwork.startswith(f"{settings.base_url}media/cover.png?v=")
    assert f'<itunes:image href="{artwork}"/>' in text
    assert feed.feed["tags"][0]["term"] == "Technology"
    assert feed.feed["author"] == "Media desk"
    assert feed.feed["publisher_detail"]["email"] == "desk@example.org"
    guid = uuid.uuid5(uuid.UUID("ead4c236-bf58-58c6-a2c6-a2b6e6a8b5e8"),
                      f"{settings.base_url}topics/energy/feed.rss".split("://")[1])
    assert f"<podcast:guid>{guid}</podcast:guid>" in text
    assert '<podcast:locked owner="desk@example.org">yes</podcast:locked>' in text
    assert "<itunes:explicit>false</itunes:explicit>" in text
    episode = entry(feed)
    assert episode["itunes_duration"] == "3"
    assert episode["enclosures"][0]["type"] == "audio/mpeg"
    # Other channels are not podcasts.
    assert "itunes" not in (out / "feed.rss").read_text()
    # New artwork (same name) is a new URL in the podcast's feed, and only there.
    (Path(settings.seeds_dir) / "cover.png").write_bytes(png(1400, 1400, (0, 0, 0)))
    again = run_build(replace(settings, podcast=podcast), now=NOW)
    assert not again.errors
    assert {"media/cover.png", "topics/energy/feed.rss"} <= set(again.written)
    assert "feed.rss" not in again.written and "topics/energy/feed.json" not in again.written
    renewed = feedparser.parse(out / "topics/energy/feed.rss").feed["image"]["href"]
    assert renewed.startswith(f"{settings.base_url}media/cover.png?v=") and renewed != artwork
    client = create_app({"FEEDSERVER_SETTINGS": settings}).test_client()
    with client.get(url_path(renewed, settings)) as answer:  # streamed: read, then closed
        answer.get_data()
    assert answer.status_code == 200 and "immutable" in answer.headers["Cache-Control"]
    assert answer.data == png(1400, 1400, (0, 0, 0))


def test_a_long_lived_build_memory_sees_a_changed_picture_on_its_next_full_scan(
        settings: Settings, media: dict[str, bytes]) -> None:
    from feedserver.build.memory import BuildMemory

    memory = BuildMemory.empty()
    assert not run_build(settings, now=NOW, memory=memory).errors
    (Path(settings.seeds_dir) / "posts/photos/panels.png").write_bytes(png(9, 9))
    # The watcher's media event asks for a full scan (changes=None): the picture, its
    # items and pages are republished from the same memory.
    report = run_build(settings, now=NOW, memory=memory, changes=None)
    assert {"media/posts/photos/panels.png", "feed.json",
            "articles/solar-farm-tour/index.html"} <= set(report.written)
    doc = json.loads((Path(settings.output_dir) / "feed.json").read_text())
    item = next(i for i in doc["items"] if i["title"] == ARTICLE)
    assert 'width="9" height="9"' in item["content_html"]
    # Between full scans a build of named article paths does not walk the media again.
    assert run_build(settings, now=NOW, memory=memory, changes=set()).written == []


def test_podcast_artwork_missing_from_the_seeds_folder_is_a_warning(
        settings: Settings, media: dict[str, bytes]) -> None:
    podcast = Podcast(channels=("energy",), image="art/missing.png")
    report = run_build(replace(settings, podcast=podcast), now=NOW)
    assert report.published and not report.errors
    assert ("config.toml", "podcast image 'art/missing.png': no file art/missing.png in the "
            "seeds folder; the feeds name its unversioned address") in \
        [(p.where, p.reason) for p in report.problems if p.severity == "warning"]


def test_a_media_answer_names_the_body_it_sends_while_a_publish_replaces_it(
        settings: Settings, media: dict[str, bytes]) -> None:
    """Issue 16: the ETag always matches the body, even in the moment between a publish
    renaming a new media file into place and the worker seeing the new manifest (the
    answer then carries the new bytes' own ETag and no stale Last-Modified)."""
    import hashlib
    import os

    assert not run_build(settings, now=NOW).errors
    app = create_app({"FEEDSERVER_SETTINGS": settings})
    client: FlaskClient = app.test_client()
    mp3 = "/media/posts/tour.mp3"
    with client.get(mp3) as before:
        old = before.get_data()
    assert old == media["posts/tour.mp3"]
    new = old[::-1] + b"replaced"
    target = Path(settings.output_dir) / mp3.lstrip("/")
    staged = target.with_name(".tour.mp3.tmp")
    staged.write_bytes(new)
    os.replace(staged, target)  # as a publish does, the manifest not yet replaced
    with client.get(mp3) as during:
        body = during.get_data()
    assert body == new
    assert during.headers["ETag"] == '"' + hashlib.sha256(new).hexdigest()[:32] + '"'
    assert during.headers["ETag"] != before.headers["ETag"]
    with client.get(mp3, headers={"If-None-Match": before.headers["ETag"]}) as after:
        assert after.status_code == 200 and after.get_data() == new

"""Relative references and front matter media, resolved against the article's file (issue 20)."""

from __future__ import annotations

from pathlib import Path

import mutagen
import pytest

from feedserver.build.media import discover
from feedserver.config import Settings
from feedserver.core.media import MediaFile, MediaIndex, media_of
from feedserver.core.records import SourceFile
from feedserver.parse.article import parse
from feedserver.parse.links import linked
from feedserver.render.formats import Seen
from feedserver.validate import compare
from tests.media_fixtures import FRAME_SECONDS, mp3, pdf, png

BASE = "http://127.0.0.1:8000/"
INDEX = MediaIndex(
    {"posts/pic.png": MediaFile("posts/pic.png", 120, "image/png", "aaaa11112222", None, 6, 4),
     "posts/ep.mp3": MediaFile("posts/ep.mp3", 4170, "audio/mpeg", "bbbb11112222", 42),
     "docs/slides.pdf": MediaFile("docs/slides.pdf", 580, "application/pdf", "cccc11112222")},
    frozenset({"posts/a.md", "posts/next.md", "docs/other.md"}),
    {"posts/huge.mp4": "media file is 9 bytes; the limit is 1 (max_media_bytes); not published"})


def parsed(text: str, path: str = "posts/a.md", index: MediaIndex = INDEX
           ) -> tuple[object, list[str]]:
    warnings: list[str] = []
    return parse(SourceFile(path, text.encode(), 0), Settings(), warnings, index), warnings


def test_a_picture_beside_the_article_is_its_media_url_with_size_and_lazy_loading() -> None:
    article, warnings = parsed("# T\n\nSee ![a chart](pic.png).\n")
    assert warnings == []
    assert ('<img src="http://127.0.0.1:8000/media/posts/pic.png?v=aaaa11112222" alt="a chart" '
            'width="6" height="4" loading="lazy">') in article.content_html
    assert article.needs == (("posts/pic.png", "aaaa11112222"),)


def test_a_link_to_another_article_becomes_its_page_once_it_has_a_slug() -> None:
    article, warnings = parsed("# T\n\n[next](next.md#part) and [other](../docs/other.md).\n")
    assert warnings == []
    html = linked(article.content_html, {"posts/next.md": f"{BASE}articles/next-one/",
                                         "docs/other.md": f"{BASE}articles/other/"})
    assert f'<a href="{BASE}articles/next-one/#part"' in html
    assert f'<a href="{BASE}articles/other/"' in html
    # An article that is not published (a draft) loses the link, keeps the text.
    assert linked(article.content_html, {}).count("<a>") == 2
    assert dict(article.needs) == {"posts/next.md": "article", "docs/other.md": "article"}


def test_unknown_targets_are_warnings_naming_the_link_and_stay_as_text() -> None:
    article, warnings = parsed("# T\n\n![lost chart](gone.png) [old](old.md) "
                               "![big](huge.mp4) [up](../../x.pdf) [site](../topics/)\n")
    html = article.content_html
    assert "<img" not in html and "lost chart" in html and "big" in html
    assert 'href="http://127.0.0.1:8000/topics/"' in html  # not a file: the usual rule
    assert "old" in html and "gone.png" not in html and "old.md" not in html
    assert warnings == [
        "image 'gone.png': no file posts/gone.png in the seeds folder; shown as text",
        "link 'old.md': no file posts/old.md in the seeds folder; shown as text",
        "image 'huge.mp4': media file is 9 bytes; the limit is 1 (max_media_bytes); "
        "not published; shown as text",
        "link '../../x.pdf': it points outside the seeds folder; shown as text",
    ]
    # What was looked up and missing is remembered: the file appearing re-parses.
    assert ("posts/gone.png", "") in article.needs


def test_front_matter_media_takes_type_length_and_duration_from_the_files() -> None:
    article, warnings = parsed("""---
title: Episode
image: pic.png
image_alt: The studio
audio: ep.mp3
enclosures:
  - url: https://cdn.example.org/ep.ogg
    length: 999
    duration: 61
attachments: [../docs/slides.pdf, missing.pdf]
---
Text.
""")
    assert warnings == ["front matter attachment 'missing.pdf': no file posts/missing.pdf in "
                        "the seeds folder; ignored"]
    items = media_of(article.media)
    assert [(m.role, m.url, m.media_type, m.length, m.title, m.duration) for m in items] == [
        ("image", f"{BASE}media/posts/pic.png?v=aaaa11112222", "image/png", 120, "The studio",
         None),
        ("enclosure", f"{BASE}media/posts/ep.mp3?v=bbbb11112222", "audio/mpeg", 4170, "", 42),
        ("enclosure", "https://cdn.example.org/ep.ogg", "audio/ogg", 999, "", 61),
        ("attachment", f"{BASE}media/docs/slides.pdf?v=cccc11112222", "application/pdf", 580,
         "", None),
    ]


def test_an_article_without_media_is_parsed_as_before() -> None:
    article, warnings = parsed("# T\n\n[a site](https://example.org/) and [x](#y).\n")
    alone, _ = parsed("# T\n\n[a site](https://example.org/) and [x](#y).\n",
                      index=MediaIndex({}))
    assert warnings == [] and article.media == () and article.needs == ()
    assert article == alone


def test_the_fixtures_are_real_media(tmp_path: Path) -> None:
    (tmp_path / "ep.mp3").write_bytes(mp3(3.0))
    info = mutagen.File(tmp_path / "ep.mp3").info
    assert abs(info.length - 3.0) < 2 * FRAME_SECONDS and info.bitrate == 128000
    assert png(6, 4).startswith(b"\x89PNG") and pdf().startswith(b"%PDF-1.4")


def test_discover_measures_files_and_refuses_what_is_over_the_limits(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    (seeds / "a" / ".hidden").mkdir(parents=True)
    (seeds / "a" / "pic.png").write_bytes(png(7, 5))
    (seeds / "a" / "ep.mp3").write_bytes(mp3(2.0))
    (seeds / "a" / "logo.svg").write_text("<svg onload='alert(1)'/>")
    (seeds / "a" / ".hidden" / "x.png").write_bytes(png())
    (seeds / "b.pdf").write_bytes(pdf())
    settings = Settings(seeds_dir=str(seeds), state_dir=str(tmp_path / "state"),
                        max_site_media_bytes=len(mp3(2.0)) + 10)
    found = discover(settings)
    assert set(found.files) == {"a/ep.mp3"}
    assert found.files["a/ep.mp3"].duration == 2
    assert found.files["a/ep.mp3"].media_type == "audio/mpeg"
    # The site's budget is spent in path order: the mp3 fits, the picture and the PDF
    # after it do not; the SVG is never published.
    assert set(found.refused) == {"a/pic.png", "b.pdf"}
    assert "max_site_media_bytes" in found.refused["a/pic.png"]
    problems = {p.where: p.reason for p in found.problems}
    assert "a/pic.png" in problems and "SVG" in problems["a/logo.svg"]
    assert not any("hidden" in path for path in [*found.files, *problems])
    roomy = discover(Settings(seeds_dir=str(seeds), state_dir=str(tmp_path / "state")))
    assert (roomy.files["a/pic.png"].width, roomy.files["a/pic.png"].height) == (7, 5)
    small = discover(Settings(seeds_dir=str(seeds), state_dir=str(tmp_path / "state"),
                              max_media_bytes=1000))
    assert "max_media_bytes" in small.refused["a/ep.mp3"] and "b.pdf" in small.files


def test_the_gate_compares_enclosures() -> None:
    article, _ = parsed("---\ntitle: T\naudio: ep.mp3\n---\nText.\n")
    from datetime import UTC, datetime

    from feedserver.core.records import Article
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    made = Article("id1", "t", "posts/a.md", "T", f"{BASE}articles/t/", "", "", moment, moment,
                   media=article.media)
    url = media_of(article.media)[0].url
    good = Seen("id1", "T", f"{BASE}articles/t/", {}, (url,))
    assert compare([good], (made,)) == []
    lost = compare([Seen("id1", "T", f"{BASE}articles/t/", {}, ())], (made,))
    assert len(lost) == 1 and lost[0].item == 0 and "enclosures" in lost[0].reason


def test_the_fingerprint_follows_the_media_files_not_the_site_address() -> None:
    text = "---\ntitle: T\nimage: pic.png\n---\nText.\n"
    here, _ = parsed(text)
    moved = parse(SourceFile("posts/a.md", text.encode(), 0),
                  Settings(base_url="https://news.example.org/"), [], INDEX)
    assert moved.fingerprint == here.fingerprint and moved.media != here.media
    other = MediaIndex({**INDEX.files, "posts/pic.png": MediaFile(
        "posts/pic.png", 121, "image/png", "dddd11112222", None, 6, 4)}, INDEX.articles)
    changed, _ = parsed(text, index=other)
    assert changed.fingerprint != here.fingerprint  # a new picture is an update


def test_raw_html_references_resolve_the_same_way() -> None:
    article, warnings = parsed('# T\n\n<p>Raw <img src="pic.png" alt="r"> <a href="next.md">n</a>'
                               ' <img src="gone.png" alt="lost"> <a href="/x">x</a></p>\n')
    html = article.content_html
    assert '<img src="http://127.0.0.1:8000/media/posts/pic.png?v=aaaa11112222" alt="r">' in html
    assert '<img alt="lost">' in html and 'href="http://127.0.0.1:8000/x"' in html
    assert f'<a href="{BASE}articles/n/"' in linked(html, {"posts/next.md": f"{BASE}articles/n/"})
    assert warnings == ["HTML reference 'gone.png': no file posts/gone.png in the seeds folder; "
                        "shown as text"]


def test_podcast_settings_are_checked_and_name_the_key(tmp_path: Path) -> None:
    import pytest

    from feedserver.config import Podcast, load_settings
    from feedserver.core.errors import ConfigError

    config = tmp_path / "config.toml"
    config.write_text('[podcast]\nchannels = ["all", "Energy News"]\nimage = "art/cover.png"\n'
                      'category = "Technology"\nexplicit = true\n')
    podcast = load_settings(config, env={}).podcast
    assert podcast == Podcast(channels=("all", "energy-news"), image="art/cover.png",
                              category="Technology", explicit=True)
    assert podcast.image_url(BASE) == f"{BASE}media/art/cover.png"
    for text, message in (('[podcast]\ncategory = "News"\n', "podcast.image is required"),
                          ('[podcast]\nimage = "a.png"\ncolour = 1\n', "unknown key 'colour'"),
                          ('[podcast]\nimage = "a.png"\ntype = "daily"\n', "'episodic' or"),
                          ('[podcast]\nimage = "a.png"\nchannels = "all"\n', "list of channel")):
        config.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_settings(config, env={})


@pytest.mark.parametrize("seed", range(3))
def test_media_type_reads_the_suffix_as_a_path_object_does(seed: int) -> None:
    """media_type finds the suffix by hand (a full scan asks it of every file): the same
    as ``PurePosixPath(path).suffix`` for every path a scan can list."""
    import random
    from pathlib import PurePosixPath

    from feedserver.core.media import TYPES, media_type

    rng = random.Random(seed)
    pieces = ["a", "b", ".", "..", "png", "PNG", "jpg", "mp3", "txt", "md", "x.y", " "]
    suffixes = list(TYPES)
    for _ in range(3000):
        parts = ["".join(rng.choice(pieces) for _ in range(rng.randrange(1, 4)))
                 for _ in range(rng.randrange(1, 4))]
        parts = [part for part in parts if part not in (".", "..")] or ["a"]  # as listed
        if rng.random() < 0.5:
            parts[-1] += rng.choice(suffixes).upper() if rng.random() < 0.3 \
                else rng.choice(suffixes)
        path = "/".join(parts)
        expected = TYPES.get(PurePosixPath(path).suffix.lower())
        assert media_type(path) == expected, path

"""One channel, or one item, must never stop the rest from publishing.

* A renderer or feedparser that raises fails only that channel, which keeps
  its last good files, in the parent and in forked workers alike.
* Mojibake in a title ("CafÃ© prices rise") is text a reader shows the way
  feedparser re-decodes it; it must not hold back a channel.  An item that
  really does not survive the round trip is left out of every channel in
  every format, with a problem naming its file.
* Past ``max_channels`` the smallest topics are left out, with one problem.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest

from feedserver.build.run import run_build
from feedserver.config import Settings, load_settings
from feedserver.core.records import Article, Channel
from feedserver.render import feeds
from feedserver.render.formats import FORMATS
from feedserver.validate import validate
from tests.conftest import NOW, misread_title, write
from tests.faultkit import tree

MOJIBAKE = {"cafe.txt": "CafÃ© prices rise", "uber.txt": "Ã¼ber die Brücke",
            "pound.txt": "Tea costs Â£5 now", "heat.txt": "Heat reaches 40Â°C"}


def make_site(root: Path, topics: int, articles: int, processes: int = 1) -> Settings:
    """``articles`` Markdown files over ``topics`` tags (two each), config without rules."""
    (root / "config.toml").write_text(
        'site_title = "Safety"\nbase_url = "https://feeds.example.org/"\n'
        f"auto_topics = false\nmax_items = 20\nbuild_processes = {processes}\n",
        encoding="utf-8")
    for index in range(articles):
        tags = f"t{index % topics:02d}, t{(index * 7 + 3) % topics:02d}"
        write(root / "seeds" / f"a{index:03d}.md",
              f"---\ntitle: Report {index}\ndate: 2026-10-{1 + index % 28:02d}T08:00:00Z\n"
              f"tags: [{tags}]\n---\nParagraph {index} about the grain harvest.\n",
              mtime=NOW.timestamp() - 86_400 + index)
    return load_settings(root / "config.toml", env={})


def parsed(out: Path, rel: str) -> Any:
    media = {".rss": "application/rss+xml", ".atom": "application/atom+xml"}
    return feedparser.parse(io.BytesIO((out / rel).read_bytes()),
                            response_headers={"content-type": media[Path(rel).suffix]})


def items_of(out: Path, folder: str) -> dict[str, list[str]]:
    """Each format's item titles for one channel folder ('' or 'topics/x/')."""
    data = json.loads((out / f"{folder}feed.json").read_bytes())
    return {"json": [i["title"] for i in data["items"]],
            "rss": [e.title for e in parsed(out, f"{folder}feed.rss").entries],
            "atom": [e.title for e in parsed(out, f"{folder}feed.atom").entries]}


# -- a renderer or feedparser that raises --------------------------------------------------------

def _boom_on(monkeypatch: pytest.MonkeyPatch, slug: str) -> None:
    """The Atom renderer raises for one channel (every process forked later inherits it)."""
    real = FORMATS["atom"]

    def channel(ch: Channel, ctx: feeds.Context, items: list[bytes]) -> bytes:
        if ch.slug == slug:
            raise ValueError("feedgen choked")
        return real.channel(ch, ctx, items)

    monkeypatch.setitem(FORMATS, "atom", replace(real, channel=channel))


@pytest.mark.parametrize("processes", [1, 2])
@pytest.mark.parametrize("topics", [6, 30])  # 30: more than workers.SPLIT_MAX tasks (a Pool)
def test_a_renderer_that_raises_fails_only_its_channel(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       processes: int, topics: int) -> None:
    settings = make_site(tmp_path, topics, 60, processes)
    assert run_build(settings, now=NOW).published
    out = Path(settings.output_dir)
    before = tree(out)
    for index in range(60):  # every channel changes: all are rendered again
        write(Path(settings.seeds_dir) / f"a{index:03d}.md",
              f"---\ntitle: Edited {index}\ndate: 2026-10-01T08:00:00Z\n"
              f"tags: [t{index % topics:02d}, t{(index * 7 + 3) % topics:02d}]\n---\nNew.\n")
    _boom_on(monkeypatch, "t01")
    report = run_build(settings, now=NOW + timedelta(hours=1))
    assert report.published
    failing = [p for p in report.errors if "t01" in p.where]
    assert failing and "feedgen choked" in failing[0].reason, report.problems
    after = tree(out)
    for name in ("feed.rss", "feed.atom", "feed.json"):
        rel = f"topics/t01/{name}"
        assert after[rel] == before[rel], rel  # its last good version, in every format
        assert after[f"topics/t02/{name}"] != before[f"topics/t02/{name}"]
    assert "Edited" in items_of(out, "topics/t02/")["atom"][0]


@pytest.mark.parametrize("processes", [1, 2])
def test_feedparser_raising_fails_only_its_channel(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   processes: int) -> None:
    settings = make_site(tmp_path, 6, 30, processes)
    real = feedparser.parse

    def parse(source: Any, *args: Any, **kwargs: Any) -> Any:
        body = source.getvalue() if isinstance(source, io.BytesIO) else b""
        if b'/topics/t03/feed.rss" rel="self"' in body:  # not its archive pages' 'current'
            raise RuntimeError("feedparser blew up")
        return real(source, *args, **kwargs)

    monkeypatch.setattr(feedparser, "parse", parse)
    report = run_build(settings, now=NOW)
    assert report.published
    assert [p.where for p in report.errors] == ["channel t03 (feed.rss)"], report.problems
    assert "feedparser blew up" in report.errors[0].reason
    out = Path(settings.output_dir)
    assert not (out / "topics/t03/feed.atom").exists()  # never published, nothing half-way
    assert (out / "topics/t04/feed.rss").is_file() and (out / "feed.rss").is_file()


# -- mojibake and items that do not round-trip -----------------------------------------------

@pytest.mark.parametrize("processes", [1, 2])
def test_mojibake_titles_do_not_hold_back_a_channel(tmp_path: Path, processes: int) -> None:
    settings = make_site(tmp_path, 3, 20, processes)
    for name, title in MOJIBAKE.items():
        write(Path(settings.seeds_dir) / name, f"{title}\n\nThe grain harvest story, "
              "told at length for the feed.\n", mtime=NOW.timestamp() - 60)
    write(Path(settings.seeds_dir) / "fine.txt", "Café naïve façade, Москва\n\nReal text.\n",
          mtime=NOW.timestamp() - 60)
    report = run_build(settings, now=NOW)
    assert not report.errors, report.errors
    repaired = {p.where for p in report.problems if "mojibake repaired" in p.reason}
    assert repaired == set(MOJIBAKE), report.problems  # a warning naming each file
    assert all(p.severity == "warning" for p in report.problems if p.where in repaired)
    out = Path(settings.output_dir)
    shown = items_of(out, "")
    assert shown["rss"] == shown["atom"] == shown["json"]  # the same text in every format
    assert len(shown["json"]) == 20  # max_items, none held back
    for want in ("Café prices rise", "über die Brücke", "Tea costs £5 now",
                 "Heat reaches 40°C", "Café naïve façade, Москва"):
        assert want in shown["json"], shown["json"]
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "Café prices rise" in page and "CafÃ©" not in page


@pytest.mark.parametrize("title", [*MOJIBAKE.values(), " padded ", "Caf\x80 \x99 C1"])
def test_the_gate_compares_titles_as_feedparser_shows_them(title: str) -> None:
    """Mojibake that reaches the gate anyway (no repair) does not fail it."""
    when = NOW - timedelta(days=1)
    article = Article("urn:x:1", "s", "s.txt", title, "https://x.example/articles/s/",
                      "<p>x</p>", "x", when, when)
    channel = Channel("all", "S", "S", "", "https://x.example/", (article,), when)
    ctx = feeds.Context("S", "https://x.example/", "en", "", 30, {})
    for name, fmt in FORMATS.items():
        assert validate(channel, name, feeds.render(channel, fmt, ctx)) == [], name


@pytest.mark.parametrize("processes", [1, 2])
def test_an_item_that_does_not_round_trip_is_left_out_everywhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: int) -> None:
    settings = make_site(tmp_path, 3, 40, processes)
    write(Path(settings.seeds_dir) / "odd.md",
          "---\ntitle: Odd one\ndate: 2026-10-29T08:00:00Z\ntags: [t00]\n---\nText.\n",
          mtime=NOW.timestamp() - 60)
    restore = misread_title(monkeypatch, "Odd one", "Odd one, read otherwise")
    report = run_build(settings, now=NOW)
    left_out = [p for p in report.errors if p.where == "odd.md"]
    assert len(left_out) == 1, report.problems
    assert "left out" in left_out[0].reason and "title" in left_out[0].reason
    assert all(p.where == "odd.md" for p in report.errors), report.errors
    out = Path(settings.output_dir)
    restore()
    for folder in ("", "topics/t00/"):
        shown = items_of(out, folder)
        assert shown["rss"] == shown["atom"] == shown["json"], folder  # all three alike
        assert "Odd one" not in shown["json"] and shown["json"], folder
    assert "Report 39" in items_of(out, "")["json"]


def test_a_channel_whose_every_item_is_left_out_keeps_a_plausible_date(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A topic whose only article does not round trip is published without items, dated
    by its listing (its article's update), not 1970: the W3C validator calls that an
    implausible date, and readers would sort the channel as never updated."""
    settings = make_site(tmp_path, 3, 6)
    write(Path(settings.seeds_dir) / "odd.md",
          "---\ntitle: Odd one\ndate: 2026-10-29T08:00:00Z\ntags: [solo]\n---\nText.\n",
          mtime=NOW.timestamp() - 60)
    restore = misread_title(monkeypatch, "Odd one", "Odd one, read otherwise")
    report = run_build(settings, now=NOW)
    assert [p.where for p in report.errors] == ["odd.md"], report.problems
    restore()
    out = Path(settings.output_dir)
    assert items_of(out, "topics/solo/") == {"json": [], "rss": [], "atom": []}
    for rel in ("topics/solo/feed.atom", "topics/solo/feed.rss"):
        assert parsed(out, rel).feed.updated_parsed[:6] == (2026, 10, 29, 8, 0, 0), rel


# -- a limit on channels --------------------------------------------------------------------

def test_channels_are_limited_to_max_channels(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'base_url = "https://feeds.example.org/"\nauto_topics = false\n', encoding="utf-8")
    for index in range(40):  # 40 tiny files with 50 tags each: 2,000 topics
        tags = ", ".join(f"f{index}-tag{t}" for t in range(48))
        write(tmp_path / "seeds" / f"s{index:02d}.md",
              f"---\ntitle: Tiny {index}\ntags: [{tags}, common, shared{index % 2}]\n---\nx\n")
    settings = load_settings(tmp_path / "config.toml", env={})
    assert settings.max_channels == 1000
    report = run_build(replace(settings, max_channels=10), now=NOW)
    assert report.channels == 10
    limits = [p for p in report.problems if "max_channels" in p.reason]
    # 'all', the one language's channel and 8 topics.
    assert len(limits) == 1 and "1,915 of 1,923" in limits[0].reason, limits
    topics = {p.name for p in (Path(settings.output_dir) / "topics").iterdir() if p.is_dir()}
    assert {"common", "shared0", "shared1"} <= topics and len(topics) == 8, topics
    feed = parsed(Path(settings.output_dir), "feed.atom")
    terms = {t.term for e in feed.entries for t in e.get("tags", [])}
    assert terms and terms <= topics  # no item names a topic that has no channel

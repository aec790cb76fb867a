"""Automatic topics and per-language channels, through whole builds of the bundled seeds
with no ``[topics.*]`` in the config."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from feedserver.build.memory import BuildMemory
from feedserver.build.run import BuildReport, run_build
from feedserver.config import Settings, load_settings
from tests.conftest import NOW, ROOT, SEED, parse_feed, write

RUSSIAN = """---
title: Казахстан и Россия обсудили транзит газа
date: 2026-11-20T10:00:00+00:00
---
Президент Казахстана провёл переговоры с президентом России. Стороны обсудили транзит
российского газа через территорию Казахстана и строительство атомной электростанции.
Казахстанско-российские отношения развиваются, а Россия остаётся главным торговым
партнёром Казахстана.
"""
SEED_TITLE = (ROOT / "seeds" / SEED).read_text(encoding="utf-8").split("\n", 1)[0].strip()
ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def untopical_config(extra: str = "") -> str:
    """The shipped config.toml without its [topics.*] tables (plus ``extra``)."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text[:text.index("[topics.")] if "[topics." in text else text
    head, _, debris = text.partition("[debris]")
    return f"{head}{extra}\n[debris]{debris}"


@pytest.fixture
def make_site(site_dir: Path) -> Callable[..., tuple[Settings, BuildReport]]:
    write(site_dir / "seeds" / "ru" / "gaz.md", RUSSIAN)

    def run(extra: str = "") -> tuple[Settings, BuildReport]:
        (site_dir / "config.toml").write_text(untopical_config(extra), encoding="utf-8")
        settings = load_settings(site_dir / "config.toml", env={})
        assert not settings.topics or "[topics." in extra
        report = run_build(settings, now=NOW)
        assert report.published and not report.errors, report.problems
        return settings, report

    return run


def titles(path: Path) -> set[str]:
    return {e.title for e in parse_feed(path).entries}


def catalog(out: Path) -> dict[str, dict[str, object]]:
    doc = json.loads((out / "topics.json").read_text(encoding="utf-8"))
    return {c["slug"]: c for c in doc["channels"]}


def test_the_seed_is_in_kazakhstan_and_russia_with_no_topic_config(make_site: Callable[
        ..., tuple[Settings, BuildReport]]) -> None:
    settings, _ = make_site()
    out = Path(settings.output_dir)
    for place in ("kazakhstan", "russia"):
        for suffix in ("rss", "atom"):
            assert SEED_TITLE in titles(out / "topics" / place / f"feed.{suffix}")
    channels = catalog(out)
    assert channels["kazakhstan"]["kind"] == channels["russia"]["kind"] == "place"
    # Named in passing in the seed (and nowhere else): no channel.
    assert not {"uzbekistan", "astana", "moscow", "kostanay", "izvestia"} & set(channels)
    # Every topic the seed's item names has a channel: none made from a passing word.
    seed_item = next(e for e in parse_feed(out / "feed.atom").entries if e.title == SEED_TITLE)
    named = {t.term for t in seed_item.tags}
    assert {"kazakhstan", "russia"} <= named
    assert all((out / "topics" / slug / "feed.rss").is_file() for slug in named)


def test_a_russian_article_has_its_language_channel_and_xml_lang(make_site: Callable[
        ..., tuple[Settings, BuildReport]]) -> None:
    settings, _ = make_site()
    out = Path(settings.output_dir)
    russian = "Казахстан и Россия обсудили транзит газа"
    assert titles(out / "languages" / "ru" / "feed.atom") == {russian}
    assert russian not in titles(out / "languages" / "en" / "feed.atom")
    assert SEED_TITLE in titles(out / "languages" / "en" / "feed.rss")
    for folder, declared in (("languages/ru", "ru"), ("", "en")):
        root = etree.fromstring((out / folder / "feed.atom").read_bytes())
        assert root.get(XML_LANG) == declared  # one language: declared; mixed: the site's
        entries = {e.findtext(f"{ATOM}title"): e for e in root.iter(f"{ATOM}entry")}
        assert entries[russian].get(XML_LANG) == "ru"
        assert parse_feed(out / folder / "feed.atom").entries[0].title_detail.language \
            in {"ru", "en"}
    ru_rss = parse_feed(out / "languages" / "ru" / "feed.rss")
    assert ru_rss.feed.language == "ru"
    doc = json.loads((out / "languages" / "ru" / "feed.json").read_text(encoding="utf-8"))
    assert doc["language"] == "ru" and doc["items"][0]["language"] == "ru"
    channels = catalog(out)
    assert channels["lang-ru"]["kind"] == "language" and channels["lang-ru"]["language"] == "ru"
    assert channels["lang-ru"]["html_url"].endswith("/languages/ru/")
    opml = (out / "feeds.opml").read_text(encoding="utf-8")
    assert "languages/ru/feed.rss" in opml and "languages/en/feed.rss" in opml


def test_pages_speak_their_articles_language(make_site: Callable[
        ..., tuple[Settings, BuildReport]]) -> None:
    settings, _ = make_site()
    out = Path(settings.output_dir)
    pages = {p: p.read_text(encoding="utf-8") for p in (out / "articles").glob("*/index.html")}
    russian = next(text for text in pages.values() if "транзит газа" in text)
    assert '<html lang="ru">' in russian
    assert "20 ноября 2026" in russian and "Опубликовано" in russian
    english = next(text for text in pages.values() if SEED_TITLE in text)
    assert '<html lang="en">' in english and "Published" in english
    frame = (out / "embed" / "lang-ru" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="ru">' in frame and re.search(r"20 нояб\.? 2026", frame)
    ru_page = (out / "languages" / "ru" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="ru">' in ru_page
    topics_page = (out / "topics" / "index.html").read_text(encoding="utf-8")
    assert "place" in topics_page and "languages/ru/" in topics_page


def test_config_renames_and_bans_detected_topics(make_site: Callable[
        ..., tuple[Settings, BuildReport]]) -> None:
    settings, _ = make_site('auto_topics_exclude = ["Russia"]\n'
                            '[topics.qazaqstan]\nname = "Qazaqstan"\nalso = ["Kazakhstan"]\n'
                            'phrases = ["no such phrase"]\n')
    out = Path(settings.output_dir)
    channels = catalog(out)
    assert "russia" not in channels and "kazakhstan" not in channels
    assert SEED_TITLE in titles(out / "topics" / "qazaqstan" / "feed.atom")
    assert str(channels["qazaqstan"]["title"]).endswith("Qazaqstan")
    assert channels["qazaqstan"]["kind"] == "place"
    assert not (out / "topics" / "russia" / "feed.rss").exists()
    seed_item = next(e for e in parse_feed(out / "feed.atom").entries if e.title == SEED_TITLE)
    assert "russia" not in {t.term for t in seed_item.tags}
    # A front matter tag config gathers under its topic ('Kazakhstan' in the solar farm's).
    assert len(titles(out / "topics" / "qazaqstan" / "feed.rss")) == 3


def test_a_detected_topic_waits_for_min_topic_articles(make_site: Callable[
        ..., tuple[Settings, BuildReport]]) -> None:
    settings, _ = make_site("min_topic_articles = 3\n")
    channels = catalog(Path(settings.output_dir))
    assert "russia" not in channels  # two articles: not enough
    assert "kazakhstan" in channels  # three
    assert channels["open-web"]["items"] == 1  # named in front matter: never waits
    settings, _ = make_site("detect_topics = false\n")
    channels = catalog(Path(settings.output_dir))
    assert "russia" not in channels and "open-web" in channels


def test_a_warm_rebuild_keeps_trimmed_articles_and_renders_nothing(make_site: Callable[
        ..., tuple[Settings, BuildReport]]) -> None:
    """The seed's detected person has one article: trimmed off it, by the very same object
    in the next build of a long-lived process, so no channel is signed anew."""
    settings, _ = make_site()
    memory = BuildMemory.empty()
    first = run_build(settings, now=NOW, memory=memory)
    trimmed = {k: v[2] for k, v in memory.articles.items() if k.startswith("\0trim\0")}
    assert trimmed and all("kassym-jomart-tokayev" not in a.topics for a in trimmed.values())
    again = run_build(settings, now=NOW, memory=memory)
    assert first.published and again.rendered_channels == 0
    assert all(memory.articles[k][2] is a for k, a in trimmed.items())

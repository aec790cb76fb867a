"""Languages in headless Chromium: a real ``feedserver serve`` over the bundled seeds plus
a Russian article with no ``lang`` in its front matter (detected), framed by another
origin; what the browser shows is compared with the feeds the same server sends."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from typing import Any

import feedparser
import pytest

from tests.browser import Watch, chromium, feedserver, fetch, missing_reason, screenshot
from tests.browser import static_site as host_site
from tests.conftest import ROOT, recent, write
from tests.system.test_serve_e2e import free_port

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or "")

TITLE = "Казахстан и Россия обсудили транзит газа"
MONTHS = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
          "сентября", "октября", "ноября", "декабря")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("site")
    shutil.copytree(ROOT / "seeds", root / "seeds")
    shutil.copy(ROOT / "config.toml", root / "config.toml")
    write(root / "seeds" / "ru" / "gaz.md",
          f"---\ntitle: {TITLE}\ndate: {recent()}\n---\n"
          "Президент Казахстана провёл переговоры с президентом России. Стороны обсудили "
          "транзит российского газа через территорию Казахстана.\n")
    with feedserver(root / "config.toml", free_port()) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as context:
        yield context


def test_a_russian_channel_frame_and_article_page_speak_russian(
        server: str, browser: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    kind, body = fetch(f"{server}languages/ru/feed.json")
    assert kind == "application/feed+json; charset=utf-8"
    doc = json.loads(body)
    assert doc["language"] == "ru" and [i["title"] for i in doc["items"]] == [TITLE]
    _, atom = fetch(f"{server}languages/ru/feed.atom", "application/atom+xml")
    assert b'xml:lang="ru"' in atom
    assert feedparser.parse(io.BytesIO(atom)).entries[0].title == TITLE
    item = doc["items"][0]
    folder = tmp_path_factory.mktemp("host")
    (folder / "frame.html").write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" '
        f'href="data:,"><title>Host</title></head><body><iframe src="{server}embed/lang-ru/" '
        'title="Русский" width="100%" height="300"></iframe></body></html>', encoding="utf-8")
    watch = Watch()
    tab = watch.attach(browser.new_page())
    with host_site(folder) as host:
        tab.goto(f"{host}frame.html")
        tab.frame_locator("iframe").locator("ol.headlines a").first.wait_for()
        inner = next(f for f in tab.frames if f.url == f"{server}embed/lang-ru/")
        assert inner.evaluate("document.documentElement.lang") == "ru"
        shown = inner.eval_on_selector("ol.headlines time", "e => e.textContent")
        assert any(month[:3] in shown for month in MONTHS), shown
        assert inner.eval_on_selector("ol.headlines a", "e => e.textContent") == TITLE
        screenshot(tab, "languages-iframe-ru")
    tab.goto(item["url"])
    assert tab.evaluate("document.documentElement.lang") == "ru"
    meta = tab.eval_on_selector("p.meta", "e => e.textContent")
    assert meta.startswith("Опубликовано") and any(m in meta for m in MONTHS), meta
    screenshot(tab, "languages-article-ru")
    assert watch.page_errors == [] and watch.dialogs == []
    tab.close()


def test_the_topics_page_lists_languages_and_kinds(server: str, browser: Any) -> None:
    tab = browser.new_page()
    tab.goto(f"{server}topics/")
    links = tab.eval_on_selector_all("ul.languages a", "els => els.map(e => e.href)")
    assert f"{server}languages/ru/" in links and f"{server}languages/en/" in links
    assert "place" in tab.eval_on_selector("ul.channels", "e => e.textContent")
    tab.close()

"""The exported nginx config's Accept rule agrees with the app's (web.negotiate).

nginx cannot compare q values, so the config's map is a regex chain that must give
the same answer as :func:`prefers_html` for the headers browsers and feed readers
send; the regexes are run here with Python's ``re`` (nginx's PCRE reads them the
same way), and the one kind of header where they knowingly differ is pinned.
"""

from __future__ import annotations

import re

import pytest

from feedserver.config import Settings
from feedserver.publish import nginx
from feedserver.web.negotiate import feed_like, prefers_html

FEEDS = ("application/rss+xml; charset=utf-8", "application/atom+xml; charset=utf-8",
         "application/feed+json; charset=utf-8")
AGREE = [
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",  # Firefox
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",  # Chrome
    "text/html, application/rss+xml;q=0.5",
    "TEXT/HTML", "text/html;q=1.0, */*;q=0.1",
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8",
    "*/*", "", "text/html, */*", "text/html, application/rss+xml, */*",
    "application/xml, text/html", "text/html;q=0, */*", "text/*", "text/html, text/*",
    "text/html, application/*", "text/html, application/json", "text/plain",
    "text/html-ish", "text/html" + ", x/y" * 500,
]


def rule(text: str) -> list[tuple[re.Pattern[str], str]]:
    """The ``$feedserver_html`` map's regex rows, in order, as Python patterns."""
    block = text.split("map $http_accept $feedserver_html {")[1].split("}\n")[0]
    rows = []
    for line in block.splitlines():
        found = re.fullmatch(r'\s*"(~\*?)(.*)" (\d);', line)
        if found:
            pattern = found[2].replace("\\\\", "\\")
            rows.append((re.compile(pattern, re.I if found[1] == "~*" else 0), found[3]))
    return rows


def nginx_says(rows: list[tuple[re.Pattern[str], str]], accept: str) -> bool:
    return next((value for pattern, value in rows if pattern.search(accept)), "0") == "1"


@pytest.fixture(scope="module")
def rows() -> list[tuple[re.Pattern[str], str]]:
    data = {"files": {p: {"media_type": m, "format": p.rpartition(".")[2]}
                      for p, m in zip(("feed.rss", "feed.atom", "feed.json"), FEEDS,
                                      strict=True)}}
    found = rule(nginx.render(Settings(), data))
    assert len(found) == 3
    return found


@pytest.mark.parametrize("accept", AGREE)
def test_the_accept_rule_matches_the_app(rows: list[tuple[re.Pattern[str], str]],
                                         accept: str) -> None:
    assert nginx_says(rows, accept) == prefers_html(accept, feed_like(FEEDS)), accept


def test_the_known_difference_is_a_header_no_browser_sends(
        rows: list[tuple[re.Pattern[str], str]]) -> None:
    accept = "text/html;q=0.9, */*;q=0.8"  # HTML preferred, but itself below 1
    assert prefers_html(accept, feed_like(FEEDS)) and not nginx_says(rows, accept)


def test_paths_nginx_could_misread_are_left_out() -> None:
    data = {"files": {"a$b/feed.rss": {"media_type": FEEDS[0], "format": "rss"},
                      'q"uote.html': {"media_type": "text/html"}},
            "gone": ["x y/index.html", "old/feed.rss"]}
    text = nginx.render(Settings(), data)
    assert "a$b" not in text and 'q\\"uote' not in text and "x y" not in text
    assert '"/old/feed.rss" 1;' in text


def test_a_full_archive_page_gets_the_apps_immutable_cache() -> None:
    """Full archive pages (RFC 5005, ``immutable`` in the manifest) are cached as the app
    caches them; the newest page and the subscription feed keep their channel's."""
    from feedserver.core.freshness import ARCHIVE_CACHE

    def entry(path: str, **extra: object) -> dict[str, object]:
        return {"media_type": FEEDS[1], "format": "atom", "channel": "all", **extra}
    data = {"files": {"feed.atom": entry("feed.atom", max_age=120),
                      "archive/1/feed.atom": entry("archive/1/feed.atom", immutable=True),
                      "archive/2/feed.atom": entry("archive/2/feed.atom", max_age=120)}}
    text = nginx.render(Settings(), data)
    block = text.split("map $uri $feedserver_cache {")[1].split("}\n")[0]
    assert f'"/archive/1/feed.atom" "{ARCHIVE_CACHE}";' in block
    assert '"/archive/2/feed.atom" "public, max-age=120";' in block
    assert '"/feed.atom" "public, max-age=120";' in block

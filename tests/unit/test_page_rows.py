"""The home and topics pages' channel lists, each row rendered once while it stays the
same (render/pages.py ``_row_html``): a page drawn with rows kept from earlier pages is
the page drawn afresh, byte for byte, as the rows change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from feedserver.config import Settings
from feedserver.core.layout import INDEX, TOPICS_INDEX
from feedserver.render import pages
from feedserver.render.pages import render_pages
from tests.unit.test_embed import ARTICLES, make_site

MORE = {
    **ARTICLES,
    "d.md": "---\ntitle: More wind\ndate: 2026-11-04\ntopics: [energy, weather]\n---\nFour.\n",
    "e.md": "---\ntitle: Windkraft\ndate: 2026-11-05\nlang: de\ntopics: [energy]\n---\n"
            "Der Wind weht über das Land und die Turbinen drehen sich.\n",
}


def lists(settings: Settings, files: dict[str, str]) -> dict[str, bytes]:
    made = {page.path: page.body for page in render_pages(make_site(settings, files))}
    return {path: made[path] for path in (INDEX, TOPICS_INDEX)}


def afresh(settings: Settings, files: dict[str, str]) -> dict[str, bytes]:
    pages._row_html.cache_clear()
    pages._feed_links.cache_clear()
    return lists(settings, files)


def test_rows_kept_from_earlier_pages_draw_the_same_bytes(settings: Settings) -> None:
    first = afresh(settings, ARTICLES)
    assert lists(settings, ARTICLES) == first  # every row from the cache
    # Counts, dates, a new topic and a language list change: the kept rows of the
    # first site must not stand in for the second's.
    warm = lists(settings, MORE)
    cold = afresh(settings, MORE)
    assert warm == cold and warm != first
    topics = cold[TOPICS_INDEX].decode()
    assert "topics/weather/" in topics and 'lang="de">German' in topics  # new rows
    assert "Energy</a> <small>subject, 4 items" in topics  # a row that changed
    assert pages._row_html.cache_info().hits == 0  # afresh: nothing was kept
    assert lists(settings, MORE) == cold and pages._row_html.cache_info().hits > 0


def test_a_date_in_another_zone_is_not_taken_for_the_same_row() -> None:
    """Equal instants in two zones are equal datetimes, and each is shown in its own
    zone's day: the zone is part of the kept row's key."""
    late = datetime(2026, 11, 4, 23, 30, tzinfo=UTC)
    east = late.astimezone(timezone(timedelta(hours=2)))  # 5 November, 01:30
    assert late == east
    rows = [pages.TopicRow("https://example.org/topics/x/", "X", "subject", 2, moment, "",
                           ()) for moment in (late, east)]
    shown = [str(pages._rows_html("_row_topic.html", [row], "en")) for row in rows]
    assert "4 November 2026" in shown[0] and "5 November 2026" in shown[1]

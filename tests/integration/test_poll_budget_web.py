"""The poll budget in the web app (Flask test client): what counts and what a refusal says."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from flask.testing import FlaskClient

from feedserver.build.run import BuildReport
from feedserver.config import Settings
from feedserver.web.app import create_app

BUDGET = 2
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def polled(build: Callable[..., BuildReport], settings: Settings) -> FlaskClient:
    report = build()
    assert report.published and not report.errors
    on = replace(settings, poll_budget=BUDGET)
    return create_app({"FEEDSERVER_SETTINGS": on}).test_client()


def test_full_gets_past_the_budget_get_429(polled: FlaskClient) -> None:
    first = polled.get("/topics/energy/feed.atom")
    max_age = int(first.headers["Cache-Control"].rpartition("=")[2])
    assert polled.get("/topics/energy/feed.json").status_code == 200  # same channel
    refused = polled.get("/topics/energy/feed.rss")
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= -(-max_age // BUDGET)  # one step
    assert refused.headers["Cache-Control"] == "no-store"
    assert refused.mimetype == "text/plain"
    assert refused.headers["Access-Control-Allow-Origin"] == "*"  # a script can read why
    assert "Retry-After" in refused.headers["Access-Control-Expose-Headers"]
    assert f"fresh for {max_age} seconds" in refused.get_data(as_text=True)
    # The validators it got still work: 304, as often as it likes.
    for _ in range(5):
        assert polled.get("/topics/energy/feed.atom",
                          headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
        assert polled.get("/topics/energy/feed.atom", headers={
            "If-Modified-Since": first.headers["Last-Modified"]}).status_code == 304


def test_head_pages_and_previews_are_not_counted(polled: FlaskClient) -> None:
    for _ in range(BUDGET * 3):
        assert polled.head("/feed.rss").status_code == 200
        assert polled.get("/feed.rss", headers={"Accept": BROWSER}).mimetype == "text/html"
        assert polled.get("/").status_code == 200
    assert [polled.get("/feed.rss").status_code for _ in range(BUDGET + 1)] == \
        [200] * BUDGET + [429]


def test_a_changed_body_is_a_full_request(polled: FlaskClient) -> None:
    """A validator that no longer matches gets the whole feed, and that counts."""
    stale = {"If-None-Match": '"not-the-current-etag"'}
    statuses = [polled.get("/feed.rss", headers=stale).status_code for _ in range(BUDGET + 1)]
    assert statuses == [200] * BUDGET + [429]

"""HTTP details of the web app (issues 11 and 12), through Flask's test client.

* 304 and CORS 204 answers never label themselves ``text/html``: a cache that
  refreshes stored headers from a 304 must not relabel a feed as HTML.
* The 404 and 410 pages use the site's stylesheet and layout.
* ``/healthz`` shows counts and status only: no server paths, no config text.
* The folder redirect never builds ``Location`` from ``SCRIPT_NAME``.
* A build that has been running for too long shows as ``stuck`` in ``/healthz``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from flask.testing import FlaskClient

from feedserver.build.run import BuildReport
from feedserver.config import Settings
from feedserver.publish.output import STATUS
from feedserver.web.app import create_app
from tests.integration.test_web import Links

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


# -- 304 and 204 carry no HTML label ----------------------------------------------------------

@pytest.mark.parametrize("path,accept", [
    ("/feed.rss", ""), ("/topics/energy/feed.atom", ""), ("/feed.json", ""),
    ("/feeds.opml", ""), ("/", ""), ("/feed.rss", BROWSER), ("/static/style.css", ""),
])
def test_a_304_sends_no_content_type(client: FlaskClient, path: str, accept: str) -> None:
    """RFC 9110 §15.4.5: a 304 sends the validators and caching headers, not a media type."""
    headers = {"Accept": accept} if accept else {}
    first = client.get(path, headers=headers)
    assert first.status_code == 200
    for condition in ({"If-None-Match": first.headers["ETag"]},
                      {"If-Modified-Since": first.headers["Last-Modified"]}):
        again = client.get(path, headers={**headers, **condition})
        assert again.status_code == 304, condition
        assert "Content-Type" not in again.headers, (path, again.headers)
        assert again.data == b""
        assert again.headers["ETag"] == first.headers["ETag"]


@pytest.mark.parametrize("path", ["/feed.json", "/topics/energy/feed.rss", "/", "/topics/"])
def test_a_cors_preflight_sends_no_content_type(client: FlaskClient, path: str) -> None:
    answer = client.options(path, headers={"Origin": "https://elsewhere.example",
                                           "Access-Control-Request-Method": "GET"})
    assert answer.status_code == 204 and answer.data == b""
    assert "Content-Type" not in answer.headers, answer.headers


def test_a_redirect_sends_no_html_label_for_its_empty_body(client: FlaskClient) -> None:
    answer = client.get("/topics")
    assert answer.status_code == 308 and answer.data == b""
    assert "Content-Type" not in answer.headers


# -- 404 and 410 look like the site -----------------------------------------------------------

def stylesheet_of(client: FlaskClient, html: str, page: str) -> Any:
    hrefs = [link["href"] for link in Links(html).links if link.get("rel") == "stylesheet"]
    assert len(hrefs) == 1, html
    target = urlsplit(urljoin(f"http://localhost{page}", hrefs[0]))
    return client.get(target.path, query_string=target.query)


def test_the_404_page_uses_the_site_stylesheet_and_layout(client: FlaskClient,
                                                         settings: Settings) -> None:
    home = client.get("/").get_data(as_text=True)
    missing = client.get("/no/such/page/")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    html = missing.get_data(as_text=True)
    css = stylesheet_of(client, html, "/no/such/page/")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert css.data == stylesheet_of(client, home, "/").data
    assert '<header class="site">' in html and '<footer class="site">' in html
    assert "Not found" in html and settings.site_title in html
    policy = missing.headers["Content-Security-Policy"]
    assert "style-src 'self'" in policy and "script-src" not in policy
    assert "no/such" not in html  # nothing from the request is echoed


def test_the_410_page_is_styled_too(settings: Settings, build: Callable[..., BuildReport],
                                    client: FlaskClient) -> None:
    (Path(settings.seeds_dir) / "2026-11-03-feeds-still-matter.md").unlink()
    build()
    page = client.get("/topics/open-web/", headers={"Accept": BROWSER})
    html = page.get_data(as_text=True)
    assert page.status_code == 410 and '<header class="site">' in html and "Gone" in html
    assert stylesheet_of(client, html, "/topics/open-web/").status_code == 200


def test_json_paths_still_get_a_json_404(client: FlaskClient) -> None:
    missing = client.get("/nothing.json")
    assert missing.status_code == 404 and missing.get_json()["status"] == 404


# -- /healthz: counts and status only ---------------------------------------------------------

def note(settings: Settings, **facts: Any) -> None:
    """Add facts to status.json as the build and the scheduler do."""
    path = Path(settings.output_dir) / STATUS
    status = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**status, **facts}), encoding="utf-8")


def health(settings: Settings, query: str = "") -> tuple[int, dict[str, Any], str]:
    answer = create_app({"FEEDSERVER_SETTINGS": settings}).test_client().get(
        "/healthz" + query)
    return answer.status_code, answer.get_json(), answer.get_data(as_text=True)


def test_healthz_shows_no_paths_or_config_text(client: FlaskClient, settings: Settings) -> None:
    secret = f"{settings.output_dir}/feed.rss: [Errno 28] No space left on device"
    config = f"{settings.config_path}, line 7: topics.x: unknown key 'colour'"
    note(settings, last_error={"at": "2026-11-27T12:00:00+00:00", "message": secret},
         config_error=config, scheduler_error=f"{settings.state_dir}/scheduler.lock held",
         problems=[{"severity": "error", "path": f"{settings.seeds_dir}/x.md",
                    "message": f"{settings.seeds_dir}/x.md: broken"}])
    code, body, text = health(settings)
    assert code == 200 and body["status"] == "degraded"
    for private in (settings.output_dir, settings.seeds_dir, settings.state_dir,
                    settings.config_path, "colour", "Errno", "No space", "x.md", "/tmp"):
        assert private not in text, private
    assert body["problems"] == 1 and body["errors"] == 1
    assert body["last_error"]["at"] == "2026-11-27T12:00:00+00:00"
    assert body["last_error"]["message"] and body["config_error"] and body["scheduler_error"]
    assert body["articles"] > 0 and body["files"] > 0


@pytest.mark.parametrize("value", ["plain text", {"message": "/etc/passwd"}, ["x"], 7])
def test_healthz_shows_a_scheduler_error_as_degraded(client: FlaskClient, settings: Settings,
                                                     value: Any) -> None:
    note(settings, scheduler_error=value)
    code, body, text = health(settings)
    assert code == 200 and body["status"] == "degraded" and "scheduler_error" in body
    assert "/etc" not in text and "plain text" not in text


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def test_a_stuck_build_shows_in_healthz(client: FlaskClient, settings: Settings) -> None:
    started = datetime.now(UTC) - timedelta(hours=2)
    note(settings, building_since=iso(started))
    code, body, _ = health(settings)
    assert code == 200 and body["status"] == "stuck"  # the last good output is served
    assert body["building_since"] == iso(started)
    assert 7200 <= body["building_for"] < 7200 + 600
    assert body["stuck_after"] == max(600, 10 * settings.refresh_interval)
    assert health(settings, "?strict")[0] == 503  # for monitors that only read the code


def test_a_running_build_is_not_stuck(client: FlaskClient, settings: Settings) -> None:
    note(settings, building_since=iso(datetime.now(UTC) - timedelta(seconds=5)))
    code, body, _ = health(settings)
    assert code == 200 and body["status"] == "ok" and body["building_for"] >= 0
    assert health(settings, "?strict")[0] == 200


def test_the_stuck_threshold_is_a_setting(client: FlaskClient, settings: Settings) -> None:
    note(settings, building_since=iso(datetime.now(UTC) - timedelta(seconds=90)))
    assert health(settings)[1]["status"] == "ok"
    assert health(replace(settings, stuck_after=60))[1]["status"] == "stuck"


@pytest.mark.parametrize("value", ["yesterday", 12, None, "2026-13-45T00:00:00"])
def test_a_bad_building_since_is_ignored(client: FlaskClient, settings: Settings,
                                         value: Any) -> None:
    note(settings, building_since=value)
    code, body, text = health(settings)
    assert code == 200 and body["status"] == "ok" and "yesterday" not in text


def test_a_stuck_first_build_is_unavailable_and_says_stuck(settings: Settings) -> None:
    note(settings, building_since=iso(datetime.now(UTC) - timedelta(hours=1)))
    code, body, _ = health(settings)
    assert code == 503 and body["status"] == "stuck" and body["last_success"] is None


def test_degraded_is_503_only_when_strict(client: FlaskClient, settings: Settings) -> None:
    note(settings, config_error="x")
    assert health(settings)[0] == 200 and health(settings, "?strict")[0] == 503


# -- the folder redirect ----------------------------------------------------------------------

@pytest.mark.parametrize("script_name", ["", "//evil.example", "/prefix",
                                         "https://evil.example", "/\\evil.example"])
@pytest.mark.parametrize("path,query", [("topics", ""), ("topics/energy", "a=1&b=%2F")])
def test_the_folder_redirect_ignores_script_name(client: FlaskClient, script_name: str,
                                                path: str, query: str) -> None:
    answer = client.get(f"/{path}", query_string=query,
                        environ_overrides={"SCRIPT_NAME": script_name})
    assert answer.status_code == 308
    location = answer.headers["Location"]
    assert "evil" not in location and not location.startswith(("/", "\\")), location
    assert urlsplit(location).scheme == "" and urlsplit(location).netloc == ""
    # Resolved against the URL the client asked for, it is that folder.
    asked = f"https://news.example.org{script_name if script_name == '/prefix' else ''}/{path}"
    target = urljoin(asked, location)
    assert urlsplit(target).path == urlsplit(asked).path + "/"
    assert urlsplit(target).query == query


def test_check_shows_the_details_healthz_keeps_private(client: FlaskClient,
                                                      settings: Settings) -> None:
    from click.testing import CliRunner

    from feedserver.cli import main

    started = datetime.now(UTC) - timedelta(hours=2)
    note(settings, last_error={"at": "2026-11-27T12:00:00+00:00",
                               "message": "public/feed.rss: [Errno 28] No space left on device"},
         scheduler_error="state/scheduler.lock is held by pid 4242, not running",
         building_since=iso(started))
    checked = CliRunner().invoke(main, ["check", "--config", settings.config_path],
                                 env={"FEEDSERVER_OUTPUT_DIR": settings.output_dir})
    assert checked.exit_code == 0, checked.output
    said = checked.output
    assert "the last publish failed at 2026-11-27T12:00:00+00:00: public/feed.rss: " \
           "[Errno 28] No space left on device" in said
    assert "scheduler: state/scheduler.lock is held by pid 4242, not running" in said
    assert f"a build has been running since {iso(started)}" in said and "stuck" in said

"""The pages' feed form and ``/subscribe`` (issue 14): the form names every topic and
language the site publishes, and /subscribe answers the canonical URL of what was asked,
in every format, each link serving that feed."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlencode, urlsplit

import pytest
from flask.testing import FlaskClient

from tests.integration.test_query_web import BASE, app, built, client, expect, titles
from tests.query_site import TOPICS

__all__ = ["app", "built", "client"]  # fixtures shared with test_query_web


class Form(HTMLParser):
    """The names and values of a page's form controls, and its links' hrefs."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.values: dict[str, list[str]] = {}
        self.links: list[tuple[str, str]] = []
        self._select = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a["action"]
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option":
            self.values.setdefault(self._select, []).append(a["value"])
        elif tag == "input" and "name" in a:
            self.values.setdefault(a["name"], []).append(a.get("value", ""))
        elif tag == "a" and a.get("class") == "feed" and "type" in a:
            self.links.append((a["type"], a["href"]))


def form_of(client: FlaskClient, path: str) -> Form:
    form = Form()
    form.feed(client.get(path).data.decode())
    return form


def test_the_index_form_offers_every_topic_and_language(client: FlaskClient) -> None:
    form = form_of(client, "/")
    assert form.action == f"{BASE}subscribe"
    assert sorted(form.values["topic"]) == sorted(TOPICS)
    assert form.values["lang"] == ["", "de", "en"]
    assert {"q", "limit", "match"} <= set(form.values)
    topic = form_of(client, "/topics/gamma/")
    assert topic.values["topic"] == ["gamma"]
    assert form_of(client, "/languages/de/").values["lang"] == ["de"]


def test_pages_allow_the_form_to_be_sent(client: FlaskClient) -> None:
    csp = client.get("/").headers["Content-Security-Policy"]
    assert re.search(r"form-action 'self' http://127\.0\.0\.1:8000;", csp)


@pytest.mark.parametrize("fields,url", [
    ([("topic", "beta"), ("topic", "alpha"), ("match", "all"), ("q", "Café"), ("limit", ""),
      ("lang", "")], "topics/alpha+beta/{f}?q=cafe"),
    ([("topic", "gamma"), ("topic", "alpha"), ("match", "any"), ("q", ""), ("limit", "2"),
      ("lang", "en")], "topics/alpha,gamma/{f}?lang=en&limit=2"),
    ([("topic", "delta"), ("q", " "), ("limit", "")], "topics/delta/{f}"),
    ([("q", "pipeline"), ("limit", "3")], "{f}?limit=3&q=pipeline"),
])
def test_subscribe_names_the_canonical_url_in_every_format(client: FlaskClient, fields: list,
                                                           url: str) -> None:
    answer = client.get(f"/subscribe?{urlencode(fields)}")
    assert answer.status_code == 200
    form = Form()
    form.feed(answer.data.decode())
    assert [href for _, href in form.links] == [
        BASE + url.format(f=f"feed.{fmt}") for fmt in ("rss", "atom", "json")]
    for _, href in form.links:
        parts = urlsplit(href)
        served = client.get(f"{parts.path}?{parts.query}" if parts.query else parts.path)
        assert served.status_code == 200
        assert titles(served)  # every one of these asks for items the seeds have


def test_the_subscribe_links_serve_what_was_asked(client: FlaskClient) -> None:
    form = Form()
    form.feed(client.get("/subscribe?topic=alpha&topic=beta&match=all").data.decode())
    href = dict(form.links)["application/atom+xml"]
    assert titles(client.get(urlsplit(href).path)) == \
        expect(lambda s: {"alpha", "beta"} <= set(s.topics))


@pytest.mark.parametrize("query,code", [
    ("topic=nosuch", 404), ("limit=0", 400), ("since=soon", 400),
    ("&".join(f"topic={t}" for t in TOPICS), 400),
])
def test_subscribe_refuses_what_it_cannot_make(client: FlaskClient, query: str,
                                               code: int) -> None:
    answer = client.get(f"/subscribe?{query}")
    assert answer.status_code == code
    assert answer.mimetype == "text/html"

"""WebSub pieces without a server: settings, callback address checks, leases, signatures,
and the hub links in each feed format (issue 19)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from feedserver.build.run import run_build
from feedserver.config import BUILTIN_HUB, Settings, load_settings
from feedserver.core.errors import ConfigError
from feedserver.render.formats import FORMATS
from feedserver.websub import addresses, hub
from feedserver.websub.deliver import backoff, signature
from feedserver.websub.store import HubStore

ATOM = "{http://www.w3.org/2005/Atom}"
OWN = addresses.own_origins("http://127.0.0.1:8000/")


def test_hubs_default_to_the_builtin_hub_and_take_external_urls(tmp_path: Path) -> None:
    plain = load_settings(env={})
    assert plain.hubs == (BUILTIN_HUB,) and plain.hub_urls == (plain.base_url + "websub",)
    assert plain.builtin_hub and plain.external_hubs == ()
    cfg = tmp_path / "config.toml"
    cfg.write_text('hubs = ["https://hub.example/", "builtin", "https://hub.example/"]\n')
    both = load_settings(cfg, env={"FEEDSERVER_BASE_URL": "https://news.example/"})
    assert both.hub_urls == ("https://hub.example/", "https://news.example/websub")
    assert both.external_hubs == ("https://hub.example/",)
    env = load_settings(env={"FEEDSERVER_HUBS": "https://a.example/hub, https://b.example/"})
    assert env.hubs == ("https://a.example/hub", "https://b.example/") and not env.builtin_hub
    assert load_settings(env={"FEEDSERVER_HUBS": ""}).hub_urls == ()


@pytest.mark.parametrize(("text", "message"), [
    ('hubs = "builtin"\n', "'hubs' must be a list of strings"),
    ('hubs = ["ftp://hub.example/"]\n', "absolute http(s) URL, got 'ftp://hub.example/'"),
    ("hub_lease_seconds = 0\n", "'hub_lease_seconds' must be at least 1"),
])
def test_bad_hub_settings_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(cfg, env={})


def test_hub_settings_that_shape_no_bytes_keep_the_fingerprint() -> None:
    plain = load_settings(env={})
    tuned = replace(plain, hub_lease_seconds=60, hub_rate_limit=1, hub_retry_seconds=5,
                    hub_allow_private_callbacks=True, hub_lease_max_seconds=99)
    assert tuned.fingerprint() == plain.fingerprint()
    assert replace(plain, hubs=()).fingerprint() != plain.fingerprint()  # links change


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9000/cb", "http://localhost/cb", "http://10.1.2.3/cb",
    "http://192.168.0.10/cb", "http://169.254.169.254/latest/meta-data/", "http://[::1]/cb",
    "http://[fe80::1]/cb", "http://0.0.0.0/cb", "http://100.64.0.1/cb",
    "http://[::ffff:127.0.0.1]/cb", "http://224.0.0.1/cb",
])
def test_private_callbacks_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(addresses.Refused, match="loopback, private"):
        addresses.check(url, allow_private=False, own=OWN)
    target = addresses.check(url, allow_private=True, own=OWN)
    assert target.path.startswith("/")


@pytest.mark.parametrize(("url", "reason"), [
    ("ftp://8.8.8.8/cb", "only absolute http and https"),
    ("/cb", "only absolute http and https"),
    ("javascript:alert(1)", "only absolute http and https"),
    ("http://user:pw@8.8.8.8/cb", "credentials"),
    ("http://127.0.0.1:8000/websub", "this server itself"),
    ("http://8.8.8.8/" + "a" * 2000, "longer than"),
    ("http://8.8.8.8:99999/cb", "not a valid URL"),
])
def test_callbacks_that_are_never_called(url: str, reason: str) -> None:
    with pytest.raises(addresses.Refused, match=reason):
        addresses.check(url, allow_private=True, own=OWN)


def test_a_public_address_is_called_where_it_was_checked() -> None:
    target = addresses.check("https://8.8.8.8/cb?x=1", allow_private=False, own=OWN)
    assert (target.scheme, target.address, target.port, target.path) == \
        ("https", "8.8.8.8", 443, "/cb?x=1")


def test_leases_default_and_are_capped() -> None:
    settings = replace(load_settings(env={}), hub_lease_seconds=100, hub_lease_max_seconds=1000)
    assert hub.lease(settings, None) == 100 and hub.lease(settings, "") == 100
    assert hub.lease(settings, "500") == 500 and hub.lease(settings, "999999") == 1000
    for bad in ("0", "-5", "1.5", "soon"):
        with pytest.raises(ValueError, match="positive integer"):
            hub.lease(settings, bad)


def test_requests_are_checked_before_they_are_recorded(tmp_path: Path) -> None:
    settings = replace(load_settings(env={}), state_dir=str(tmp_path),
                       hub_allow_private_callbacks=True, hub_rate_limit=3)
    store = HubStore(tmp_path)
    feeds = {"feed.atom"}
    base = settings.base_url
    good = {"hub.mode": "subscribe", "hub.topic": base + "feed.atom",
            "hub.callback": "http://127.0.0.1:9/cb"}

    def ask(form: dict[str, str], client: str = "198.51.100.1") -> hub.Answer:
        return hub.handle(form, client, settings, store, feeds.__contains__, 1000.0)

    assert ask({**good, "hub.mode": "publish"}).status == 400
    assert ask({**good, "hub.topic": base + "index.html"}).text.startswith("hub.topic is not")
    assert ask({**good, "hub.topic": "https://elsewhere.example/feed.atom"}).status == 400
    assert ask({**good, "hub.secret": "x" * 200}, "198.51.100.2").status == 400
    assert ask(good, "198.51.100.2").status == 202
    assert ask(good, "198.51.100.3").status == 202  # another client has its own budget
    refused = ask(good)  # the fourth request of 198.51.100.1 in a minute
    assert (refused.status, refused.retry_after) == (429, 60)
    intents = store.take_intents()
    assert [(i.mode, i.topic, i.lease_seconds) for i in intents] == \
        [("subscribe", base + "feed.atom", settings.hub_lease_seconds)]  # one per pair


def test_signature_is_the_sha256_hmac_of_the_body() -> None:
    body = b"<feed/>"
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signature("s3cret", body) == "sha256=" + expected


def test_retries_wait_twice_as_long_each_time_up_to_a_cap() -> None:
    waits = [backoff(n) for n in range(1, 13)]
    assert waits[:4] == [2.0, 4.0, 8.0, 16.0]
    assert waits == sorted(waits) and waits[-1] == 900.0


def _channel_feeds(settings: Settings, build) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    build()
    out = Path(settings.output_dir)
    return {name: (out / FORMATS[name].filename).read_bytes() for name in ("rss", "atom", "json")}


def test_every_format_names_the_hub_once_and_rss_keeps_its_page_link(
        settings: Settings, build) -> None:  # type: ignore[no-untyped-def]
    feeds = _channel_feeds(settings, build)
    hub_url = settings.base_url + "websub"
    rss = etree.fromstring(feeds["rss"]).find("channel")
    assert rss is not None
    assert [(e.get("rel"), e.get("href")) for e in rss.findall(f"{ATOM}link")] == [
        ("self", settings.base_url + "feed.rss"), ("hub", hub_url)]
    assert rss.findtext("link") == settings.base_url  # the page, not the hub
    atom = etree.fromstring(feeds["atom"])
    assert [e.get("href") for e in atom.findall(f"{ATOM}link") if e.get("rel") == "hub"] == \
        [hub_url]
    assert json.loads(feeds["json"])["hubs"] == [{"type": "WebSub", "url": hub_url}]


def test_no_hub_means_no_hub_links(settings: Settings) -> None:
    quiet = replace(settings, hubs=())
    run_build(quiet)
    out = Path(quiet.output_dir)
    assert b'rel="hub"' not in (out / "feed.rss").read_bytes()
    assert b'rel="hub"' not in (out / "feed.atom").read_bytes()
    assert "hubs" not in json.loads((out / "feed.json").read_bytes())

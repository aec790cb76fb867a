"""Combined and filtered feeds through Flask's test client (issue 14).

Every expected item set is computed from what the seeds say (tests/query_site.py),
never from another answer of the server; feedparser (and json for JSON Feed) reads
what is served.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient

from feedserver.build.run import run_build
from feedserver.config import Settings, load_settings
from feedserver.query.params import fold
from feedserver.web.app import create_app
from tests.query_site import MAX_ITEMS, Seed, newest_first, seeds, write_site

BASE = "http://127.0.0.1:8000/"
FORMATS = ("rss", "atom", "json")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("query-site")
    settings = load_settings(write_site(root, BASE), env={})
    report = run_build(settings)
    assert report.published and not report.errors, report.problems
    return settings


@pytest.fixture
def app(built: Settings) -> Flask:
    return create_app({"FEEDSERVER_SETTINGS": built})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def titles(response: Any) -> list[str]:
    """The item titles of a served feed, in order, read as a reader reads them."""
    assert response.status_code == 200, response.data[:300]
    if response.mimetype == "application/feed+json":
        return [item["title"] for item in json.loads(response.data)["items"]]
    parsed = feedparser.parse(io.BytesIO(response.data),
                              response_headers={"content-type": response.content_type})
    assert not parsed.bozo, parsed.bozo_exception
    return [entry.title for entry in parsed.entries]


def self_link(response: Any) -> str:
    if response.mimetype == "application/feed+json":
        return json.loads(response.data)["feed_url"]
    parsed = feedparser.parse(io.BytesIO(response.data),
                              response_headers={"content-type": response.content_type})
    return next(link.href for link in parsed.feed.links if link.rel == "self")


def expect(keep: Callable[[Seed], bool], most: int = MAX_ITEMS) -> list[str]:
    return [s.title for s in newest_first([s for s in seeds() if keep(s)])][:most]


@pytest.mark.parametrize("fmt", FORMATS)
def test_union_and_intersection_list_what_the_seeds_say(client: FlaskClient, fmt: str) -> None:
    either = client.get(f"/topics/alpha,beta/feed.{fmt}")
    both = client.get(f"/topics/alpha+beta/feed.{fmt}")
    assert titles(either) == expect(lambda s: {"alpha", "beta"} & set(s.topics))
    # Whole history: the articles both topics share are older than either one's newest
    # MAX_ITEMS, so the published topic feeds hold none of them.
    shared = expect(lambda s: {"alpha", "beta"} <= set(s.topics))
    assert shared and titles(both) == shared
    for topic in ("alpha", "beta"):
        assert not set(shared) & set(titles(client.get(f"/topics/{topic}/feed.{fmt}")))
    three = client.get(f"/topics/alpha,beta,gamma/feed.{fmt}?limit=2")
    assert titles(three) == expect(lambda s: {"alpha", "beta", "gamma"} & set(s.topics), 2)


def follow(client: FlaskClient, path: str) -> Any:
    """The answer at ``path``, after the one redirect a non-canonical spelling gets
    (resolved as RFC 3986 says: Werkzeug's test client does not resolve relative ones)."""
    response = client.get(path)
    if response.status_code == 308:
        target = urljoin(f"http://localhost{path}", response.headers["Location"])
        response = client.get(target[len("http://localhost"):])
        assert response.status_code != 308, "redirected twice"
    return response


@pytest.mark.parametrize("fmt", FORMATS)
def test_filters_on_plain_topic_and_language_channels(client: FlaskClient, fmt: str) -> None:
    assert titles(client.get(f"/feed.{fmt}?limit=1")) == expect(lambda s: True, 1)
    assert titles(client.get(f"/feed.{fmt}?lang=de")) == expect(lambda s: s.lang == "de")
    assert titles(follow(client, f"/topics/alpha/feed.{fmt}?q=steppe%20CAFE")) == \
        expect(lambda s: "alpha" in s.topics and {"Café", "STEPPE"} <= set(s.words))
    assert titles(client.get(f"/languages/en/feed.{fmt}?limit=2&q=pipeline")) == \
        expect(lambda s: s.lang == "en" and "pipeline" in s.words, 2)
    cut = sorted(s.date for s in seeds())[15]
    since = cut.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    assert titles(follow(client, f"/feed.{fmt}?since={since.replace('+', '%2B')}")) == \
        expect(lambda s: s.date > cut)
    assert titles(follow(client, f"/topics/alpha+beta/feed.{fmt}?lang=en&q=caf%C3%A9")) == \
        expect(lambda s: {"alpha", "beta"} <= set(s.topics) and s.lang == "en"
               and "Café" in s.words)


def test_q_is_case_and_accent_insensitive() -> None:
    assert fold("CAFÉ  Ünïcode") == "cafe unicode"


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_answer_has_its_own_validators_and_304(client: FlaskClient, fmt: str) -> None:
    full, one = client.get(f"/feed.{fmt}"), client.get(f"/feed.{fmt}?limit=1")
    assert one.headers["ETag"] != full.headers["ETag"]
    assert one.headers["ETag"].startswith('"')  # strong
    newest = max(s.date for s in seeds())
    assert one.last_modified == newest
    again = client.get(f"/feed.{fmt}?limit=1", headers={"If-None-Match": one.headers["ETag"]})
    assert again.status_code == 304 and again.headers["ETag"] == one.headers["ETag"]
    assert "Content-Type" not in again.headers and again.headers["Last-Modified"]
    since = client.get(f"/feed.{fmt}?limit=1",
                       headers={"If-Modified-Since": one.headers["Last-Modified"]})
    assert since.status_code == 304
    # Unknown parameters change nothing: the plain feed, its own ETag.
    assert client.get(f"/feed.{fmt}?utm_source=x").headers["ETag"] == full.headers["ETag"]
    # Beside a filter they are dropped: one answer, one URL (its canonical one).
    assert client.get(f"/feed.{fmt}?limit=1&utm=x").headers["Location"] == f"feed.{fmt}?limit=1"
    for header in ("Access-Control-Allow-Origin", "Cache-Control"):
        assert one.headers[header] == full.headers[header] or header == "Cache-Control"
    assert one.headers["Cache-Control"].startswith("public, max-age=")
    assert f'<{BASE}feed.{fmt}?limit=1>; rel="self"' in one.headers.getlist("Link")


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_answer_without_items_is_dated_as_its_channel(client: FlaskClient, fmt: str) -> None:
    """A poller's ``since`` after the newest article, a search nothing matches: no item
    dates the answer, so it carries the newest update of its channel's whole history
    (here, where nothing was edited, the date of the channel's own feed), not 1970,
    which the W3C validator calls an implausible date and which said the answer's
    channel never changed."""
    def newest(*topics: str, both: bool = False) -> datetime:
        kept = [s.date for s in seeds()
                if (set(topics) <= set(s.topics) if both else set(topics) & set(s.topics))]
        return max(kept)

    later = (max(s.date for s in seeds()) + timedelta(days=1)).strftime(
        "%Y-%m-%dT%H%%3A%M%%3A%SZ")  # as a canonical URL writes it
    cases = {f"/topics/alpha/feed.{fmt}?since={later}": newest("alpha"),
             f"/topics/alpha/feed.{fmt}?q=nowhere": newest("alpha"),
             f"/feed.{fmt}?limit=2&since={later}": max(s.date for s in seeds()),
             f"/topics/alpha,beta/feed.{fmt}?q=nowhere": newest("alpha", "beta"),
             f"/topics/alpha+beta/feed.{fmt}?since={later}": newest("alpha", "beta", both=True),
             # topics that share no article: no history of its own, dated as its topics
             f"/topics/delta+gamma/feed.{fmt}?limit=3": newest("delta", "gamma")}
    assert client.get(f"/topics/alpha/feed.{fmt}").last_modified == newest("alpha")
    for url, when in cases.items():
        answer = client.get(url)
        assert titles(answer) == [], url
        assert answer.last_modified == when, url
        if fmt != "json":  # JSON Feed has no date of its own
            parsed = feedparser.parse(io.BytesIO(answer.data),
                                      response_headers={"content-type": answer.content_type})
            assert parsed.feed.updated_parsed[:6] == when.utctimetuple()[:6], url


@pytest.mark.parametrize("encoding", ["br", "gzip"])
def test_compressed_answers_have_their_own_etag(client: FlaskClient, encoding: str) -> None:
    import brotli
    from isal import igzip

    plain = client.get("/topics/alpha,beta/feed.atom?limit=3")
    packed = client.get("/topics/alpha,beta/feed.atom?limit=3",
                        headers={"Accept-Encoding": encoding})
    assert packed.headers["Content-Encoding"] == encoding
    assert packed.headers["Vary"] == "Accept-Encoding"
    assert packed.headers["ETag"] != plain.headers["ETag"]
    body = brotli.decompress(packed.data) if encoding == "br" else igzip.decompress(packed.data)
    assert body == plain.data
    again = client.get("/topics/alpha,beta/feed.atom?limit=3", headers={
        "Accept-Encoding": encoding, "If-None-Match": packed.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_filtered_feed_is_served_at_its_self_link_only(client: FlaskClient, fmt: str) -> None:
    """One answer, one URL: any other spelling of the same filters (their order, a value's
    case or accents, a leading zero, ':' or a space written another way, an unknown
    parameter beside known ones) is redirected (308, relative) to the canonical URL, the
    one its ``rel="self"`` names, so a feed is never served at a URL it does not call its
    own (the W3C validator's "Self reference doesn't match document location")."""
    canonical = "lang=en&limit=2&q=cafe+bar&since=2025-03-01T08%3A00%3A00Z"
    path = f"/topics/alpha+beta/feed.{fmt}"
    for query in ("since=2025-03-01T08:00:00Z&q=Caf%C3%A9%20Bar&zzz=1&limit=2&lang=EN",
                  "lang=en&limit=02&q=cafe+bar&since=2025-03-01T08%3A00%3A00Z",
                  "lang=en&limit=2&q=cafe%20bar&since=2025-03-01T08:00:00%2B00:00",
                  "limit=2&lang=en&q=cafe+bar&since=2025-03-01T08%3A00%3A00Z",
                  f"{canonical}&utm_source=x"):
        moved = client.get(f"{path}?{query}")
        assert moved.status_code == 308, query
        assert moved.headers["Location"] == f"feed.{fmt}?{canonical}"
        assert "Content-Type" not in moved.headers
    served = client.get(f"{path}?{canonical}")
    assert served.status_code == 200
    assert self_link(served) == f"{BASE}{path[1:]}?{canonical}"
    assert self_link(client.get(f"/topics/alpha,beta/feed.{fmt}")) == \
        f"{BASE}topics/alpha,beta/feed.{fmt}"
    # No filter at all: the published feed, whatever else the query holds (a cache-buster).
    plain = client.get(f"/feed.{fmt}?_=1733400000")
    assert plain.status_code == 200 and self_link(plain) == f"{BASE}feed.{fmt}"
    # A preflight is never redirected (browsers do not follow one).
    assert client.options(f"{path}?limit=02").status_code == 204


def test_other_orders_redirect_to_the_sorted_url(client: FlaskClient) -> None:
    moved = client.get("/topics/beta,alpha,beta/feed.rss?limit=2&x=y")
    assert moved.status_code == 308
    assert moved.headers["Location"] == "../alpha,beta/feed.rss?limit=2"  # canonical query
    assert "Content-Type" not in moved.headers
    # Resolved as RFC 3986 says (Werkzeug's test client does not resolve '..' itself).
    target = urljoin("http://localhost/topics/beta,alpha/feed.rss",
                     client.get("/topics/beta,alpha/feed.rss?limit=02").headers["Location"])
    assert target == "http://localhost/topics/alpha,beta/feed.rss?limit=2"
    followed = client.get(target)
    assert titles(followed) == expect(lambda s: {"alpha", "beta"} & set(s.topics), 2)
    assert client.get("/topics/gamma+beta/feed.json").headers["Location"] == \
        "../beta+gamma/feed.json"
    # Without a filter, the query string is kept as it came (it is not ours to judge).
    assert client.get("/topics/gamma+beta/feed.json?_=1").headers["Location"] == \
        "../beta+gamma/feed.json?_=1"


@pytest.mark.parametrize("path,code", [
    ("/topics/alpha,nosuch/feed.atom", 404),
    ("/topics/alpha+nosuch/feed.json", 404),
    ("/topics/alpha,beta/feed.xml", 404),
    ("/topics/alpha,beta+gamma/feed.rss", 404),
    ("/topics/" + ",".join(f"t{n}" for n in range(9)) + "/feed.rss", 400),
    ("/feed.rss?limit=0", 400), ("/feed.rss?limit=5", 400), ("/feed.rss?limit=x", 400),
    ("/feed.atom?since=yesterday", 400), ("/feed.atom?since=2026-13-01T00:00:00Z", 400),
    ("/feed.json?lang=!!", 400), ("/feed.json?q=", 400), ("/feed.json?q=%20-%20", 400),
    ("/feed.rss?limit=1&limit=2", 400), ("/topics/alpha/feed.atom?q=" + "x" * 201, 400),
    ("/topics/nosuch/feed.rss?limit=1", 404),
])
def test_bad_requests_answer_404_or_400_in_the_feed_family(client: FlaskClient, path: str,
                                                            code: int) -> None:
    response = client.get(path)
    assert response.status_code == code, response.data[:200]
    if code == 400:
        if path.split("?")[0].endswith(".json"):
            assert response.mimetype == "application/json"
            assert json.loads(response.data)["error"]
        else:
            assert response.mimetype == "application/xml"
            assert response.data.count(b"\n") == 2 and b"<error" in response.data


def test_at_most_eight_topics(client: FlaskClient) -> None:
    eight = ",".join(sorted(("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta",
                             "theta")))
    assert client.get(f"/topics/{eight}/feed.rss").status_code == 200
    assert client.get(f"/topics/{eight},iota/feed.rss").status_code == 400


def test_head_and_preflight(client: FlaskClient) -> None:
    head = client.head("/topics/alpha,beta/feed.atom?limit=1")
    assert head.status_code == 200 and head.data == b"" and head.headers["ETag"]
    pre = client.options("/topics/alpha,beta/feed.atom?limit=1")
    assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == "*"


def test_plain_requests_load_no_renderer(built: Settings, tmp_path: Path) -> None:
    """A worker that answers only plain requests never imports the query engine."""
    import subprocess
    import sys

    code = ("import sys; from feedserver.config import load_settings;"
            "from feedserver.web.app import create_app;"
            f"c = create_app({{'FEEDSERVER_SETTINGS': load_settings({built.config_path!r}, "
            "env={})}).test_client();"
            "assert c.get('/feed.rss?utm=1').status_code == 200;"
            "assert c.get('/topics/alpha/feed.atom').status_code == 200;"
            "print(sorted(m for m in sys.modules if m.startswith(('feedserver.query.answer',"
            "'feedserver.render', 'feedparser', 'feedgen'))));"
            "c.get('/feed.rss?limit=1');"
            "print('feedserver.query.answer' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.splitlines()
    assert out == ["[]", "True"]


def test_a_new_publish_is_a_new_answer(built: Settings, tmp_path: Path) -> None:
    """The cache is keyed by the manifest's version: an added article shows at once."""
    import shutil
    from dataclasses import replace

    root = tmp_path / "copy"
    shutil.copytree(Path(built.config_path).parent, root)
    settings = load_settings(root / "config.toml", env={})
    client = create_app({"FEEDSERVER_SETTINGS": settings}).test_client()
    first = client.get("/topics/alpha+beta/feed.atom")
    new = Seed("z99", "Story new", ("alpha", "beta"), "en", datetime.now().astimezone(),
               ())
    (root / "seeds" / "z99.md").write_text(new.text, encoding="utf-8")
    assert run_build(replace(settings)).published
    second = client.get("/topics/alpha+beta/feed.atom",
                        headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200
    assert titles(second)[0] == "Story new"


@pytest.mark.parametrize("path", ["/.feedserver/query/index.json",
                                  "/.feedserver/query/items/story-00.record",
                                  "/.feedserver/query/items/story-00.record?limit=1"])
def test_the_records_are_not_served_by_url(client: FlaskClient, built: Settings,
                                           path: str) -> None:
    assert (Path(built.output_dir) / path.split("?")[0].lstrip("/")).is_file()
    assert client.get(path).status_code == 404


def test_without_the_records_a_filtered_feed_is_503_not_500(built: Settings,
                                                            tmp_path: Path) -> None:
    """A folder published by an older build (no query index) answers plainly why."""
    import shutil

    root = tmp_path / "old"
    shutil.copytree(Path(built.config_path).parent, root)
    settings = load_settings(root / "config.toml", env={})
    shutil.rmtree(Path(settings.output_dir) / ".feedserver" / "query")
    client = create_app({"FEEDSERVER_SETTINGS": settings}).test_client()
    assert client.get("/feed.atom").status_code == 200
    for path, kind in (("/feed.atom?limit=1", "application/xml"),
                       ("/topics/alpha,beta/feed.json", "application/json")):
        answer = client.get(path)
        assert answer.status_code == 503 and answer.mimetype == kind
        assert answer.headers["Retry-After"]


def test_a_q_scan_reads_each_record_once_per_publish(built: Settings) -> None:
    """A word no article holds makes ``q`` look at every article of the channel: the
    second such scan of the same publish reads no record file and opens nothing, a
    replaced record file is read again after the next publish, and a word that only
    the replaced text holds is found."""
    from feedserver.core import layout
    from feedserver.query.answer import Engine, format_named
    from feedserver.query.params import parse
    from feedserver.query.records import read_index
    from feedserver.web.published import Store

    store = Store(built, 1 << 20)
    reads: list[str] = []
    stats: list[str] = []

    def read(name: str) -> tuple[str, bytes] | None:
        reads.append(name)
        return store.read(name)

    def identify(name: str) -> object:
        stats.append(name)
        return store.identity(name)

    def scan(index: Any, words: str) -> list[str]:
        fmt = format_named("feed.atom")
        assert fmt is not None
        answer = engine.answer(index, read, "", None, parse([("q", words)], MAX_ITEMS), fmt,
                               identify=identify)
        return [e.title for e in feedparser.parse(answer.body).entries]

    engine = Engine()
    index_bytes = store.read(layout.QUERY_INDEX)
    assert index_bytes is not None
    index = read_index(index_bytes[1])
    every = len(index.entries)
    assert scan(index, "zzunheardofword") == []
    assert len(reads) == every and len(stats) == every  # each record read once
    reads.clear()
    stats.clear()
    assert scan(index, "zzunheardofword other") == []
    assert reads == [] and stats == []  # the same publish: nothing read, nothing stat-ed
    # A publish replaces one record (as a build does: a new file renamed into place).
    slug = index.entries[-1].slug
    name = layout.item_record(slug)
    path = Path(built.output_dir) / name
    original = path.read_bytes()
    line, items = original.split(b"\n", 1)  # the record's JSON line, then its items
    record = json.loads(line)
    record["search"] += " zzfreshword"
    fresh = path.with_suffix(".new")
    fresh.write_bytes(json.dumps(record).encode() + b"\n" + items)
    fresh.replace(path)
    try:
        again = read_index(index_bytes[1])  # the next publish's index (same entries)
        reads.clear()
        stats.clear()
        found = scan(again, "zzfreshword")
        assert found == [record["title"]]
        assert len(stats) == every  # every identity checked once after the publish
        assert set(reads) == {name}  # and only the replaced record read
    finally:
        fresh.write_bytes(original)  # the module's site as the build made it
        fresh.replace(path)


def _published(built: Settings) -> tuple[Any, Callable[[str], Any], list[str], Any, bytes]:
    """The built site's store, a read through it that notes each name, the Atom format
    and the published query index's bytes."""
    from feedserver.core import layout
    from feedserver.query.answer import format_named
    from feedserver.web.published import Store

    store = Store(built, 1 << 20)
    reads: list[str] = []

    def read(name: str) -> tuple[str, bytes] | None:
        reads.append(name)
        return store.read(name)

    fmt = format_named("feed.atom")
    found = store.read(layout.QUERY_INDEX)
    assert fmt is not None and found is not None
    return store, read, reads, fmt, found[1]


def test_a_q_scan_reads_search_texts_from_the_records_folder(built: Settings) -> None:
    """What the web app does (``Filtered._compute``): a ``q`` scan reads each search text
    through one open folder (``Store.folder``), once per publish, and the whole record
    (through the same folder, with its identity) only of the articles it lists; nothing
    is read through the store (which opens each folder of a path and hashes the bytes),
    and no record goes into its body cache, where it would push out the published
    feeds."""
    import os

    from feedserver.core import layout
    from feedserver.query.answer import Engine
    from feedserver.query.params import parse
    from feedserver.query.records import read_index

    store, read, reads, fmt, index_bytes = _published(built)
    texts: list[str] = []
    records: list[str] = []
    folder = store.folder(layout.ITEM_RECORDS)

    class Counted:
        def identity(self, name: str) -> object:
            return folder.identity(name)

        def read(self, name: str) -> bytes | None:
            texts.append(name)
            return folder.read(name)

        def identified(self, name: str) -> tuple[object, bytes] | None:
            records.append(name)
            return folder.identified(name)

    index = read_index(index_bytes)
    engine = Engine()

    def scan(words: str) -> list[str]:
        answer = engine.answer(index, read, "", None, parse([("q", words)], MAX_ITEMS), fmt,
                               identify=store.identity, texts=Counted())
        return [e.title for e in feedparser.parse(answer.body).entries]

    try:
        assert scan("zzunheardofword") == []
        assert sorted(texts) == sorted(layout.item_record_name(e.slug) for e in index.entries)
        assert reads == []
        texts.clear()
        wanted = [s.title for s in newest_first([s for s in seeds() if "STEPPE" in s.words])]
        assert scan("steppe") == wanted[:MAX_ITEMS]
        assert texts == []  # the same publish: every text kept from the first scan
        # the listed articles' whole records, each once
        assert len(records) == len(set(records)) == len(wanted[:MAX_ITEMS])
        assert reads == []
    finally:
        folder.close()
    for entry in index.entries:
        name = layout.item_record(entry.slug)
        st = os.stat(Path(built.output_dir) / name)
        assert store.cache.get((name, st.st_ino, st.st_mtime_ns, st.st_size)) is None


def test_a_folder_reads_only_plain_names_of_regular_files(built: Settings,
                                                         tmp_path: Path) -> None:
    """``Store.folder`` reads a file of that folder by its plain name, as ``Store``
    identifies it, and nothing else: no path, no dot-name, no link, no folder."""
    import os

    from feedserver.core import layout
    from feedserver.web.published import Folder, Store

    store = Store(built, 1 << 20)
    records = Path(built.output_dir) / layout.ITEM_RECORDS
    name = sorted(p.name for p in records.iterdir())[0]
    with store.folder(layout.ITEM_RECORDS) as folder:
        assert folder.read(name) == (records / name).read_bytes()
        assert folder.identity(name) == store.identity(f"{layout.ITEM_RECORDS}/{name}")
        assert folder.identified(name) == (folder.identity(name), folder.read(name))
        for refused in ("", "..", f"../items/{name}", f"./{name}", ".hidden", "a/b",
                        "a\\b", "a\0b", "missing.json"):
            assert folder.read(refused) is None and folder.identity(refused) is None, refused
    root = tmp_path / "out"
    (root / "f").mkdir(parents=True)
    (root / "f" / "real").write_bytes(b"x")
    (root / "f" / "link").symlink_to(root / "f" / "real")
    (root / "f" / "sub").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret").write_bytes(b"s")
    (root / "g").symlink_to(tmp_path / "elsewhere")
    os.mkfifo(root / "f" / "fifo")
    with Folder(str(root), "f") as folder:
        assert folder.read("real") == b"x"
        assert folder.read("link") is None  # not followed
        assert folder.read("sub") is None and folder.read("fifo") is None
    with Folder(str(root), "g") as folder:  # a folder swapped for a link: not followed
        assert folder.read("secret") is None and folder.identity("secret") is None
    with Folder(str(root), "missing") as folder:
        assert folder.read("real") is None
    elsewhere = Store(replace(built, output_dir=str(root)), 1 << 20)
    assert elsewhere.read("f/fifo") is None  # opened without waiting for a writer, refused
    assert elsewhere.read("f/real") is not None


def test_an_answer_reads_each_listed_record_once_per_publish(built: Settings) -> None:
    """Answers of one publish (one index) list the same records again and again: each
    is read once (no ``lstat`` for the next answers); the next publish reads it again."""
    from feedserver.core import layout
    from feedserver.query.answer import Engine
    from feedserver.query.params import parse
    from feedserver.query.records import read_index

    _, read, reads, fmt, index_bytes = _published(built)
    engine = Engine()
    index = read_index(index_bytes)
    for limit in (3, 2, 4):
        answer = engine.answer(index, read, "", None, parse([("limit", str(limit))], MAX_ITEMS),
                               fmt)
        assert len(feedparser.parse(answer.body).entries) == limit
    newest = [layout.item_record(e.slug) for e in index.entries[:4]]
    assert reads == newest  # three answers, each record read the first time it was listed
    reads.clear()
    again = read_index(index_bytes)  # the next publish's index
    engine.answer(again, read, "", None, parse([("limit", "2")], MAX_ITEMS), fmt)
    assert reads == newest[:2]


def test_an_answers_etag_names_its_bytes_in_every_worker(built: Settings) -> None:
    """The ETag of a computed answer is made from its pieces (Engine._etag), not from a
    hash of the whole body: two workers (two apps) give the same bytes the same ETag,
    and different bytes never share one."""
    paths = [f"/{p}?limit={n}" for p in ("feed.atom", "feed.rss", "feed.json")
             for n in (1, 2, MAX_ITEMS)]
    paths += ["/topics/alpha,beta/feed.atom", "/topics/alpha+beta/feed.rss?limit=2",
              "/feed.atom?q=alpha", "/feed.json?limit=3&since=2000-01-01T00%3A00%3A00Z"]
    one = create_app({"FEEDSERVER_SETTINGS": built}).test_client()
    other = create_app({"FEEDSERVER_SETTINGS": built}).test_client()
    bodies: dict[str, bytes] = {}
    for path in paths:
        first, second = one.get(path), other.get(path)
        assert first.status_code == second.status_code == 200, path
        assert first.data == second.data and first.headers["ETag"] == second.headers["ETag"]
        assert bodies.setdefault(first.headers["ETag"], first.data) == first.data, path
    assert len(set(bodies.values())) == len(bodies) == len(paths)


@pytest.mark.parametrize("header,expected", [
    ("gzip, deflate, br", "gzip"), ("br, gzip", "gzip"), ("br", "br"),
    ("br;q=1, gzip;q=0.5", "br"), ("gzip;q=0, br", "br"), ("identity", None)])
def test_an_answer_is_compressed_the_cheap_way_unless_asked_otherwise(
        client: FlaskClient, header: str, expected: str | None) -> None:
    """An answer is compressed when first asked for: gzip (ISA-L) before brotli when the
    client takes both alike; a published feed, compressed at publish time, keeps br."""
    got = client.get("/feed.atom?limit=2", headers={"Accept-Encoding": header})
    assert got.status_code == 200 and got.headers.get("Content-Encoding") == expected
    published = client.get("/feed.atom", headers={"Accept-Encoding": header})
    if expected is not None and "q=" not in header:
        assert published.headers.get("Content-Encoding") == "br"


def test_gzip_answers_are_spliced_from_kept_pieces_and_inflate_to_their_bodies(
        app: Flask, client: FlaskClient) -> None:
    """A first answer asked for in gzip is made of its items' kept compressed pieces
    (web/gzipped.py): answers of one channel listing the same neighbours compress each
    pair once, and every body inflates (the standard library's gzip) to the plain one."""
    import gzip

    files = app.view_functions["file"]
    made = files.cache.segments.made
    for fmt in FORMATS:
        for limit in range(1, MAX_ITEMS + 1):
            url = f"/topics/alpha/feed.{fmt}?limit={limit}"
            packed = client.get(url, headers={"Accept-Encoding": "gzip"})
            assert packed.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(packed.data) == client.get(url).data, url
    # answers each one item longer than the last: one new piece each
    assert files.cache.segments.made - made == MAX_ITEMS * len(FORMATS)
    for url in ("/topics/alpha,beta/feed.rss?since=2025-01-01T00%3A00%3A00Z",
                "/feed.json?q=cafe", "/topics/alpha+beta/feed.atom?limit=2"):
        packed = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert gzip.decompress(packed.data) == client.get(url).data, url


def test_the_engines_pieces_lie_in_the_body_they_were_drawn_into(app: Flask,
                                                                   client: FlaskClient) -> None:
    """An answer's pieces (where its items lie) are taken as lying in the body they were
    drawn into without comparing it again (``Pieces.drawn``): compared with a copy of
    that body, byte for byte, they lie there, for answers in each format, combined and
    filtered; a body differing by one byte is refused."""
    files = app.view_functions["file"]
    for url in ("/topics/alpha/feed.atom?limit=3", "/topics/alpha,beta/feed.rss?limit=4",
                "/feed.json?q=cafe", "/topics/alpha+beta/feed.atom?limit=2",
                "/feed.rss?since=2025-01-01T00%3A00%3A00Z"):
        assert client.get(url).status_code == 200, url
    answers = [found for found in files.cache._items.values() if found.pieces is not None]
    assert len(answers) == 5
    for found in answers:
        pieces = found.pieces
        assert pieces.drawn is found.body and pieces.lie_in(found.body)
        copy = bytes(bytearray(found.body))
        assert copy is not found.body and pieces.lie_in(copy)
        at = pieces.at + len(pieces.items[0]) // 2
        changed = copy[:at] + bytes([copy[at] ^ 1]) + copy[at + 1:]
        assert not pieces.lie_in(changed)


def test_two_workers_name_and_make_a_gzip_answer_alike(built: Settings) -> None:
    """Two workers (apps of their own: their own engines, caches and pieces) asked for
    the same answers in gzip, in different orders (so their kept pieces differ), serve
    the same bytes under the same strong ETag, which each answers with a 304; different
    answers have different ETags (their gzip ETags are named from their plain ones)."""
    import gzip

    urls = [f"/topics/alpha/feed.{fmt}?limit={n}" for fmt in ("atom", "rss") for n in (1, 2, 3)]
    served = []
    for order in (urls, urls[::-1]):
        client = create_app({"FEEDSERVER_SETTINGS": built}).test_client()
        got = {}
        for url in order:
            packed = client.get(url, headers={"Accept-Encoding": "gzip"})
            assert packed.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(packed.data) == client.get(url).data
            again = client.get(url, headers={"Accept-Encoding": "gzip",
                                             "If-None-Match": packed.headers["ETag"]})
            assert again.status_code == 304
            got[url] = (packed.headers["ETag"], packed.data)
        served.append(got)
    assert served[0] == served[1]
    assert len({etag for etag, _ in served[0].values()}) == len(urls)


def test_an_engine_forgets_the_comparisons_of_an_earlier_publish(built: Settings) -> None:
    """The gate's memo of readings compared equal to their articles
    (``Readings.agreed``) holds those articles: a new publish (a new index) empties it,
    so articles it replaced are not held until pushed out."""
    from feedserver.query.answer import Engine
    from feedserver.query.params import parse
    from feedserver.query.records import read_index

    _, read, _, fmt, index_bytes = _published(built)
    engine = Engine()
    agreed = engine._items.readings.agreed
    assert agreed is not None
    first = engine.answer(read_index(index_bytes), read, "", None,
                          parse([("limit", "3")], MAX_ITEMS), fmt)
    assert len(feedparser.parse(first.body).entries) == 3
    assert len(agreed) == 3
    again = engine.answer(read_index(index_bytes), read, "", None,  # the next publish
                          parse([("limit", "2")], MAX_ITEMS), fmt)
    assert len(feedparser.parse(again.body).entries) == 2
    assert len(agreed) == 2


@pytest.mark.parametrize("fmt", ("rss", "atom"))
def test_a_combined_channel_keeps_its_pace_whatever_an_answer_lists(
        client: FlaskClient, built: Settings, fmt: str) -> None:
    """Every answer of a combined channel carries the channel's pace (max-age and RSS
    ttl), worked out as the build works out a channel's, from the updates of the newest
    ``max_items`` it lists; ``limit=1`` (one update, no pace of its own) or a search
    does not make it another channel.  A filtered answer of a published channel carries
    its channel's the same way."""
    from feedserver.core.freshness import channel_max_age, ttl_minutes

    listed = newest_first([s for s in seeds() if {"alpha", "beta"} & set(s.topics)])
    pace = channel_max_age([s.date for s in listed[:MAX_ITEMS]], built.refresh_interval,
                           built.freshness_ceiling)
    assert pace > built.refresh_interval  # the site's articles are days apart
    word = fold(listed[-1].title.split()[0])
    for query in ("", "?limit=1", "?limit=2", f"?q={word}"):
        answer = client.get(f"/topics/alpha,beta/feed.{fmt}{query}")
        assert answer.status_code == 200, query
        assert answer.headers["Cache-Control"] == f"public, max-age={pace}", query
        if fmt == "rss":
            parsed = feedparser.parse(io.BytesIO(answer.data))
            assert parsed.feed.ttl == str(ttl_minutes(pace)), query


def test_the_records_carry_the_items_a_worker_would_draw(built: Settings) -> None:
    """Every record the build published carries its article's RSS and Atom items, drawn
    under the key a web worker reckons for the published context: the very bytes the
    worker's renderer draws of the article read back."""
    from feedserver.core import layout
    from feedserver.query.records import decode_record, drawing_key, read_index
    from feedserver.render.formats import FORMATS as REGISTERED

    store, _, _, _, index_bytes = _published(built)
    index = read_index(index_bytes)
    folder = store.folder(layout.ITEM_RECORDS)
    for entry in index.entries:
        body = folder.read(layout.item_record_name(entry.slug))
        assert body is not None, entry.slug
        record = decode_record(body)
        assert record.key == drawing_key(index.context, record.article), entry.slug
        assert record.drawn == {name: REGISTERED[name].item(record.article, index.context)
                                for name in ("atom", "rss")}
    folder.close()


@pytest.mark.parametrize("name", ("feed.atom", "feed.rss"))
def test_an_item_new_to_a_worker_is_taken_from_its_record(
        built: Settings, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """A worker answering with items it has never drawn takes them from their records: with
    the renderer broken, the answer is the one a worker that draws them makes; under
    another drawing key (a record drawn by other code, or for another context) the
    records' items are not taken, and the broken renderer is met (the answer refused)."""
    from feedserver.query import answer as engine_module
    from feedserver.query.answer import Engine, Unanswerable, format_named
    from feedserver.query.params import parse
    from feedserver.query.records import read_index
    from feedserver.render.formats import rss_atom

    _, read, _, _, index_bytes = _published(built)
    fmt = format_named(name)
    assert fmt is not None
    filters = parse([("limit", "4")], MAX_ITEMS)
    with monkeypatch.context() as other_key:  # the records' items not taken: drawn here
        other_key.setattr(engine_module.DrawingKeys, "of", lambda keys, article: "another")
        drawn = Engine().answer(read_index(index_bytes), read, "", None, filters, fmt)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the renderer was asked")

    monkeypatch.setattr(rss_atom, "entry", broken)
    taken = Engine().answer(read_index(index_bytes), read, "", None, filters, fmt)
    assert (taken.body, taken.etag) == (drawn.body, drawn.etag)
    assert len(feedparser.parse(io.BytesIO(taken.body)).entries) == 4
    monkeypatch.setattr(engine_module.DrawingKeys, "of", lambda keys, article: "another")
    with pytest.raises(Unanswerable, match="renderer raised"):
        Engine().answer(read_index(index_bytes), read, "", None, filters, fmt)


@pytest.mark.parametrize("name", ("feed.atom", "feed.rss"))
def test_a_worker_takes_an_items_reading_from_its_record(
        built: Settings, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """With no readings store at all, a worker answering with items new to it has
    feedparser read none of those in the answer's language: their readings come with
    their records (made by the build's feedparser in the envelope of an answer in the
    article's language; Atom's envelope names the language, RSS's does not, so an RSS
    answer reads none at all).  Records whose readings were made by other readings code
    are not taken: feedparser reads every item."""
    from feedserver.query import answer as engine_module
    from feedserver.query.answer import Engine, format_named
    from feedserver.query.params import parse
    from feedserver.query.records import read_index
    from feedserver.render.formats import rss_atom

    _, read, _, _, index_bytes = _published(built)
    fmt = format_named(name)
    assert fmt is not None
    parsed: list[int] = []
    parse_whole = rss_atom._parse

    def counted(body: bytes, media_type: str) -> Any:
        found = parse_whole(body, media_type)
        parsed.append(len(found.entries))
        return found

    monkeypatch.setattr(rss_atom, "_parse", counted)
    filters = parse([("limit", str(MAX_ITEMS))], MAX_ITEMS)
    index = read_index(index_bytes)
    taken = Engine().answer(index, read, "", None, filters, fmt)
    shown = feedparser.parse(io.BytesIO(taken.body))
    assert len(shown.entries) == MAX_ITEMS
    spoken = shown.feed.get("language") or index.context.language
    others = sum(e.lang != spoken for e in index.entries[:MAX_ITEMS])
    assert 0 < others < MAX_ITEMS  # the site's newest articles are in several languages
    assert parsed and sum(parsed) == (others if name == "feed.atom" else 0)
    parsed.clear()
    monkeypatch.setattr(engine_module, "code_version", lambda: "other readings code")
    again = Engine().answer(read_index(index_bytes), read, "", None, filters, fmt)
    assert sum(parsed) == MAX_ITEMS
    assert (again.body, again.etag) == (taken.body, taken.etag)


def test_the_records_folder_is_opened_once_a_publish(built: Settings, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers of one publish read records through one open folder (each answer that read
    one opened it anew, four folders from the root); the next publish's answers open it
    again and find the records that publish wrote."""
    import shutil
    from dataclasses import replace

    from feedserver.core import layout
    from feedserver.web import published

    root = tmp_path / "copy"
    shutil.copytree(Path(built.config_path).parent, root)
    settings = load_settings(root / "config.toml", env={})
    opened: list[str] = []
    open_beneath = published.open_beneath

    def counted(base: str, filename: str, directory: bool = False) -> int:
        if directory:
            opened.append(filename)
        return open_beneath(base, filename, directory=directory)

    monkeypatch.setattr(published, "open_beneath", counted)
    client = create_app({"FEEDSERVER_SETTINGS": settings}).test_client()
    for limit in (1, 2, 3):  # each lists one record the worker has not read
        assert client.get(f"/topics/alpha+beta/feed.atom?limit={limit}").status_code == 200
    assert opened.count(layout.ITEM_RECORDS) == 1
    new = Seed("z98", "Story newer", ("alpha", "beta"), "en", datetime.now().astimezone(),
               ())
    (root / "seeds" / "z98.md").write_text(new.text, encoding="utf-8")
    assert run_build(replace(settings)).published
    assert titles(client.get("/topics/alpha+beta/feed.atom?limit=2"))[0] == "Story newer"
    assert opened.count(layout.ITEM_RECORDS) == 2

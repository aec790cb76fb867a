"""A web worker's reload after a publish prepares only what requests ask for.

Each worker re-reads the manifest on its first request after a publish
(:class:`feedserver.web.published.Store`).  It used to prepare the headers of every
listed file then: 74,636 entries at 50,000 articles, and that first request (with every
other one the worker held) waited 2.5 s (``python -m benchmarks.reload_bench``).  Now an
entry is prepared when a request first asks for it, and what the worker answers is the
same as before, file for file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from feedserver.build.run import BuildReport
from feedserver.config import Settings
from feedserver.core import layout
from feedserver.publish.manifest import load_manifest
from feedserver.web import published
from feedserver.web.app import create_app
from feedserver.web.deltas import index as delta_index
from feedserver.web.published import PublishedFile, Store, safe_path
from tests.conftest import SEEDED


def eager(files: dict[str, Any], settings: Settings) -> dict[str, PublishedFile]:
    """Every servable entry prepared at once: what a reload did before."""
    return {path: published._entry(path, meta, settings) for path, meta in files.items()
            if safe_path(path) and isinstance(meta, dict) and not layout.is_internal(path)}


def counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths :func:`published._entry` prepares from now on."""
    prepared: list[str] = []
    real = published._entry

    def entry(path: str, meta: dict[str, Any], settings: Settings) -> PublishedFile:
        prepared.append(path)
        return real(path, meta, settings)
    monkeypatch.setattr(published, "_entry", entry)
    return prepared


def test_a_reload_prepares_only_the_files_asked_for(
        build: Callable[..., BuildReport], settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    build()
    listed = load_manifest(Path(settings.output_dir))["files"]
    assert len(listed) > 50  # a site, not a handful of files
    prepared = counting(monkeypatch)
    client = create_app({"FEEDSERVER_SETTINGS": settings}).test_client()
    assert client.get("/feed.atom").status_code == 200
    assert client.get("/feed.atom", headers={"Accept-Encoding": "gzip"}).status_code == 200
    assert client.get("/topics/energy/feed.rss").status_code == 200
    assert prepared == ["feed.atom", "topics/energy/feed.rss"]  # each once, none other


def one_file(data: dict[str, Any]) -> dict[str, Any]:
    """A manifest read whole, as the one file of format 3 holds it (a hand-made one)."""
    return {**{k: v for k, v in data.items() if k not in ("shards", "parts")}, "version": 3}


def test_lazy_entries_answer_as_the_eager_ones_did(
        build: Callable[..., BuildReport], settings: Settings) -> None:
    build()
    out = Path(settings.output_dir)
    data = load_manifest(out)
    # What a hand-edited or damaged manifest may list: none of it is ever served.
    data["files"].update({"../outside.txt": {"media_type": "text/plain"},
                          "/etc/passwd": {"media_type": "text/plain"},
                          "a//b.txt": {"media_type": "text/plain"},
                          "odd.txt": "not an entry",
                          f"{layout.META_DIR}/secret.json": {"media_type": "text/plain"}})
    (out / layout.MANIFEST).write_text(json.dumps(one_file(data)), encoding="utf-8")
    expected = eager(data["files"], settings)
    files = Store(settings, 1 << 20).snapshot().files
    assert len(files) == len(expected) and set(files) == set(expected)
    for path in [*data["files"], "never/listed.html"]:
        assert (path in files) == (path in expected), path
        assert files.get(path) == expected.get(path), path
    with pytest.raises(KeyError):
        files["../outside.txt"]
    assert files["feed.rss"] == expected["feed.rss"]


def test_the_served_manifest_lists_feeds_and_internal_pages_as_before(
        build: Callable[..., BuildReport], settings: Settings) -> None:
    build()
    snap = Store(settings, 1 << 20).snapshot()
    listed = load_manifest(Path(settings.output_dir))["files"]
    assert set(snap.feeds) == {p for p, meta in listed.items()
                               if meta.get("format") and not layout.is_internal(p)}
    for path in [*listed, "never/listed.html", f"{layout.META_DIR}/never-listed.json"]:
        assert (path in snap.internal) == (path in listed and layout.is_internal(path)), path
    assert all(page in snap.internal for page in layout.ERROR_PAGES.values())
    assert {"application/rss+xml", "application/atom+xml",
            "application/feed+json"} <= set(snap.feed_like)


def test_a_publish_is_seen_by_the_next_request(
        build: Callable[..., BuildReport], settings: Settings) -> None:
    build()
    client = create_app({"FEEDSERVER_SETTINGS": settings}).test_client()
    before = client.get("/feed.atom")
    late = Path(settings.seeds_dir) / "zz-late-news.txt"
    late.write_text("Late news from the reload test\n\nA short article published after "
                    "the first request, so the worker must read the manifest again.\n",
                    encoding="utf-8")
    written = (SEEDED + timedelta(hours=1)).timestamp()  # before the build's pinned now
    os.utime(late, (written, written))
    build()
    after = client.get("/feed.atom")
    assert after.headers["ETag"] != before.headers["ETag"]
    assert b"Late news from the reload test" in after.data
    assert client.get("/feed.atom", headers={"If-None-Match": after.headers["ETag"]}
                      ).status_code == 304
    # The second build made RFC 3229 deltas: indexed as from every internal entry.
    listed = load_manifest(Path(settings.output_dir))["files"]
    deltas = Store(settings, 1 << 20).snapshot().deltas
    assert deltas and deltas == delta_index({path: meta for path, meta in listed.items()
                                             if layout.is_internal(path)})


def test_the_manifest_is_looked_at_once_a_millisecond_at_most(
        build: Callable[..., BuildReport], settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker under load does not ``stat`` the manifest for every request: a request
    within :data:`published.RECHECK` of the last look takes what it found; the first one
    after it sees a new publish."""
    build()
    clock = [1000.0]
    monkeypatch.setattr(published.time, "monotonic", lambda: clock[0])
    looks: list[str] = []
    real_stat = os.stat
    monkeypatch.setattr(published.os, "stat", lambda path, *a, **k: looks.append(str(path))
                        or real_stat(path, *a, **k))
    store = Store(settings, 1 << 20)
    first = store.snapshot()
    clock[0] += published.RECHECK / 2
    assert store.snapshot() is first and len(looks) == 1  # within the window: no look
    manifest = Path(settings.output_dir) / layout.MANIFEST
    data = one_file(load_manifest(Path(settings.output_dir)))
    data["files"]["late.txt"] = {**data["files"]["feed.atom"], "media_type": "text/plain"}
    fresh = manifest.with_name("manifest.json.new")
    fresh.write_text(json.dumps(data), encoding="utf-8")
    os.replace(fresh, manifest)  # a publish, renamed into place within the window
    assert store.snapshot() is first and "late.txt" not in first.files
    clock[0] += published.RECHECK
    seen = store.snapshot()  # the first request after the window: the new manifest
    assert len(looks) == 2 and seen is not first and "late.txt" in seen.files

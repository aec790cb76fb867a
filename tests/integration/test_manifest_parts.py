"""The manifest in parts: a publish rewrites the parts that hold what it changed, every
reader gets the whole manifest, and a web worker reads only the parts it has not read.

``PER_PART`` is made small here so that the bundled seeds' site (a few hundred entries)
spreads over many parts, as a site of tens of thousands of articles does.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from feedserver.build.run import BuildReport
from feedserver.config import Settings
from feedserver.core.layout import MANIFEST
from feedserver.publish import manifest as manifest_module
from feedserver.publish.manifest import (
    PARTS_DIR,
    SECTIONS,
    Shards,
    bucket,
    decode_part,
    load_manifest,
    unit,
)
from feedserver.web.published import Store
from tests.conftest import NOW, parse_feed, write

Build = Callable[..., BuildReport]


@pytest.fixture(autouse=True)
def small_parts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(manifest_module, "PER_PART", 4)
    yield


def root_of(out: Path) -> dict[str, Any]:
    return json.loads((out / MANIFEST).read_bytes())


def parts_on_disk(out: Path) -> dict[str, tuple[int, int]]:
    """Each part file's (inode, mtime): a part rewritten is a new file."""
    folder = out / PARTS_DIR
    return {name: (os.stat(folder / name).st_ino, os.stat(folder / name).st_mtime_ns)
            for name in os.listdir(folder)}


def live_parts(out: Path) -> set[str]:
    """The part files the live root lists."""
    return {name for names in root_of(out)["parts"].values() for name in names if name}


def placed(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Each section's parts as the root lists them, read raw (None: an empty bucket)."""
    root = root_of(out)
    return {section: [json.loads((out / PARTS_DIR / name).read_bytes()) if name else {}
                      for name in root["parts"][section]] for section in SECTIONS}


def test_each_key_is_in_its_buckets_part_and_the_parts_make_the_manifest(
        build: Build, settings: Settings) -> None:
    build()
    out = Path(settings.output_dir)
    whole = load_manifest(out)
    parts = placed(out)
    count = len(parts["files"])
    assert count > 8 and len(parts["channels"]) == count  # many parts, not one file
    for section in SECTIONS:
        joined: dict[str, Any] = {}
        for at, part in enumerate(parts[section]):
            assert all(bucket(key, count) == at for key in part), (section, at)
            joined.update(part)
        assert joined == whole[section] and joined  # nothing lost, nothing twice
    assert set(root_of(out)) == {"version", "gone", "partition", "parts"}  # entries: parts


def test_a_one_file_change_rewrites_only_the_parts_of_what_it_changed(
        build: Build, settings: Settings) -> None:
    build()
    out = Path(settings.output_dir)
    before, on_disk = load_manifest(out), parts_on_disk(out)
    names_before = root_of(out)["parts"]
    target = sorted(Path(settings.seeds_dir).glob("*.md"))[0]
    write(target, target.read_text(encoding="utf-8") + "\nA correction.\n")
    report = build(now=NOW + timedelta(hours=1))
    assert report.written
    after, names_after = load_manifest(out), root_of(out)["parts"]
    count = len(names_after["files"])
    for section in SECTIONS:
        changed = {key for key in before[section].keys() | after[section].keys()
                   if before[section].get(key) != after[section].get(key)}
        assert changed, section
        dirty = {bucket(key, count) for key in changed}
        moved = {at for at in range(count)
                 if names_before[section][at] != names_after[section][at]}
        assert moved == dirty, section  # every part holding a change, and no other
        assert len(moved) < count, section  # (a site this small changes much at once)
    # The parts that stayed are the very files they were (not written again).
    now_on_disk = parts_on_disk(out)
    for name in filter(None, names_after["files"] + names_after["channels"]):
        if name in on_disk:
            assert now_on_disk[name] == on_disk[name]
    # What readers get is what a publish of everything at once would have written.
    assert {k: after[k] for k in ("files", "channels", "gone")} == {
        k: load_manifest(out)[k] for k in ("files", "channels", "gone")}
    assert parse_feed(out / "feed.atom").entries


def test_the_replaced_roots_parts_stay_for_one_publish(build: Build,
                                                       settings: Settings) -> None:
    build()
    out = Path(settings.output_dir)
    seeds = Path(settings.seeds_dir)
    generations = [live_parts(out)]
    for hour in (1, 2, 3):
        write(seeds / f"extra-{hour}.md", f"---\ntitle: Extra {hour}\n---\nWords {hour}.\n")
        build(now=NOW + timedelta(hours=hour))
        generations.append(live_parts(out))
        # The live root's parts and the last one's are there; older ones are not.
        assert set(os.listdir(out / PARTS_DIR)) == generations[-1] | generations[-2]
    assert generations[0] - generations[-1] - generations[-2]  # something was removed


def test_parts_placed_by_other_code_are_placed_afresh(build: Build,
                                                      settings: Settings) -> None:
    """A root whose keys were placed by another ``partition`` (other code): its next
    publish places every key again, by this code's buckets."""
    build()
    out = Path(settings.output_dir)
    whole = load_manifest(out)
    count = len(root_of(out)["parts"]["files"])
    names = {}
    for section in SECTIONS:  # everything in the first bucket, as no code of ours puts it
        body = json.dumps(whole[section]).encode()
        names[section] = f"{section[0]}-elsewhere.json"
        (out / PARTS_DIR / names[section]).write_bytes(body)
    (out / MANIFEST).write_text(json.dumps({
        "version": 4, "gone": whole["gone"], "partition": 0,
        "parts": {s: [names[s]] + [None] * (count - 1) for s in SECTIONS}}), encoding="utf-8")
    assert load_manifest(out)["files"] == whole["files"]  # still read whole
    target = sorted(Path(settings.seeds_dir).glob("*.md"))[0]
    write(target, target.read_text(encoding="utf-8") + "\nA correction.\n")
    build(now=NOW + timedelta(hours=1))
    after = load_manifest(out)
    assert root_of(out)["partition"] == manifest_module.PARTITION
    for section in SECTIONS:
        joined: dict[str, Any] = {}
        for at, part in enumerate(placed(out)[section]):
            assert all(bucket(key, count) == at for key in part), (section, at)
            joined.update(part)
        assert joined == after[section]


def test_a_manifest_in_one_file_is_read_and_written_in_parts_next(
        build: Build, settings: Settings) -> None:
    """A folder published before the parts: nothing is rendered again for it (its
    signatures are trusted), and the next publish that changes anything splits it."""
    build()
    out = Path(settings.output_dir)
    whole = load_manifest(out)
    (out / MANIFEST).write_text(json.dumps({
        "version": 3, "files": whole["files"], "gone": whole["gone"],
        "channels": whole["channels"]}), encoding="utf-8")
    for name in os.listdir(out / PARTS_DIR):
        os.unlink(out / PARTS_DIR / name)
    assert load_manifest(out)["files"] == whole["files"]
    again = build(now=NOW + timedelta(hours=1))
    assert again.rendered_channels == 0 and not again.written
    assert "parts" in root_of(out)  # written again, in parts
    assert {k: load_manifest(out)[k] for k in ("files", "channels")} == {
        k: whole[k] for k in ("files", "channels")}


def test_a_missing_part_reads_as_nothing_published(build: Build, settings: Settings) -> None:
    """As a garbled manifest: no reader takes a manifest with entries missing for whole."""
    build()
    out = Path(settings.output_dir)
    name = next(n for n in root_of(out)["parts"]["files"] if n)
    os.unlink(out / PARTS_DIR / name)
    assert load_manifest(out)["files"] == {}
    assert Store(settings, 1 << 20).snapshot().key is None


def test_a_web_worker_reads_only_the_parts_it_has_not_read(
        build: Build, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    build()
    out = Path(settings.output_dir)
    read: list[bytes] = []
    monkeypatch.setattr(manifest_module, "decode_part",
                        lambda raw: read.append(raw) or decode_part(raw))
    store = Store(settings, 1 << 20)
    first = store.snapshot()
    assert len(read) == len([n for n in root_of(out)["parts"]["files"] if n])  # no channels
    names_before = set(root_of(out)["parts"]["files"])
    target = sorted(Path(settings.seeds_dir).glob("*.md"))[0]
    write(target, target.read_text(encoding="utf-8") + "\nA correction.\n")
    build(now=NOW + timedelta(hours=1))
    read.clear()
    store._checked = -1.0  # the next request looks at the manifest again
    seen = store.snapshot()
    new = {n for n in root_of(out)["parts"]["files"] if n} - names_before
    assert seen is not first and new and len(read) == len(new)
    whole = load_manifest(out)["files"]
    assert seen.files["feed.atom"].variants[""].etag == whole["feed.atom"]["etag"] \
        != first.files["feed.atom"].variants[""].etag
    assert set(seen.feeds) == {p for p, e in whole.items() if e.get("format")}


@pytest.mark.parametrize("seed", range(5))
def test_changed_shards_are_what_placing_every_key_afresh_gives(seed: int) -> None:
    rng = random.Random(seed)
    words = ["all", "energy", "kazakhstan", "feed.rss", "index.html", "embed",
             ".feedserver", "deltas", "query", "items", "archive", "articles", "topics"]

    def key() -> str:
        shape = rng.randrange(4)
        if shape == 0:
            return rng.choice(words) + (f"~{rng.randrange(200)}" if rng.random() < .5 else "")
        if shape == 1:
            return f"{rng.choice(words)}/archive/{rng.randrange(300)}/feed.atom"
        if shape == 2:
            return f".feedserver/deltas/topics/{rng.choice(words)}/feed.rss-{rng.random()}"
        return f"{rng.choice(words)}/{rng.choice(words)}-{rng.randrange(99)}/index.html"

    sections = {s: {key(): rng.random() for _ in range(300)} for s in SECTIONS}
    shards = Shards.of(sections, 16)
    for _ in range(20):
        touched: dict[str, list[str]] = {}
        for section in SECTIONS:
            keys = sections[section]
            gone = rng.sample(sorted(keys), 5)
            for k in gone:
                del keys[k]
            added = [key() for _ in range(5)]
            keys.update((k, rng.random()) for k in added)
            touched[section] = gone + added
        shards, dirty = shards.changed(touched, sections)
        fresh = Shards.of(sections, 16)
        assert shards.members == fresh.members
        assert all(dirty[s] == {bucket(k, 16) for k in touched[s]} for s in SECTIONS)


def test_a_channels_files_and_archive_pages_are_kept_together(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert unit("topics/energy/feed.rss") == unit("topics/energy/index.html")
    assert unit("topics/energy/archive/3/feed.atom") == unit("topics/energy/archive/60/x")
    assert unit("topics/energy/archive/3/feed.atom") != unit("topics/energy/archive/70/x")
    assert unit("articles/a-1/index.html") != unit("articles/a-2/index.html")
    assert unit(".feedserver/query/items/a.json") != unit(".feedserver/query/items/b.json")
    assert unit(".feedserver/deltas/feed.rss-1.rss") == unit(
        ".feedserver/deltas/topics/energy/feed.atom-2.atom")
    assert unit("energy~3") == unit("energy~40") != unit("energy~64")
    monkeypatch.setattr(manifest_module, "PER_PART", 500)
    assert Shards.fitting(10) == 1 and Shards.fitting(240_000) == 512  # 50,000 articles
    # 10,000 articles grown fourfold keep their buckets; fivefold, they are placed afresh.
    assert Shards.fitting(48_000) == 64 and Shards(64, {}, {}).fits(192_000)
    assert not Shards(64, {}, {}).fits(240_000)


def test_a_worker_that_read_a_root_two_publishes_old_reads_the_new_one(
        build: Build, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two publishes between a worker's read of the root and its read of the parts
    (the second removes the parts of the first root): the worker reads the root again."""
    build()
    out = Path(settings.output_dir)
    first_root = (out / MANIFEST).read_bytes()
    first_parts = {name: (out / PARTS_DIR / name).read_bytes() for name in live_parts(out)}
    target = sorted(Path(settings.seeds_dir).glob("*.md"))[0]
    for hour in (1, 2):
        write(target, target.read_text(encoding="utf-8") + f"\nCorrection {hour}.\n")
        build(now=NOW + timedelta(hours=hour))
    last_root = (out / MANIFEST).read_bytes()
    gone = set(first_parts) - set(os.listdir(out / PARTS_DIR))
    assert gone  # the first root's parts left with the second publish after it
    # The worker finds the first root live, with its parts, and reads it...
    for name, body in first_parts.items():
        (out / PARTS_DIR / name).write_bytes(body)
    (out / MANIFEST).write_bytes(first_root)
    real = manifest_module.part_names

    def two_publishes_meanwhile(root: dict[str, Any], section: str) -> list[str | None]:
        names = real(root, section)
        if root["parts"] == json.loads(first_root)["parts"]:  # ...and two publishes land
            (out / MANIFEST).write_bytes(last_root)
            for name in gone:
                os.unlink(out / PARTS_DIR / name)
        return names

    monkeypatch.setattr(manifest_module, "part_names", two_publishes_meanwhile)
    seen = Store(settings, 1 << 20).snapshot()
    assert seen.key is not None and seen.key[0] == os.stat(out / MANIFEST).st_ino
    whole = load_manifest(out)["files"]
    assert seen.files["feed.atom"].variants[""].etag == whole["feed.atom"]["etag"]

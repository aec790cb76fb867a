"""How the manifest (and the query index) is read back: the same dict as the standard
library's JSON, the same refusals (a garbled or cut file is a ValueError, which every
reader takes for 'nothing published'), whatever parser does the reading."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from feedserver.build.run import BuildReport
from feedserver.config import Settings
from feedserver.core.layout import MANIFEST
from feedserver.publish.manifest import PARTS_DIR, VERSION, decode, decode_part, load_manifest


def test_a_built_manifest_reads_as_the_standard_library_reads_it(
        settings: Settings, build: Callable[..., BuildReport]) -> None:
    build()
    out = Path(settings.output_dir)
    raw = (out / MANIFEST).read_bytes()
    root = json.loads(raw)
    assert decode(raw) == {**root, "files": {}, "channels": {}}  # the parts hold those
    assert decode(raw.decode("utf-8")) == decode(raw)  # text as well as bytes
    expected: dict[str, dict[str, object]] = {"files": {}, "channels": {}}
    for section, names in root["parts"].items():
        for name in filter(None, names):
            part = (out / PARTS_DIR / name).read_bytes()
            assert decode_part(part) == json.loads(part)
            expected[section].update(json.loads(part))
    assert expected["files"] and expected["channels"]  # a real one, not an empty shell
    whole = load_manifest(out)
    assert {k: whole[k] for k in ("version", "gone", "files", "channels")} == {
        "version": root["version"], "gone": root["gone"], **expected}


@pytest.mark.parametrize("raw", [
    b"", b"{", b'{"files": {}', b"[1, 2]", b'"files"', b"null", b"\xff\xfe{}",
    '{"files": {"a\udc80": {}}}'.encode("utf-8", "surrogatepass"),  # not UTF-8
    b'{"files": {}} trailing', b"{'files': {}}", b'{"version": NaN}',
])
def test_a_garbled_manifest_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        decode(raw)


def test_a_garbled_manifest_on_disk_reads_as_none_published(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).parent.mkdir(parents=True)
    (tmp_path / MANIFEST).write_bytes(b'{"version": 3, "files": {"feed.rss": ')
    assert load_manifest(tmp_path) == {"version": VERSION, "files": {}, "gone": [],
                                       "channels": {}}


def test_non_ascii_paths_and_big_numbers_survive() -> None:
    text = json.dumps({"version": VERSION, "files": {
        "topics/żółć/feed.rss": {"size": 2**53 + 1, "etag": '"ä"', "max_age": 86_400}},
        "gone": ["ünï"], "channels": {"ß": "x"}}, ensure_ascii=False)
    assert decode(text.encode("utf-8")) == json.loads(text)


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"version": 1', b"\xff", b'{"version": NaN}'])
def test_a_garbled_query_index_is_a_value_error(raw: bytes) -> None:
    """The web app takes a ValueError for 'no index yet' (any other error would be a 500)."""
    from feedserver.query.records import read_index

    with pytest.raises(ValueError):
        read_index(raw)

"""The gate's readings kept between processes (feedserver/publish/readings_store.py): a row
is only ever the reading of its own key, by this version of the code, or nothing."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest

from feedserver.publish import readings_store
from feedserver.publish.readings_store import ReadingsStore, decode, encode
from feedserver.render.formats.base import Seen
from feedserver.render.formats.readings import pack

KEY = bytes(range(32))
SEEN = Seen("urn:x:1", "Título, with “quotes”", "https://example.org/a/1",
            {"published": (2026, 11, 26, 20, 0, 0), "updated": None},
            ("https://example.org/a.mp3",))


def _readings(count: int) -> dict[bytes, Seen]:
    return {n.to_bytes(32, "big"): Seen(f"id{n}", f"Title {n}", f"https://e.org/{n}",
                                        {"updated": (2026, 1, 1, 0, 0, n % 60)}, None)
            for n in range(count)}


def test_a_reading_comes_back_as_it_went_in() -> None:
    for seen in (SEEN, Seen(None, None, None, {}, None), Seen("a", "", "b", {}, ())):
        value = encode(KEY, seen)
        assert value is not None
        back = decode(KEY, value)
        assert back == seen
        assert back is not None and type(back.enclosures) is type(seen.enclosures)
        assert all(type(d) is tuple for d in back.dates.values() if d is not None)


@pytest.mark.parametrize("seen", [
    Seen(1, "t", "l", {}, None),  # not a string (a JSON-ish value)
    Seen("i", ["t"], "l", {}, None),
    Seen("i", "t", "l", {"updated": (2026, 1, 1)}, None),  # not six numbers
    Seen("i", "t", "l", {"updated": [2026, 1, 1, 0, 0, 0]}, None),
    Seen("i", "t", "l", {}, ["https://e.org/a.mp3"]),
])
def test_a_reading_of_another_shape_is_not_kept(seen: Seen) -> None:
    assert encode(KEY, seen) is None


def test_a_damaged_or_moved_value_is_a_miss() -> None:
    value = encode(KEY, SEEN)
    assert value is not None
    for at in (0, 3, len(value) // 2, len(value) - 1):
        damaged = bytearray(value)
        damaged[at] ^= 0x20
        assert decode(KEY, bytes(damaged)) is None
    assert decode(bytes(32), value) is None  # another key's value
    assert decode(KEY, value[:-1]) is None
    assert decode(KEY, b"") is None


def test_readings_outlive_the_store_object_and_another_version_empties_it(
        tmp_path: Path) -> None:
    found = _readings(50)
    first = ReadingsStore(tmp_path, code="one")
    assert first.add(found) == 50
    first.close()
    again = ReadingsStore(tmp_path, code="one")
    assert all(again.get(key) == seen for key, seen in found.items())
    assert again.get(b"\x01" * 32) is None
    again.close()
    newer = ReadingsStore(tmp_path, code="two")
    assert all(newer.get(key) is None for key in found)
    newer.close()
    older = ReadingsStore(tmp_path, code="one")  # emptied for good by the other version
    assert older.get(next(iter(found))) is None


def test_the_oldest_rows_go_first_past_the_limit(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readings_store, "KEEP", 30)
    store = ReadingsStore(tmp_path, code="one")
    found = _readings(50)
    keys = list(found)
    store.add({k: found[k] for k in keys[:25]})
    store.add({k: found[k] for k in keys[25:]})
    kept = [k for k in keys if store.get(k) is not None]
    assert kept == keys[20:]


def test_a_damaged_file_is_no_store_and_the_build_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / readings_store.FILENAME).write_bytes(b"not a database, " * 64)
    store = ReadingsStore(tmp_path, code="one")
    with caplog.at_level(logging.WARNING):
        assert store.get(KEY) is None
        assert store.add(_readings(3)) == 0
    assert "unusable" in caplog.text and readings_store.FILENAME in caplog.text


def test_a_tampered_row_is_a_miss(tmp_path: Path) -> None:
    store = ReadingsStore(tmp_path, code="one")
    store.add({KEY: SEEN})
    store.close()
    with sqlite3.connect(tmp_path / readings_store.FILENAME) as db:
        (value,) = db.execute("SELECT value FROM readings").fetchone()
        forged = value.replace("Título".encode(), "Tìtulo".encode())
        db.execute("UPDATE readings SET value = ?", (forged,))
    assert ReadingsStore(tmp_path, code="one").get(KEY) is None


def test_a_forked_child_reads_through_a_connection_of_its_own(tmp_path: Path) -> None:
    store = ReadingsStore(tmp_path, code="one")
    found = _readings(5)
    store.add(found)
    pid = os.fork()
    if pid == 0:  # the child: the parent's connection is left alone
        ok = all(store.get(key) == seen for key, seen in found.items())
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.add(_readings(7)) == 7  # the parent's connection still works
    assert all(store.get(key) == seen for key, seen in _readings(7).items())


def test_a_forked_child_only_reads_and_never_makes_the_file(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A build's forks read the store; only the process that made the store object writes.

    A cold build of a few articles is split between the build's process and a fork, and
    both opened the new file as writers at once (``PRAGMA journal_mode=WAL``, the
    schema): one lost with "database is locked", said the store was unusable, and read
    every item again, in most cold builds of the bundled seeds.
    """
    store = ReadingsStore(tmp_path, code="one")
    pid = os.fork()
    if pid == 0:  # the child, before the parent has opened anything
        try:
            missed = store.get(KEY) is None
            made = store.path.exists()
            try:
                store.add(_readings(1))
                wrote = True
            except PermissionError:
                wrote = False
        except BaseException:
            os._exit(3)
        os._exit(0 if missed and not made and not wrote else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not store.path.exists()
    assert store.add(_readings(3)) == 3  # the parent makes the file and writes
    pid = os.fork()
    if pid == 0:  # now there is something to read
        os._exit(0 if all(store.get(k) == v for k, v in _readings(3).items()) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert "unusable" not in caplog.text


def test_the_code_version_is_made_of_files_that_exist_and_follows_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from feedserver.publish.codedigest import PACKAGE

    assert all((PACKAGE / name).is_file() for name in readings_store.MODULES)
    now = readings_store.code_version()
    assert now == readings_store.code_version()
    monkeypatch.setattr(readings_store, "MODULES",
                        (*readings_store.MODULES, "render/formats/atom.py"))
    assert readings_store.code_version() != now


def test_a_reader_never_waits_for_a_write_and_sees_it_at_its_refresh(tmp_path: Path) -> None:
    found = _readings(20)
    writer = ReadingsStore(tmp_path, code="one")
    assert writer.add(dict(list(found.items())[:10])) == 10
    reader = ReadingsStore(tmp_path, code="one", writes=False)
    keys = list(found)
    first, tenth = keys[0], keys[10]
    assert reader.get(first) == found[first]
    db = writer._connection()
    assert db is not None
    db.execute("BEGIN EXCLUSIVE")  # a build in the middle of its write (its commit)
    db.executemany("INSERT INTO readings (key, value) VALUES (?, ?)",
                   [(key, encode(key, seen)) for key, seen in list(found.items())[10:]])
    reader.refresh()
    assert reader.get(first) == found[first]  # no wait: the table as it was committed
    assert reader.get(tenth) is None
    db.execute("COMMIT")
    reader.refresh()
    assert reader.get(tenth) == found[tenth]


def test_a_reader_of_another_version_or_of_no_file_has_no_store(tmp_path: Path) -> None:
    reader = ReadingsStore(tmp_path, code="one", writes=False)
    assert reader.get(KEY) is None
    assert not (tmp_path / readings_store.FILENAME).exists()
    writer = ReadingsStore(tmp_path, code="two")
    writer.add({KEY: SEEN})
    reader.refresh()
    assert reader.get(KEY) is None  # two's readings: not one's to take
    assert ReadingsStore(tmp_path, code="two", writes=False).get(KEY) == SEEN


def test_readings_handed_over_as_bytes_are_stored_as_the_objects_are(tmp_path: Path) -> None:
    """A process that builds once hands the store its workers' readings as the bytes it
    kept them in (Readings.teach_bytes): the rows are those encode() makes."""
    readings = _readings(30)
    packed = {key: pack(seen) for key, seen in readings.items()}
    assert all(value is not None for value in packed.values())
    one, two = ReadingsStore(tmp_path / "a"), ReadingsStore(tmp_path / "b")
    assert one.add(readings) == two.add({}, packed) == 30  # type: ignore[arg-type]
    rows = [dict(sqlite3.connect(store.path).execute("SELECT key, value FROM readings"))
            for store in (one, two)]
    assert rows[0] == rows[1] and {k: decode(k, v) for k, v in rows[1].items()} == readings
    assert two.get(next(iter(readings))) == next(iter(readings.values()))

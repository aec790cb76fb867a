"""Packed content (feedserver.core.packed): the same text as the string, and shared after a fork."""

from __future__ import annotations

import os
import pickle
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedserver.build.deltas import stamp
from feedserver.core.packed import Packed, Spill, pack
from feedserver.core.records import Article
from tests.forkmem import grown_in_child

ALPHABET = "ab <>&\"'é中\u00a0\U0001f600\ud800\udfff\n"


def texts(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
            for _ in range(count)]


def test_each_handle_reads_back_its_text_and_stands_for_it() -> None:
    rng = random.Random(5)
    made = [*texts(rng, 400), "", "plain ascii", "\ud83d alone"]
    handles = pack(made)
    assert [str(h) for h in handles] == made
    for text, handle in zip(made, handles, strict=True):
        assert handle == text and text == handle
        assert hash(handle) == hash(text)
        assert bool(handle) == bool(text)
        again = pickle.loads(pickle.dumps(handle))
        assert type(again) is str and again == text
    for a, b in zip(handles, pack(made), strict=True):  # two buffers, the same texts
        assert a == b and hash(a) == hash(b)
    distinct = {h for h in handles}
    assert distinct == set(made) and len(distinct) == len(set(made))
    assert handles[-2] != "plain ascii!" and handles[-2] != handles[-3]
    assert handles[-2] != b"plain ascii"


def test_an_article_holding_a_handle_equals_the_one_holding_the_string() -> None:
    moment = datetime(2026, 1, 2, tzinfo=UTC)
    article = Article("id", "slug", "a.txt", "T", "http://x/", "<p>é</p>", "s", moment, moment)
    packed = replace(article, content_html=pack(["<p>é</p>"])[0])
    assert packed == article and hash(packed) == hash(article)
    assert {article: 1}[packed] == 1
    assert packed != replace(article, content_html="<p>e</p>")
    # what a build records of an item and a later build compares with (RFC 3229 deltas)
    assert stamp(packed) == stamp(article) != stamp(replace(article, content_html="<p>e</p>"))


def _copied_by_a_reader(contents: list[object]) -> int:
    """KiB of private memory a forked child gains by reading every text of ``contents``
    (as a renderer does: the object, then its text)."""
    return grown_in_child(lambda _: sum(len(str(value)) for value in contents))


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="Linux's smaps_rollup")
def test_a_forked_reader_leaves_packed_text_shared() -> None:
    """The point of packing: 2,000 texts of 6 KiB read in a child copy about one page each
    as strings (each string's header), and only the handles' few pages when packed."""
    rng = random.Random(9)
    made = ["".join(rng.choice("abcdefgh <p>") for _ in range(6000)) for _ in range(2000)]
    strings = ["".join(text) for text in made]  # objects of their own, as a body's are
    handles = pack(made)
    as_strings = _copied_by_a_reader(list(strings))
    as_packed = _copied_by_a_reader(list(handles))
    text_kib = 2000 * 6000 // 1024
    assert as_strings > text_kib // 3, as_strings  # the reference: most pages copied
    assert as_packed < text_kib // 10, (as_packed, as_strings)


def test_a_handle_is_not_a_string() -> None:
    """A consumer must read it with str(): a handle passed on as if it were one fails
    loudly instead of writing its repr."""
    handle = pack(["<p>x</p>"])[0]
    assert isinstance(handle, Packed) and not isinstance(handle, str)
    with pytest.raises(TypeError):
        "".join([handle])  # type: ignore[list-item]


def test_a_spill_reads_back_each_text_in_this_process_and_a_forked_one(
        tmp_path: Path) -> None:
    """Texts spilled to a file read back as packed ones do, here and in a forked child
    (``pread`` on the inherited file), and the file has no name in the folder."""
    rng = random.Random(11)
    first, second = [*texts(rng, 300), "", "\ud800 lone"], texts(rng, 200)
    spill = Spill(tmp_path)
    handles = spill.pack(first) + spill.pack(second)  # appended: one file
    made = first + second
    assert [str(h) for h in handles] == made
    for text, handle, packed in zip(made, handles, pack(made), strict=True):
        assert handle == text and hash(handle) == hash(text) and bool(handle) == bool(text)
        assert handle == packed and packed == handle  # a file's handle, a buffer's
        assert pickle.loads(pickle.dumps(handle)) == text
    assert list(tmp_path.iterdir()) == []  # unlinked (or never named)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            ok = [str(h) for h in reversed(handles)] == list(reversed(made))
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        assert pipe.read() == b"1"
    os.waitpid(pid, 0)


def _six_kib_texts() -> list[str]:
    rng = random.Random(13)
    return ["".join(rng.choice("abcdefgh <p>") for _ in range(6000)) for _ in range(2000)]


def _grown_in_a_child(make: Callable[[list[str]], object]) -> int:
    """KiB of private memory a forked child gains by calling ``make`` on 2,000 texts of
    6 KiB it made itself (so that reading them copies nothing of this process), while
    keeping what ``make`` returns."""
    return grown_in_child(make, _six_kib_texts)


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="Linux's smaps_rollup")
def test_spilled_text_is_not_in_any_process(tmp_path: Path) -> None:
    """The point of a spill: 2,000 texts of 6 KiB held by the page cache, not by the
    process that packs them (packed into a buffer, they take its memory) nor by a forked
    reader (which copies the handles' few pages)."""
    text_kib = 2000 * 6000 // 1024
    buffered = _grown_in_a_child(pack)
    spilled_kib = _grown_in_a_child(Spill(tmp_path).pack)
    assert buffered > text_kib * 2 // 3, buffered  # the reference: the buffer is memory
    assert spilled_kib < text_kib // 10, (spilled_kib, buffered)
    made = _six_kib_texts()
    spilled = Spill(tmp_path).pack(made)
    assert _copied_by_a_reader(list(spilled)) < text_kib // 10
    assert [str(h) for h in spilled[::97]] == made[::97]

"""Packed content (feedserver.core.packed): the same text as the string, and shared after a fork."""

from __future__ import annotations

import os
import pickle
import random
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedserver.build.deltas import stamp
from feedserver.build.spill import Spill
from feedserver.core.packed import Packed, pack
from feedserver.core.records import Article
from tests.forkmem import copied_in_child, pages_of, span_of

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


@pytest.mark.skipif(not Path("/proc/self/pagemap").exists(), reason="Linux's pagemap")
def test_a_forked_reader_leaves_packed_text_shared() -> None:
    """The point of packing: 2,000 texts of 6 KiB read in a child copy the page of each
    string's header (and so most of its text), and none of the buffer's text when
    packed."""
    rng = random.Random(9)
    made = ["".join(rng.choice("abcdefgh <p>") for _ in range(6000)) for _ in range(2000)]
    strings = ["".join(text) for text in made]  # objects of their own, as a body's are
    handles = pack(made)
    headers = pages_of(strings)
    text = span_of(handles[0].place()[0])  # type: ignore[arg-type]
    assert len(headers) > 1500 and len(text) > 2500
    assert copied_in_child(headers, lambda: _read_all(strings)) > 0.9 * len(headers)
    assert copied_in_child(text, lambda: _read_all(handles)) == 0


def _read_all(contents: list[str] | list[Packed]) -> int:
    """What a renderer does with each: the object, then its text."""
    return sum(len(str(value)) for value in contents)


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


def test_spilled_text_is_not_in_any_process(tmp_path: Path) -> None:
    """The point of a spill: 2,000 texts of 6 KiB held by the page cache, not by the
    process that packs them (packed into a buffer, they take its memory: traced by
    tracemalloc while each is made and kept)."""
    made = _six_kib_texts()
    text_bytes = 2000 * 6000

    def held(packer: Callable[[list[str]], list[Packed]]) -> tuple[int, list[Packed]]:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            kept = packer(made)
            return tracemalloc.get_traced_memory()[0] - before, kept
        finally:
            tracemalloc.stop()
    buffered, _ = held(pack)
    spilled, handles = held(Spill(tmp_path).pack)
    assert buffered > text_bytes, buffered  # the reference: the buffer is memory
    assert spilled < text_bytes // 20, (spilled, buffered)  # the handles alone
    assert [str(h) for h in handles[::97]] == made[::97]

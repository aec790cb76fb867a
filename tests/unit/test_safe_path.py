"""``safe_path`` (which manifest keys and URLs the web app may open) is exactly the
segment rule it states, for every path of up to seven characters over the characters
that matter ('a', '.', '/', a backslash, NUL): 97,656 paths, checked exhaustively."""

from __future__ import annotations

from itertools import product

from feedserver.web.published import safe_path


def by_segments(path: str) -> bool:
    """The rule as written: relative, no backslash or NUL, no '', '.' or '..' segment."""
    if not path or "\\" in path or "\x00" in path or path.startswith("/"):
        return False
    return not any(part in ("", ".", "..") for part in path.split("/"))


def test_safe_path_is_the_segment_rule_for_every_short_path() -> None:
    checked = 0
    for length in range(8):
        for letters in product("a./\\\x00", repeat=length):
            path = "".join(letters)
            assert safe_path(path) is by_segments(path), repr(path)
            checked += 1
    assert checked == 97_656


def test_real_paths() -> None:
    assert safe_path("topics/energy/feed.rss")
    assert safe_path(".feedserver/errors/404.html")
    assert safe_path("articles/a.b/..c/index.html")
    for bad in ("../etc/passwd", "a/../b", "a/./b", "a//b", "/abs", "a/", ".", "..", "a/.",
                "a/..", "a\\b", "a\x00b", ""):
        assert not safe_path(bad), bad

"""Folder names of languages (:func:`feedserver.core.layout.language_code`, and
:func:`~feedserver.core.layout.language_codes` for a pass over many articles), and the
per-article paths spelled in bulk as they are one by one."""

from __future__ import annotations

import pytest

from feedserver.core.layout import language_code, language_codes


@pytest.mark.parametrize(("tag", "default", "expected"), [
    ("en", "en", "en"),
    ("kk", "en", "kk"),
    ("eng", "en", "eng"),
    ("EN", "en", "en"),
    ("Kk", "ru", "kk"),
    (" ru\n", "en", "ru"),
    ("pt_BR", "en", "pt-br"),
    ("zh-Hant", "en", "zh-hant"),
    ("", "kk", "kk"),
    ("", "", "en"),
    ("e", "ru", "ru"),
    ("english", "ru", "ru"),
    ("a1", "ru", "ru"),
    ("ñé", "ru", "ru"),
    ("ⅰⅱ", "ru", "ru"),  # lowercase letters outside ASCII are not a code
    ("??", "x!", "en"),
])
def test_a_tag_becomes_its_folder_name_or_the_default(tag: str, default: str,
                                                      expected: str) -> None:
    assert language_code(tag, default) == expected


def test_many_tags_give_one_entry_each_with_the_same_codes() -> None:
    tags = ["en", "pt_BR", None, "", "en", "english", "kk", None, "pt_BR"]
    codes = language_codes(iter(tags), "ru")
    assert codes == {"en": "en", "pt_BR": "pt-br", None: "ru", "": "ru", "english": "ru",
                     "kk": "kk"}
    assert all(codes[tag] == language_code(tag or "", "ru") for tag in tags)


@pytest.mark.parametrize("slug", ["a", "water-prices-kazakhstan", "x-2"])
def test_an_article_page_is_its_folder_page(slug: str) -> None:
    from feedserver.core import layout

    assert layout.article_page(slug) == layout.folder_page(layout.article_folder(slug)) \
        == f"articles/{slug}/index.html"


def test_paths_spelled_in_bulk_are_the_paths_spelled_one_by_one() -> None:
    from feedserver.core import layout

    slugs = ["a", "water-prices-kazakhstan", "x-2", "{0}", "{}-braces", "qazaqstan-ü"]
    assert list(layout.article_pages(slugs)) == [layout.article_page(s) for s in slugs]
    assert list(layout.item_records(slugs)) == [layout.item_record(s) for s in slugs]
    fresh = {layout.article_page("a"), layout.article_page("{0}")}
    assert list(layout.unpublished(fresh, layout.article_pages(slugs))) == \
        [False, True, True, False, True, True]

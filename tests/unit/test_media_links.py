"""Links between articles resolved by the build (pure): objects kept, changes seen, warnings."""

from __future__ import annotations

from datetime import UTC, datetime

from feedserver.build.articles import Memo, fill, make_article
from feedserver.build.links import resolve_links
from feedserver.config import Settings
from feedserver.core.records import Article, Body, Identity, Stub
from feedserver.parse.links import article_marker

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
BASE = "http://127.0.0.1:8000/"


def stub(path: str, *, draft: bool = False, links: tuple[str, ...] = ()) -> Stub:
    return Stub(path=path, title=path, fingerprint=path, digest=path, draft=draft,
                needs=(*((p, "article") for p in links), ("posts/pic.png", "aaaa")))


def articles(stubs: dict[str, Stub], slugs: dict[str, str]) -> tuple[dict[str, Article],
                                                                    dict[str, Identity]]:
    ids = {path: Identity(f"urn:t:{path}", slugs[path], NOW, NOW) for path in stubs}
    made = {f"urn:t:{path}": make_article(s, ids[path], (), Settings(base_url=BASE), Body("", ""))
            for path, s in stubs.items() if not s.draft}
    return made, ids


def test_targets_are_resolved_into_the_article_and_an_unchanged_one_keeps_its_object() -> None:
    stubs = {"posts/a.md": stub("posts/a.md", links=("posts/b.md",)),
             "posts/b.md": stub("posts/b.md"), "posts/c.md": stub("posts/c.md")}
    by_id, ids = articles(stubs, {"posts/a.md": "a", "posts/b.md": "b", "posts/c.md": "c"})
    untouched = by_id["urn:t:posts/c.md"]
    made: Memo = {}
    assert resolve_links(by_id, stubs, ids, {}, made) == []
    linking = by_id["urn:t:posts/a.md"]
    assert linking.links == (("posts/b.md", f"{BASE}articles/b/"),)
    assert made["posts/a.md"][2] is linking and set(made) == {"posts/a.md"}
    assert by_id["urn:t:posts/c.md"] is untouched and untouched.links == ()
    # The next build, nothing changed: the very same object (what the memos compare).
    again: Memo = {}
    resolve_links(by_id, stubs, ids, {}, again)
    assert by_id["urn:t:posts/a.md"] is linking and again == {}
    body = Body(f'<p><a href="{article_marker(BASE, "posts/b.md")}#x">next</a></p>', "")
    assert f'<a href="{BASE}articles/b/#x">next</a>' in fill(linking, body).content_html


def test_a_link_to_an_unpublished_article_is_text_and_a_warning_naming_both() -> None:
    stubs = {"posts/a.md": stub("posts/a.md", links=("posts/b.md", "docs/d.md", "posts/e.md")),
             "posts/b.md": stub("posts/b.md", draft=True), "posts/e.md": stub("posts/e.md")}
    by_id, ids = articles(stubs, {"posts/a.md": "a", "posts/b.md": "b", "posts/e.md": "e"})
    later = by_id.pop("urn:t:posts/e.md").published
    problems = resolve_links(by_id, stubs, ids, {"posts/e.md": later}, {})
    linking = by_id["urn:t:posts/a.md"]
    assert linking.links == (("posts/b.md", ""), ("docs/d.md", ""), ("posts/e.md", ""))
    assert [(p.where, p.reason, p.severity) for p in problems] == [
        ("posts/a.md", "link 'b.md': the article posts/b.md is a draft; shown as text",
         "warning"),
        ("posts/a.md", "link '../docs/d.md': the article docs/d.md could not be read or "
                       "parsed; shown as text", "warning"),
        ("posts/a.md", f"link 'e.md': the article posts/e.md is due at {later.isoformat()}; "
                       "shown as text", "warning")]
    body = Body(f'<p><a href="{article_marker(BASE, "posts/b.md")}">next</a></p>', "")
    assert "<p><a>next</a></p>" in fill(linking, body).content_html

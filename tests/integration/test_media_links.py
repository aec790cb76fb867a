"""Links between articles follow the linked article: published, renamed, drafted, removed.

``[the other one](b.md)`` in ``posts/a.md`` is a link to ``b.md``'s page while
``b.md`` is published, and plain text (with a warning naming both files)
while it is not.  What ``a.md`` shows depends on ``b.md``'s state, so a
change of that state must re-render exactly ``a.md``'s items and page (and
``b.md``'s own), nothing else, in a long-lived scheduler's builds (one
:class:`BuildMemory`, the watcher naming only ``b.md``) as in cold builds over the
state and output folders.  The last step compares the output with a full build.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from feedserver.build.memory import BuildMemory
from feedserver.build.run import BuildReport, run_build
from feedserver.config import Settings, load_settings
from feedserver.publish.output import META_DIR
from tests.conftest import NOW, write

A = "posts/a.md"
B = "posts/b.md"
A_PAGE = "articles/linking-article/index.html"
C_PAGE = "articles/bystander/index.html"
LINKING = ("---\ntitle: Linking article\ndate: 2026-10-05T09:00:00Z\ntopics: [Alpha]\n---\n"
           "Read [the other one](b.md#part) next. Iceland, Iceland: news from Iceland.\n")
BYSTANDER = ("---\ntitle: Bystander\ndate: 2026-10-06T09:00:00Z\ntopics: [Alpha]\n---\n"
             "No links here.\n")


def linked_text(draft: bool = False, slug: str = "") -> str:
    extra = ("draft: true\n" if draft else "") + (f"slug: {slug}\n" if slug else "")
    return (f"---\ntitle: Linked article\ndate: 2026-10-04T09:00:00Z\ntopics: [Beta]\n{extra}"
            "---\n## Part\nThe other one.\n")


BROKEN = "---\ntitle: [Linked article\n---\nBroken front matter.\n"
_ANCHOR = re.compile(r'<a(?: href="([^"]*)")?[^>]*>the other one</a>')


def href(html: str) -> str | None:
    """Where the link to the other article points ('' when it has no href)."""
    found = _ANCHOR.search(html)
    assert found is not None, html
    return found.group(1) or ""


@dataclass
class Builds:
    """Builds one after the other, each a minute later: ``warm`` ones share a memory and
    name only the changed file (the watcher's way), cold ones start from nothing."""

    settings: Settings
    warm: bool
    memory: BuildMemory = field(default_factory=BuildMemory.empty)
    when: datetime = NOW

    def __call__(self, changes: set[str] | None = None) -> BuildReport:
        """One build; ``changes``: the paths the watcher named (None: a full scan)."""
        self.when += timedelta(minutes=1)
        if self.warm:
            report = run_build(self.settings, now=self.when, memory=self.memory,
                               changes=changes)
        else:
            report = run_build(self.settings, now=self.when)
        assert report.published, report.problems
        assert not [p for p in report.errors if p.where != B], report.errors
        return report

    def write(self, path: str, text: str) -> None:
        write(Path(self.settings.seeds_dir) / path, text, (self.when + timedelta(seconds=30))
              .timestamp())

    @property
    def out(self) -> Path:
        return Path(self.settings.output_dir)

    def shown(self) -> dict[str, str | None]:
        """The link as the linking article's page and items in every channel show it."""
        out = self.out
        found = {"page": href((out / A_PAGE).read_text(encoding="utf-8"))}
        for folder in ("", "topics/alpha/"):
            items = json.loads((out / f"{folder}feed.json").read_bytes())["items"]
            item = next(i for i in items if i["title"] == "Linking article")
            found[f"{folder}feed.json"] = href(item["content_html"])
            for name in ("feed.rss", "feed.atom"):
                text = (out / f"{folder}{name}").read_text(encoding="utf-8")
                chunk = text[text.index("Linking article"):]
                found[f"{folder}{name}"] = href(chunk.replace("&lt;", "<").replace("&gt;", ">")
                                                .replace("&quot;", '"').replace("&amp;", "&"))
        return found


def pages_written(report: BuildReport) -> set[str]:
    return {p for p in report.written if p.startswith("articles/") and p.endswith(".html")}


def warnings(report: BuildReport) -> list[tuple[str, str]]:
    return [(p.where, p.reason) for p in report.problems if p.severity == "warning"]


def everywhere(builds: Builds, url: str) -> None:
    assert set(builds.shown().values()) == {url}, builds.shown()


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_a_link_follows_the_linked_articles_publication_and_slug(
        settings: Settings, warm: bool, tmp_path: Path) -> None:
    builds = Builds(settings, warm)
    builds.write(A, LINKING)
    builds.write("posts/c.md", BYSTANDER)
    builds.write(B, BROKEN)
    first = builds()
    everywhere(builds, "")
    # A topic found in its text alone (Iceland) makes no channel: A is a trimmed article,
    # which a long-lived build keeps too (build/assemble.py _drop_rare).
    assert not (builds.out / "topics/iceland").exists()
    assert (A, "link 'b.md': the article posts/b.md could not be read or parsed; shown as "
               "text") in warnings(first)

    builds.write(B, linked_text(draft=True))
    report = builds({B})
    everywhere(builds, "")
    assert (A, "link 'b.md': the article posts/b.md is a draft; shown as text") \
        in warnings(report)
    assert pages_written(report) == set()  # nothing A shows changed: a draft is no link

    builds.write(B, linked_text())
    report = builds({B})
    everywhere(builds, f"{settings.base_url}articles/linked-article/#part")
    assert not [w for w in warnings(report) if w[0] == A]
    assert pages_written(report) == {A_PAGE, "articles/linked-article/index.html"}
    assert {"topics/alpha/feed.rss", "topics/alpha/feed.json", "topics/beta/feed.atom"} \
        <= set(report.written)

    builds.write(B, linked_text(slug="renamed-target"))
    report = builds({B})
    everywhere(builds, f"{settings.base_url}articles/renamed-target/#part")
    assert pages_written(report) == {A_PAGE, "articles/renamed-target/index.html"}
    assert "topics/alpha/feed.atom" in report.written
    assert C_PAGE not in report.written

    builds.write(B, linked_text(draft=True, slug="renamed-target"))
    report = builds({B})
    everywhere(builds, "")
    assert pages_written(report) == {A_PAGE}
    assert "articles/renamed-target/index.html" in report.removed
    assert {"topics/alpha/feed.rss", "topics/alpha/feed.json"} <= set(report.written)

    builds.write(B, linked_text(slug="renamed-target"))
    builds({B})
    everywhere(builds, f"{settings.base_url}articles/renamed-target/#part")
    (Path(settings.seeds_dir) / B).unlink()
    report = builds({B})
    assert "the other one" in (builds.out / A_PAGE).read_text(encoding="utf-8")
    assert "renamed-target" not in (builds.out / A_PAGE).read_text(encoding="utf-8")
    assert (A, "link 'b.md#part': no file posts/b.md in the seeds folder; shown as text") \
        in warnings(report)
    assert pages_written(report) == {A_PAGE}

    # Nothing else changed: the next build writes nothing, and the output is a full build's.
    assert builds({B}).written == []
    full = load_settings(Path(settings.seeds_dir).parent / "config.toml", env={
        "FEEDSERVER_OUTPUT_DIR": str(tmp_path / "full"),
        "FEEDSERVER_STATE_DIR": str(tmp_path / "full-state")})
    shutil.copytree(Path(settings.state_dir), tmp_path / "full-state")  # same ids and dates
    assert not run_build(full, now=builds.when).errors
    assert tree(builds.out) == tree(tmp_path / "full")


def tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and META_DIR not in p.relative_to(out).parts}


def test_a_link_to_an_article_due_later_is_text_until_it_is_due(settings: Settings) -> None:
    builds = Builds(settings, warm=True)
    builds.write(A, LINKING)
    builds.write(B, linked_text().replace("2026-10-04T09:00:00Z", "2026-11-27T12:30:00Z"))
    report = builds()
    everywhere(builds, "")
    assert (A, "link 'b.md': the article posts/b.md is due at 2026-11-27T12:30:00+00:00; "
               "shown as text") in warnings(report)
    builds.when += timedelta(minutes=30)
    report = builds(set())  # the scheduler's run when it is due
    everywhere(builds, f"{settings.base_url}articles/linked-article/#part")
    assert pages_written(report) == {A_PAGE, "articles/linked-article/index.html"}

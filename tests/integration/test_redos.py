"""Regular expressions that see article text or come from config.toml run in linear time.

The Markdown title search once had three overlapping quantifiers over spaces
(``#\\s+(.+?)\\s*#*\\s*``): a heading line with a long run of spaces took cubic
time (1.5 kB: 17 s; 2,000 spaces: 59 s).  The reproductions are built here
under the build's own parse budget (``parse_timeout``), generous on purpose:
no speed is asserted, only that none of them is skipped as over the budget and
that each title comes out as written.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from feedserver.build.run import run_build
from feedserver.config import ConfigError, Settings, load_settings
from feedserver.core.records import SourceFile
from feedserver.parse.article import parse
from tests.conftest import NOW, parse_feed, write

SPACES = " " * 2_000
REPRODUCTIONS = {  # file name: (text, how its title starts)
    "spaces-before-hash.md": (f"# Spaced{' ' * 1_500}#x\n\nBody.\n", "Spaced #x"),
    "spaces-2000.md": (f"# Two thousand{SPACES}#a\n\nBody.\n", "Two thousand #a"),
    "spaces-first.md": (f"#{SPACES}Spaces first{SPACES}#b\n\nBody.\n", "Spaces first #b"),
    "many-gaps.md": ("# " + "word " * 1_500 + "#c\n\nBody.\n", "word word word"),
}


def test_the_markdown_title_reproductions_parse_within_the_budget(settings: Settings) -> None:
    budgeted = replace(settings, parse_timeout=20.0)
    for name, (text, _) in REPRODUCTIONS.items():
        write(Path(budgeted.seeds_dir) / name, text)
    report = run_build(budgeted, now=NOW)
    assert report.published
    assert not [p for p in report.errors if p.where in REPRODUCTIONS], report.errors
    feed = parse_feed(Path(budgeted.output_dir) / "feed.atom")
    published = [" ".join(e.title.split()) for e in feed.entries]
    for _, start in REPRODUCTIONS.values():
        assert any(title.startswith(start) for title in published), (start, published)


@pytest.mark.parametrize(("body", "title"), [
    ("# Title\n\nText.", "Title"),
    ("\n\n  # Title #\n\nText.", "Title"),
    ("# Title ###   \nText.", "Title"),
    ("#\tTabbed\nText.", "Tabbed"),
    ("# C# in practice\nText.", "C# in practice"),
    ("# Ends in C#\nText.", "Ends in C#"),
    ("# Title", "Title"),
])
def test_heading_titles_follow_commonmark(settings: Settings, body: str, title: str) -> None:
    parsed = parse(SourceFile("a.md", body.encode(), 0.0), settings)
    assert parsed.title == title
    assert title not in parsed.content_html


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(\w+\s?)*x", r"(?:x|y*)*z", r"((ab)*)+c"])
@pytest.mark.parametrize("key", ["debris_lines", "caption_markers", "topic_patterns"])
def test_nested_quantifiers_in_config_patterns_are_refused(tmp_path: Path, pattern: str,
                                                           key: str) -> None:
    quoted = pattern.replace("\\", "\\\\")
    section = {"debris_lines": f'[debris]\nlines = ["{quoted}"]\n',
               "caption_markers": f'[debris]\ncaption_markers = ["{quoted}"]\n',
               "topic_patterns": f'[topics.rail]\npatterns = ["{quoted}"]\n'}[key]
    config = tmp_path / "config.toml"
    config.write_text(section, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={})
    named = {"debris_lines": "debris.lines", "caption_markers": "debris.caption_markers",
             "topic_patterns": "topics.rail.patterns"}[key]
    assert named in str(caught.value) and "line 2" in str(caught.value)
    assert "nested" in str(caught.value)


@pytest.mark.parametrize("pattern", [r"share( this( article)?)?", r"skip to (main )?content",
                                     r"\d+ comments?", r"(foo|bar)+", r"[a-z]+ \d{4}"])
def test_ordinary_config_patterns_are_accepted(tmp_path: Path, pattern: str) -> None:
    quoted = pattern.replace("\\", "\\\\")
    config = tmp_path / "config.toml"
    config.write_text(f'[debris]\nlines = ["{quoted}"]\n[topics.x]\npatterns = ["{quoted}"]\n',
                      encoding="utf-8")
    assert load_settings(config, env={}).debris.lines == (pattern,)

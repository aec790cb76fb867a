"""The validation gate and scraped text: what readers decode must be what we meant.

feedparser maps C1 control characters (U+0080-U+009F) to the Windows-1252
characters they stand for, as readers do; a title holding one used to fail
the round trip, and with it every channel listing the article.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from feedserver.build.run import BuildReport
from feedserver.config import Settings
from tests.conftest import parse_feed, write


def test_c1_controls_are_read_as_windows_1252(build: Callable[..., BuildReport],
                                               settings: Settings) -> None:
    write(Path(settings.seeds_dir) / "scraped.txt",
          "Price \x80 5 \x96 up \x81again\n\nThe \x93euro\x94 rose.\n")
    report = build()
    assert not report.errors, report.errors
    entries = parse_feed(Path(settings.output_dir) / "feed.atom").entries
    entry = next(e for e in entries if e.title.startswith("Price"))
    assert entry.title == "Price € 5 – up again"
    assert "The “euro” rose." in entry.content[0].value

"""The same corpus as a Hugo site that builds feeds only (the yardstick).

Hugo reads Markdown, not scraped ``.txt``, so each ``.txt`` article becomes a
``.md`` page with its title line as the title and its modification time as
the date (the date feedserver gives it too); ``.md`` articles are copied as
they are, their ``topics`` front matter being a Hugo taxonomy.  The site
renders RSS for the home page and for every topic term, no HTML pages
(regular pages are built but never rendered: ``_build.render = never``), and
lists at most ``max_items`` items per feed, as feedserver does.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

CONFIG = """baseURL = "http://127.0.0.1:8000/"
title = "feedserver news"
languageCode = "en"
disableKinds = ["section", "taxonomy", "sitemap", "robotsTXT", "404"]
rssLimit = {max_items}
ignoreErrors = ["error-disable-taxonomy"]

[taxonomies]
topic = "topics"

[outputs]
home = ["RSS"]
term = ["RSS"]
page = []

[[cascade]]
[cascade._target]
kind = "page"
[cascade._build]
render = "never"
list = "always"
"""


def _page_from_text(text: str, moment: datetime) -> str:
    title, _, body = text.partition("\n")
    head = {"title": title.strip(), "date": moment.isoformat()}
    lines = "\n".join(f"{key}: {json.dumps(value, ensure_ascii=False)}"
                      for key, value in head.items())
    return f"---\n{lines}\n---\n{body.strip()}\n"


def make_site(seeds: Path, site: Path, max_items: int) -> None:
    """Write a Hugo site for the articles under ``seeds`` into ``site``."""
    shutil.rmtree(site, ignore_errors=True)
    content = site / "content"
    content.mkdir(parents=True)
    (site / "hugo.toml").write_text(CONFIG.format(max_items=max_items), encoding="utf-8")
    for path in sorted(seeds.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(seeds)
        target = (content / rel).with_suffix(".md")
        target.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".txt":
            moment = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            text = _page_from_text(text, moment)
        target.write_text(text, encoding="utf-8")


def command(site: Path, out: Path) -> list[str]:
    """The hugo command line that builds ``site`` into ``out`` from scratch."""
    cache = out.parent / "hugo-cache"
    shutil.rmtree(cache, ignore_errors=True)
    return ["hugo", "--quiet", "--source", str(site), "--destination", str(out),
            "--cacheDir", str(cache), "--noBuildLock", "--gc"]


def available() -> bool:
    """True when a hugo binary is on PATH."""
    return shutil.which("hugo") is not None


def count_feeds(out: Path) -> int:
    """Number of RSS files Hugo wrote."""
    return sum(1 for _, _, files in os.walk(out) for name in files if name.endswith(".xml"))

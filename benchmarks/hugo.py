"""The same corpus as a Hugo site: feeds only, or the whole site (the yardsticks).

Hugo reads Markdown, not scraped ``.txt``, so each ``.txt`` article becomes a
``.md`` page with its title line as the title and its modification time as
the date (the date feedserver gives it too); ``.md`` articles are copied as
they are, their ``topics`` front matter being a Hugo taxonomy.  The site
renders RSS for the home page and for every topic term, no HTML pages
(regular pages are built but never rendered: ``_build.render = never``), and
lists at most ``max_items`` items per feed, as feedserver does.

The **whole site** (``make_site(..., whole=True)``) is what ``feedserver build``
publishes: HTML for the home page, sections, the taxonomy list, every term and
every page, RSS for home and every term (``rssLimit`` = ``max_items``), from a
minimal theme written here (``LAYOUTS``: a base template with a head, the
stylesheet and the feed links; pages with their date, topics and content; lists
with the newest ``max_items`` pages and their summaries), so Hugo renders real
HTML, not empty files.
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


WHOLE_CONFIG = """baseURL = "http://127.0.0.1:8000/"
title = "feedserver news"
languageCode = "en"
disableKinds = ["sitemap", "robotsTXT", "404"]
rssLimit = {max_items}

[params]
maxItems = {max_items}

[taxonomies]
topic = "topics"

[outputs]
home = ["HTML", "RSS"]
section = ["HTML"]
taxonomy = ["HTML"]
term = ["HTML", "RSS"]
page = ["HTML"]
"""

LAYOUTS = {
    "_default/baseof.html": """<!DOCTYPE html>
<html lang="{{ site.LanguageCode }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ if not .IsHome }}{{ .Title }} - {{ end }}{{ site.Title }}</title>
<meta name="description" content="{{ with .Description }}{{ . }}{{ else }}
{{- .Summary | plainify | truncate 160 }}{{ end }}">
<link rel="canonical" href="{{ .Permalink }}">
<link rel="stylesheet" href="{{ "style.css" | relURL }}">
{{ range .AlternativeOutputFormats }}<link rel="{{ .Rel }}" type="{{ .MediaType.Type }}"
 href="{{ .Permalink }}" title="{{ site.Title }}">
{{ end }}</head>
<body>
<header><a href="{{ site.Home.RelPermalink }}">{{ site.Title }}</a>
<nav><a href="{{ "topics/" | relURL }}">Topics</a>
<a href="{{ "index.xml" | relURL }}">RSS</a></nav></header>
<main>{{ block "main" . }}{{ end }}</main>
<footer>{{ site.Title }} &middot; {{ len site.RegularPages }} articles</footer>
</body>
</html>
""",
    "_default/single.html": """{{ define "main" }}<article>
<h1>{{ .Title }}</h1>
<p class="meta"><time datetime="{{ .Date.Format "2006-01-02T15:04:05Z07:00" }}">
{{- .Date.Format "2 January 2006" }}</time>
{{- with .Params.author }} &middot; {{ . }}{{ end }}</p>
{{ with .GetTerms "topics" }}<ul class="topics">{{ range . }}
<li><a href="{{ .RelPermalink }}">{{ .LinkTitle }}</a></li>{{ end }}</ul>{{ end }}
<div class="content">{{ .Content }}</div>
</article>{{ end }}
""",
    "_default/list.html": """{{ define "main" }}<h1>{{ .Title }}</h1>
{{ with .OutputFormats.Get "rss" }}<p><a href="{{ .RelPermalink }}">RSS</a></p>{{ end }}
<ol class="articles">{{ range first site.Params.maxItems .Pages }}
<li><a href="{{ .RelPermalink }}">{{ .Title }}</a>
<time datetime="{{ .Date.Format "2006-01-02" }}">{{ .Date.Format "2 Jan 2006" }}</time>
<p>{{ .Summary | plainify | truncate 300 }}</p></li>{{ end }}
</ol>{{ end }}
""",
    "_default/terms.html": """{{ define "main" }}<h1>{{ .Title }}</h1>
<ul class="topics">{{ range .Data.Terms.ByCount }}
<li><a href="{{ .Page.RelPermalink }}">{{ .Page.Title }}</a> ({{ .Count }})</li>{{ end }}
</ul>{{ end }}
""",
    "index.html": """{{ define "main" }}<h1>{{ site.Title }}</h1>
<ul class="topics">{{ range site.Taxonomies.topics.ByCount }}
<li><a href="{{ .Page.RelPermalink }}">{{ .Page.Title }}</a> ({{ .Count }})</li>{{ end }}
</ul>
<ol class="articles">{{ range first site.Params.maxItems site.RegularPages }}
<li><a href="{{ .RelPermalink }}">{{ .Title }}</a>
<time datetime="{{ .Date.Format "2006-01-02" }}">{{ .Date.Format "2 Jan 2006" }}</time>
<p>{{ .Summary | plainify | truncate 300 }}</p></li>{{ end }}
</ol>{{ end }}
""",
}
STYLE = "body { font: 16px/1.5 sans-serif; max-width: 40em; margin: auto; }\n"


def _page_from_text(text: str, moment: datetime) -> str:
    title, _, body = text.partition("\n")
    head = {"title": title.strip(), "date": moment.isoformat()}
    lines = "\n".join(f"{key}: {json.dumps(value, ensure_ascii=False)}"
                      for key, value in head.items())
    return f"---\n{lines}\n---\n{body.strip()}\n"


def make_site(seeds: Path, site: Path, max_items: int, whole: bool = False) -> None:
    """Write a Hugo site for the articles under ``seeds`` into ``site``: feeds only, or
    (``whole``) every HTML page too, with the minimal theme of :data:`LAYOUTS`."""
    shutil.rmtree(site, ignore_errors=True)
    content = site / "content"
    content.mkdir(parents=True)
    config = WHOLE_CONFIG if whole else CONFIG
    (site / "hugo.toml").write_text(config.format(max_items=max_items), encoding="utf-8")
    if whole:
        for name, text in LAYOUTS.items():
            (site / "layouts" / name).parent.mkdir(parents=True, exist_ok=True)
            (site / "layouts" / name).write_text(text, encoding="utf-8")
        (site / "static").mkdir()
        (site / "static" / "style.css").write_text(STYLE, encoding="utf-8")
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

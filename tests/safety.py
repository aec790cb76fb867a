"""What "markup that runs" means for the security tests, and a site hostile in every field.

:class:`Active` reads HTML with the standard library's parser (entities in
attribute values decoded, as a browser does) and reports every element,
attribute or URL that can run script: script-capable elements, ``on*``
handlers, ``javascript:``/``vbscript:`` URLs (after removing the whitespace and
control characters browsers ignore), ``data:`` URLs other than raster images,
script in ``style``.  Feed content gets the strict rules; a page may also
carry the site's own head elements, all pointing at ``base_url`` (its own
stylesheet and icon by root-relative ``/static/`` URLs), and its feed form (a GET to
``base_url``'s ``subscribe``).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from feedserver.config import Settings, load_settings

BASE = "https://feeds.example.org/"
RUNS = frozenset({"script", "iframe", "frame", "frameset", "object", "embed", "applet", "base",
                  "form", "meta", "link", "style", "portal"})
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "poster", "data", "srcset",
                            "xlink:href", "background", "cite", "longdesc", "usemap",
                            "manifest", "icon", "dynsrc", "lowsrc", "ping"})
_IGNORED_BY_BROWSERS = re.compile(r"[\x00-\x20\x7f]+")
_SAFE_DATA = re.compile(r"data:image/(png|gif|jpe?g|webp|avif)[;,]")


def bad_url(value: str) -> bool:
    """A URL a browser would run (or render as a document) when followed or loaded."""
    url = _IGNORED_BY_BROWSERS.sub("", value).lower()
    for part in url.split(","):  # srcset lists
        if part.startswith(("javascript:", "vbscript:", "livescript:")):
            return True
        if part.startswith("data:") and not _SAFE_DATA.match(part):
            return True
    return False


class Active(HTMLParser):
    """Collects everything in a piece of HTML that could run script."""

    def __init__(self, page: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.found: list[str] = []

    @classmethod
    def findings(cls, html: str, page: bool = False) -> list[str]:
        parser = cls(page)
        parser.feed(html)
        parser.close()
        return parser.found

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in RUNS and not (self.page and self._own(tag, values)):
            self.found.append(f"<{tag}> {values}")
        for name, value in values.items():
            if name.startswith("on") or (name in URL_ATTRIBUTES and bad_url(value)):
                self.found.append(f"<{tag} {name}={value!r}>")
            elif name == "style" and re.search(r"javascript:|expression\(|url\(", value, re.I):
                self.found.append(f"<{tag} style={value!r}>")

    handle_startendtag = handle_starttag

    @staticmethod
    def _own(tag: str, values: dict[str, str]) -> bool:
        """The site's own head elements (and the embed frame's link target)."""
        if tag in ("link", "script"):
            return values.get("href", values.get("src", "")).startswith((BASE, "/static/"))
        if tag == "meta":
            return "http-equiv" not in values
        if tag == "base":
            return "href" not in values
        if tag == "form":  # the feed form: a GET to the site's own /subscribe (issue 14)
            return (values.get("method", "get").lower() == "get"
                    and values.get("action", "") == f"{BASE}subscribe")
        return False


def active_in_page(html: str) -> list[str]:
    return Active.findings(html, page=True)


# -- a site hostile in every field ------------------------------------------------------------

BODY = """<script>alert(10)</script><iframe src="javascript:alert(11)"></iframe>
<a href="javascript:alert(12)">j</a> <a href="JaVaScRiPt:alert(13)">J</a>
<a href="  javascript:alert(14)">s</a> <a href="jav&#x09;ascript:alert(15)">tab</a>
<a href="vbscript:msgbox(16)">v</a>
<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxNyk8L3NjcmlwdD4=">d</a>
<img src=x onerror=alert(18)> <img src="javascript:alert(19)">
<img srcset="javascript:alert(20) 1x"> <img src="data:image/svg+xml,<svg onload=alert(43)>">
<p onmouseover="alert(21)" style="background:url(javascript:alert(22))">p</p>
<svg><script>alert(23)</script></svg> <math><mtext><script>alert(24)</script></mtext></math>
<object data="javascript:alert(25)"></object><embed src="javascript:alert(26)">
<form action="javascript:alert(27)"><button formaction="javascript:alert(28)">b</button></form>
<base href="javascript:alert(29)//"><meta http-equiv="refresh" content="0;url=javascript:x">
<style>body{background:url(javascript:alert(31))}</style>
<link rel=stylesheet href="javascript:alert(32)">
<details open ontoggle=alert(33)>d</details> <video poster="javascript:alert(34)"></video>
<noscript><p title="</noscript><img src=x onerror=alert(44)>"></noscript>
<a href="&#106;avascript:alert(45)">entity</a> <a href="javascript&colon;alert(46)">colon</a>

[md link](javascript:alert(35)) ![md img](javascript:alert(36)) <javascript:alert(37)>
[ref][r] <![CDATA[<script>alert(39)</script>]]> ]]> <!-- <script>alert(40)</script> -->

[r]: javascript:alert(38)
"""
ARTICLES = {
    "evil/front.md": (
        '---\ntitle: "<img src=x onerror=alert(1)><script>alert(1)</script> Title"\n'
        'summary: "<script>alert(2)</script><a href=\\"javascript:alert(3)\\">s</a> a<b"\n'
        'author: "<svg onload=alert(4)>Eve</svg>"\n'
        'tags: ["<script>alert(5)</script>", "x\\" onmouseover=\\"alert(6)", '
        '"javascript:alert(7)", "<img src=x onerror=alert(8)>"]\n'
        'lang: "en\\"><script>alert(9)</script>"\n---\n' + BODY),
    "evil/toml.md": (
        '+++\ntitle = "</title><script>alert(50)</script>]]>"\n'
        'author = "\\"><iframe src=javascript:alert(51)>"\n'
        'slug = "<script>alert(52)</script>"\nid = "javascript:alert(53)"\n'
        'topics = ["</category><script>alert(54)</script>"]\n+++\n'
        "# Heading <script>alert(55)</script>\n\nBody with <b onclick=alert(56)>bold</b>.\n"),
    "evil/plain.txt": ("Plain <b>text</b> with a<b\n\nIt holds if a<b and b>c; "
                       "<script>alert(41)</script> is only text here.\n"),
    "evil/summary-only.md": ('---\ntitle: Summary only\nsummary: "<img src=x '
                             'onerror=alert(60)> and a<b"\n---\n'),
}


def hostile_site(root: Path) -> Settings:
    """The bundled seeds plus :data:`ARTICLES`, built to ``root/out`` from ``BASE``."""
    import shutil

    from .conftest import ROOT

    shutil.copytree(ROOT / "seeds", root / "seeds")
    shutil.copy(ROOT / "config.toml", root / "config.toml")
    for name, text in ARTICLES.items():
        (root / "seeds" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "seeds" / name).write_text(text, encoding="utf-8")
    return load_settings(root / "config.toml", env={
        "FEEDSERVER_BASE_URL": BASE, "FEEDSERVER_OUTPUT_DIR": str(root / "out")})

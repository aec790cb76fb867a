"""An nginx configuration that serves the output folder with the web app's HTTP contract.

Replicas and CDNs serve ``public/`` as static files; what makes it the site
(feed media types, 410 for what a publish removed, per-channel Cache-Control,
CORS, CSP, the page a browser gets for a feed URL, the unknown widget loader)
lives in the manifest and the settings, which this module turns into one
include file for nginx's ``http`` block: ``map`` blocks keyed by URI (built
from the manifest, so they are hashes, not regex chains) and one ``server``.
Every header is set once at server level from a map; no location adds its own,
because nginx's ``add_header`` in a location silently drops the server's.

What only the app can do (the poll budget's 429, ``/metrics``, ``/healthz``,
the WebSub hub) is left out: the README lists it.  The text depends only on the
manifest's channels, feeds and gone paths and on the settings, so a publish
that changed neither writes the same bytes (:func:`write` then leaves the file
alone and nginx needs no reload).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from feedserver.config import Settings
from feedserver.core.freshness import ARCHIVE_CACHE
from feedserver.core.layout import (
    EMBED,
    ERROR_PAGES,
    ERRORS,
    INDEX,
    META_DIR,
    PREVIEW,
    UNKNOWN,
    is_internal,
    is_loader_path,
    preview_path,
)
from feedserver.core.media import LONG_CACHE, MEDIA_DIR, TYPES
from feedserver.publish import manifest as records
from feedserver.publish.manifest import load_manifest

# What HTML must beat for a browser to get a feed's page (web.negotiate.READER_TYPES).
READER_TYPES = ("application/rdf+xml", "application/xml", "text/xml", "application/json")
MAX_ACCEPT = 2048
BROTLI_MODULE = "/usr/lib/nginx/modules/ngx_http_brotli_static_module.so"
_SAFE = re.compile(r"[\x21-\x7e]*")


def quote(text: str) -> str:
    """An nginx string literal: double-quoted, with ``"`` and ``\\`` escaped (paths with
    ``$``, which would start a variable in a value, are left out by :func:`_uri_ok`)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _uri_ok(path: str) -> bool:
    """Paths nginx can match literally: printable ASCII, no ``$``, quote or space."""
    return bool(_SAFE.fullmatch(path)) and not any(c in path for c in '$"\\ ;{}')


def uris(path: str) -> list[str]:
    """The URIs that reach an output path (a folder's page: with and without index.html)."""
    if path == INDEX:
        return ["/", f"/{INDEX}"]
    if path.endswith(f"/{INDEX}"):
        return [f"/{path[:-len(INDEX)]}", f"/{path}"]
    return [f"/{path}"]


def csp(settings: Settings, embed: bool) -> str:
    """The pages' Content-Security-Policy (web.published.content_security_policy)."""
    parts = urlsplit(settings.base_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if embed:
        sources = " ".join(settings.frame_ancestors.replace(";", " ").replace(",", " ").split())
        ancestors = sources or "'none'"
    else:
        ancestors = "'self'"
    return ("default-src 'none'; "
            f"style-src 'self' {origin}; img-src http: https: data:; "
            f"media-src 'self' {origin}; base-uri 'none'; form-action 'none'; "
            f"frame-ancestors {ancestors}")


def _pow2(value: int, least: int) -> int:
    size = least
    while size < value:
        size *= 2
    return size


def _map(source: str, target: str, default: str, rows: Iterable[tuple[str, str]],
         raw_default: bool = False) -> list[str]:
    lines = [f"map {source} {target} {{",
             f"    default {default if raw_default else quote(default)};"]
    lines += [f"    {key} {value};" for key, value in rows]
    lines.append("}")
    return lines


def _files(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {path: meta for path, meta in sorted((data.get("files") or {}).items())
            if isinstance(meta, dict) and _uri_ok(path)}


def _types(files: dict[str, dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """Media type by extension (the most common one), and the file names that differ
    (``topics.json`` beside the ``feed.json`` files)."""
    by_ext: dict[str, Counter[str]] = defaultdict(Counter)
    by_name: dict[str, set[str]] = defaultdict(set)
    for path, meta in files.items():
        name = path.rpartition("/")[2]
        ext = name.rpartition(".")[2] if "." in name else ""
        media = str(meta.get("media_type") or "application/octet-stream")
        by_ext[ext][media] += 1
        by_name[name].add(media)
    types = {suffix.lstrip("."): kind for suffix, kind in TYPES.items()}
    types.update({ext: count.most_common(1)[0][0] for ext, count in by_ext.items() if ext})
    names = {}
    for name, kinds in by_name.items():
        ext = name.rpartition(".")[2] if "." in name else ""
        kind = sorted(kinds)[0]
        if len(kinds) == 1 and types.get(ext) != kind:
            names[name] = kind
    return types, names


def _accept_map(feed_types: Iterable[str]) -> list[str]:
    """``$feedserver_html``: 1 for a browser's navigation (web.negotiate.prefers_html).

    nginx cannot compare q values, so this is the rule for the headers that
    exist: ``text/html`` at full quality with every feed and XML type (and any
    wildcard matching them) absent or below it gets the page; a header naming a
    feed type at full quality, or longer than 2048 bytes, gets the feed.  A
    header ranking ``text/html`` itself below 1 gets the feed here (the app
    would compare it with the rest): no browser sends one.
    """
    kinds = sorted({k.split(";")[0].strip() for k in feed_types} | set(READER_TYPES))
    alts = "|".join(re.escape(k) for k in kinds) + r"|\*/\*|text/\*|application/\*"
    full = r"\s*(;\s*q\s*=\s*1(\.0*)?\s*)?(,|$)"
    rows = [(quote(f"~^.{{{MAX_ACCEPT + 1}}}"), "0"),
            (quote(f"~*(^|,)\\s*({alts}){full}"), "0"),
            (quote(f"~*(^|,)\\s*text/html{full}"), "1")]
    return _map("$http_accept", "$feedserver_html", "0", rows)


def render(settings: Settings, data: dict[str, Any], listen: str = "80") -> str:
    """The include file's text for the manifest ``data`` (see the module docstring)."""
    files = _files(data)
    served = {p: m for p, m in files.items() if not is_internal(p)}
    feeds = {p: m for p, m in served.items() if records.feed_format(m)}
    fresh = settings.refresh_interval
    root = str(Path(settings.output_dir).resolve())
    host = urlsplit(settings.base_url).hostname or "_"
    types, names = _types(served)
    out = [f"# Generated by `feedserver export nginx` from {root}/{META_DIR}/manifest.json.",
           "# Do not edit: each publish rewrites it when channels or gone paths change.",
           "# Include it in nginx's http block; it needs the brotli_static module",
           "# (Debian: apt-get install nginx-light libnginx-mod-http-brotli-static).", ""]
    out += _accept_map(m.get("media_type") or "" for m in feeds.values())
    swaps = [(quote(f"1{uri}"), quote(f"/{preview_path(p.rpartition('/')[0])}"))
             for p in feeds if preview_path(p.rpartition("/")[0]) in served for uri in uris(p)]
    out += _map("$feedserver_html$uri", "$feedserver_swap", "", swaps)
    gone = sorted({uri for p in data.get("gone") or () if isinstance(p, str) and _uri_ok(p)
                   and not is_internal(p) and not is_loader_path(p) and p not in files
                   for uri in uris(p)})
    out += _map("$uri", "$feedserver_gone", "", [(quote(u), "1") for u in gone])
    public = f"public, max-age={fresh}"
    out += _map("$arg_v", "$feedserver_media_cache", LONG_CACHE, [('""', quote(public))])
    cache = [(quote(f"~/{re.escape(PREVIEW)}$"), quote(f"private, max-age={fresh}")),
             (quote(f"~^/{MEDIA_DIR}/"), "$feedserver_media_cache")]
    cache += [(quote(u), quote(ARCHIVE_CACHE if records.immutable(m)  # a full archive page
                               else f"public, max-age={records.max_age(m) or fresh}"))
              for p, m in feeds.items() for u in uris(p)]
    out += _map("$uri", "$feedserver_cache", public, cache)
    vary = [(quote(f"~/{re.escape(PREVIEW)}$"), quote("Accept"))]
    vary += [(quote(u), quote("Accept")) for p in feeds for u in uris(p)]
    out += _map("$uri", "$feedserver_vary", "", vary)
    cors = [(quote(u), quote("*")) for p, m in served.items() if records.cors(m)
            for u in uris(p)]
    out += _map("$uri", "$feedserver_cors_file", "", cors)
    out += _map("$status", "$feedserver_cors", "$feedserver_cors_file",  # and every 404/410
                [("404", quote("*")), ("410", quote("*"))], raw_default=True)
    out += _map("$feedserver_cors", "$feedserver_expose", "ETag, Last-Modified",
                [('""', '""')])
    out += _map("$request_method", "$feedserver_allow", "",
                [("OPTIONS", quote("GET, HEAD, OPTIONS"))])
    out += _map("$request_method$feedserver_cors_file", "$feedserver_preflight", "",
                [(quote("OPTIONS*"), "1")])
    out += _map("$feedserver_preflight", "$feedserver_allow_methods", "",
                [("1", quote("GET, HEAD"))])
    out += _map("$feedserver_preflight", "$feedserver_allow_headers", "",
                [("1", quote("If-None-Match, If-Modified-Since"))])
    out += _map("$feedserver_preflight", "$feedserver_max_age", "", [("1", quote("86400"))])
    pages = r"(\.html|/)$"
    out += _map("$uri", "$feedserver_csp", "",
                [(quote(f"~^/{EMBED}/.*{pages}"), quote(csp(settings, True))),
                 (quote(f"~{pages}"), quote(csp(settings, False)))])
    hubs = [f'<{hub}>; rel="hub"' for hub in settings.hub_urls]
    links = [(quote(u), quote(", ".join([*hubs, f'<{settings.base_url}{p}>; rel="self"'])))
             for p in feeds for u in uris(p)]
    out += _map("$uri", "$feedserver_link", "", links)
    # The last segment, for the folder redirect's relative Location: only the characters
    # of the site's own slugs, so nothing nginx decoded (%0d%0a) can reach a header.
    out += _map("$uri", "$feedserver_leaf", "",
                [(quote("~/(?<feedserver_name>[A-Za-z0-9._~-]+)$"), "$feedserver_name")])
    for code in (404, 410):
        out += _map("$uri", f"$feedserver_error_{code}", f"/{ERROR_PAGES[code]}",
                    [(quote(r"~\.json$"), f"@feedserver_json_{code}")])
    keys = [line.split('"')[1] for line in out if line.startswith('    "') and
            not line.startswith('    "~')]
    longest = max((len(k) for k in keys), default=0)
    # nginx's defaults (64-byte buckets) refuse the long URIs of a deep site.
    out[5:5] = [f"map_hash_bucket_size {_pow2(longest + 64, 128)};",
                f"map_hash_max_size {_pow2(2 * len(keys), 4096)};"]
    out += ["", *_server(settings, root, host, listen, types, names)]
    return "\n".join(out) + "\n"


MISSING = "@feedserver_missing"


def _file_location(match: str, extra: Iterable[str] = (), fallback: str = MISSING
                   ) -> list[str]:
    """A location serving files; 410 for gone paths here, not at server level, where
    the error page's own internal redirect would meet the (cached) map again."""
    return [f"    location {match} {{", *(f"        {line}" for line in extra),
            "        if ($feedserver_gone) { return 410; }",
            f"        try_files $uri {fallback};" if fallback != MISSING else
            f"        try_files $uri ${{uri}}{INDEX} {MISSING};",
            "    }"]


def _server(settings: Settings, root: str, host: str, listen: str, types: dict[str, str],
            names: dict[str, str]) -> list[str]:
    out = ["server {", f"    listen {listen};", f"    server_name {host};",
           f"    root {quote(root)};", f"    index {INDEX};",
           "    disable_symlinks on;  # the app follows no link below the output folder",
           "    server_tokens off;", "    absolute_redirect off;", "    charset off;",
           "    if_modified_since before;", "    gzip off;",
           "    gzip_static on;  # feed.rss.gz beside feed.rss, made by the publish",
           "    gzip_vary on;", "    brotli_static on;  # feed.rss.br",
           "    default_type application/octet-stream;", "    types {"]
    out += [f"        {quote(kind)} {ext};" for ext, kind in sorted(types.items())]
    out += ["    }",
            "    add_header X-Content-Type-Options nosniff always;",
            "    add_header Cache-Control $feedserver_cache always;",
            "    add_header Vary $feedserver_vary;",
            "    add_header Access-Control-Allow-Origin $feedserver_cors always;",
            "    add_header Access-Control-Expose-Headers $feedserver_expose always;",
            "    add_header Access-Control-Allow-Methods $feedserver_allow_methods;",
            "    add_header Access-Control-Allow-Headers $feedserver_allow_headers;",
            "    add_header Access-Control-Max-Age $feedserver_max_age;",
            "    add_header Allow $feedserver_allow;",
            "    add_header Content-Security-Policy $feedserver_csp always;",
            "    add_header Link $feedserver_link;",
            "    error_page 404 $feedserver_error_404;",
            "    error_page 410 $feedserver_error_410;",
            "    error_page 403 =404 $feedserver_error_404;  # a folder without its page",
            "    # Here, not in a location: a location's error_page drops all of the server's.",
            "    error_page 405 = @feedserver_preflight;  # OPTIONS on a file (nginx says 405)",
            "    if ($feedserver_swap) { rewrite ^ $feedserver_swap last; }  # Accept: text/html",
            "", *_file_location("/"),
            f"    location ^~ /{META_DIR}/ {{ internal; }}  # the build's own files",
            "    location ~ /\\. { return 404; }  # staged temp files, dot files",
            "    location ~ \\.(gz|br)$ { return 404; }  # precompressed bodies: by encoding only"]
    loader = f"^/{EMBED}/[a-z0-9][a-z0-9-]{{0,99}}\\.js$"
    out += _file_location(f'~ "{loader}"', fallback=f"/{UNKNOWN}")
    for name, kind in sorted(names.items()):
        out += _file_location(f'~ "(^|/){re.escape(name)}$"',
                              ["types { }", f"default_type {quote(kind)};"])
    out += ["    location @feedserver_missing {",
            '        if ($feedserver_leaf = "") { return 404; }  # no slug: no folder of ours',
            f"        if (-f $request_filename/{INDEX}) {{",
            "            return 308 ./$feedserver_leaf/$is_args$args;  # relative, as the app's",
            "        }",
            "        return 404;", "    }",
            "    location @feedserver_preflight {",
            "        if ($request_method != OPTIONS) { return 405; }",
            "        return 204;", "    }"]
    for code in (404, 410):
        title, text = ERRORS[code]
        body = json.dumps({"error": title.lower(), "status": code, "message": text})
        out += [f"    location @feedserver_json_{code} {{",
                '        types { }',
                '        default_type "application/json; charset=utf-8";',
                f"        return {code} {quote(body)};", "    }"]
    out.append("}")
    return out


def write(settings: Settings, target: Path, listen: str = "80",
          data: dict[str, Any] | None = None) -> bool:
    """Write the include file for the current manifest to ``target`` (atomically),
    unless it already holds exactly that text; True when it was written."""
    text = render(settings, data if data is not None
                  else load_manifest(Path(settings.output_dir)), listen)
    try:
        if target.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return True

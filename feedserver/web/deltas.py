"""RFC 3229 ``A-IM: feed`` answers: ``226 IM Used`` with the items new since the poller's ETag.

The build made every delta beforehand (:mod:`feedserver.build.deltas`) and listed
each in the manifest with the ETags it starts from and the one it leads to
(:func:`feedserver.publish.manifest.delta_of`); here a worker only looks one up by
(feed path, an ETag of ``If-None-Match``) and sends it, precompressed like any
other body.  It renders and parses nothing.  A delta is sent only while the
feed's published version is the one it leads to; otherwise the request goes on
as if ``A-IM`` had not been sent (200 with the full feed, or 304).

The 226 carries the ETag and Last-Modified the full feed would have, so the
poller's next request is an ordinary conditional one.  It is ``private`` (a shared
cache must not hand one poller's delta to another holding another version) and
varies on ``A-IM`` and ``If-None-Match`` besides what the feed varies on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.http import parse_etags

from feedserver.core.layout import ENCODINGS, is_internal
from feedserver.publish.manifest import delta_of

if TYPE_CHECKING:
    from feedserver.web.published import PublishedFile, Store

Headers = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class DeltaFile:
    """One published delta: the feed ETag it leads to, and its bodies by encoding
    ('' plain) as (file name, ETag)."""

    target: str
    variants: dict[str, tuple[str, str]]


def index(listed: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], DeltaFile]:
    """(feed path, an ETag a client may hold) -> the delta for it, from a manifest's files."""
    found: dict[tuple[str, str], DeltaFile] = {}
    for path, meta in listed.items():
        if not is_internal(path):
            continue
        delta = delta_of(dict(meta))
        if delta is None:
            continue
        feed, target, bases = delta
        variants = {"": (path, str(meta.get("etag", "")))}
        for name, info in (meta.get("encodings") or {}).items():
            if name in ENCODINGS and isinstance(info, dict):
                variants[name] = (path + ENCODINGS[name], str(info.get("etag", "")))
        made = DeltaFile(target, variants)
        for base in bases:
            found[(feed, base)] = made
    return found


def wants_feed_delta(header: str) -> bool:
    """Whether an ``A-IM`` header asks for the ``feed`` instance-manipulation."""
    return any(part.split(";", 1)[0].strip().lower() == "feed" for part in header.split(","))


def held(header: str) -> list[str]:
    """The strong ETags of ``If-None-Match``, quoted as this server sends them."""
    return [f'"{tag}"' for tag in parse_etags(header).as_set()]


def answer(deltas: Mapping[tuple[str, str], DeltaFile], feed: str, entry: PublishedFile,
           environ: Mapping[str, Any], store: Store, encodings: Iterable[str],
           validators: Headers) -> tuple[bytes, Headers] | None:
    """The 226's body and headers for a poller that sent ``A-IM: feed``, or None (then
    the request is answered as without it).  ``encodings``: what the client accepts,
    best first, '' last; ``validators``: the full feed's ETag and Last-Modified."""
    if not wants_feed_delta(environ.get("HTTP_A_IM", "")):
        return None
    target = entry.variants[""].etag
    delta = None
    for tag in held(environ.get("HTTP_IF_NONE_MATCH", "")):
        delta = deltas.get((feed, tag))
        if delta is not None and delta.target == target:
            break
    else:
        return None
    for name in encodings:
        if name not in delta.variants:
            continue
        filename, etag = delta.variants[name]
        found = store.read(filename, etag)
        if found is not None and found[0] == etag:
            return found[1], _headers(entry, name, len(found[1]), validators)
    return None


def _headers(entry: PublishedFile, encoding: str, size: int, validators: Headers) -> Headers:
    """The full feed's headers, made right for a delta of it."""
    headers: Headers = []
    vary = False
    for name, value in entry.variants[""].headers:
        if name == "Cache-Control":
            value = value.replace("public", "private", 1)
        elif name == "Vary":
            value, vary = f"{value}, A-IM, If-None-Match", True
        elif name == "Access-Control-Expose-Headers":
            value = f"{value}, IM"
        headers.append((name, value))
    if not vary:
        headers.append(("Vary", "A-IM, If-None-Match"))
    headers.append(("IM", "feed"))
    if encoding:
        headers.append(("Content-Encoding", encoding))
    return [*headers, ("Content-Length", str(size)), *validators]

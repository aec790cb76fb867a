"""The read side of the output folder's records: the manifest and status.json.

The writer (:mod:`feedserver.publish.output`) compresses and stages files, with
brotli, ISA-L and orjson; whatever only *reads* what it wrote (the web app in
every web worker, ``serve``'s start-up checks, the next build) comes here
instead and needs none of the writer's libraries.  It reads the manifest with msgspec,
in under half the standard library's time and with less memory at its peak (every
web worker reads it again after each publish, and waits for it: benchmarks/README.md,
"A publish, as a web worker sees it").

A manifest entry (``files[path]``) holds ``etag``, ``size``, ``media_type``,
``last_modified`` (an HTTP date), ``channel``, ``encodings`` (name -> etag and
size of each precompressed body) and, where they apply, ``format`` (the feed
format of a feed file), ``cors`` (other sites' scripts may read it) and
``max_age`` (a feed's freshness in seconds, from its channel's pace:
:mod:`feedserver.core.freshness`) and ``immutable`` (a full archive page): absent
means '', false, the refresh interval and false, which keeps a manifest of tens of
thousands of pages small.  An RFC 3229
delta (a file under :data:`DELTAS`, never served by its own URL) has ``delta``:
``feed`` (the feed's path), ``to`` (the plain ETag of the feed version it leads to)
and ``from`` (every ETag a client may hold for the version it starts from).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import msgspec

from feedserver.core.layout import MANIFEST, META_DIR, STATUS

# 2: entries carry ``format`` and ``cors``; 3: feeds carry ``max_age``.  An older
# manifest lacks them, so its channel signatures are not trusted: the next build goes
# through every file once.
VERSION = 3
DELTAS = f"{META_DIR}/deltas"  # RFC 3229 feed deltas: deltas/<feed path>-<base>.<ext>
DELTAS_PREFIX = f"{DELTAS}/"  # every delta file's path starts so; nothing else's does


def etag_of(body: bytes) -> str:
    """Strong ETag from the bytes themselves, so it changes only with content."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_of_open(fd: int) -> str:
    """:func:`etag_of` of an open file's bytes, read in pieces with ``pread`` (a media
    file is never held whole; the descriptor's position is left where it was)."""
    digest, offset = hashlib.sha256(), 0
    while chunk := os.pread(fd, 1 << 20, offset):
        digest.update(chunk)
        offset += len(chunk)
    return '"' + digest.hexdigest()[:32] + '"'


def empty() -> dict[str, Any]:
    """The manifest of a folder nothing was published to."""
    return {"version": VERSION, "files": {}, "gone": [], "channels": {}}


def decode(raw: bytes | str) -> dict[str, Any]:
    """A manifest's text -> its dict, every section present; raises ValueError if garbled.

    msgspec decodes straight into Python objects: orjson, as fast, first builds a
    document of its own, about eleven times the manifest's size at its peak.  It refuses
    what the standard library would let through and orjson, our writer, never writes
    (``NaN``, text that is not UTF-8): such a file is garbled.  The cyclic garbage
    collector is paused while it parses: parsed JSON holds no cycle, so a collection then
    can free nothing, yet the containers it makes set them off by the dozen (a 53 MB
    manifest, 50,000 articles: 0.83 s to parse with the standard library, 0.45 s paused).
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        data = msgspec.json.decode(raw)
    finally:
        if collecting:
            gc.enable()
    if not isinstance(data, dict):
        raise ValueError("the manifest is not a JSON object")
    data.setdefault("files", {})
    data.setdefault("gone", [])
    data.setdefault("channels", {})
    version = data.get("version", 1)
    if not isinstance(version, int) or version < VERSION:
        data["channels"] = {}  # signatures of files whose entries lack format and cors
    return data


def load_manifest(out_dir: Path) -> dict[str, Any]:
    """The current manifest, or an empty one (first run, or unreadable)."""
    try:
        return decode((out_dir / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return empty()


def feed_format(entry: dict[str, Any]) -> str:
    """The feed format of a file's entry ('' for anything but a feed)."""
    value = entry.get("format")
    return value if isinstance(value, str) else ""


def cors(entry: dict[str, Any]) -> bool:
    """Whether other sites' scripts may read the file."""
    return entry.get("cors") is True


def max_age(entry: dict[str, Any]) -> int | None:
    """A feed's freshness in seconds as the build computed it (None: not recorded)."""
    value = entry.get("max_age")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


def delta_of(entry: dict[str, Any]) -> tuple[str, str, tuple[str, ...]] | None:
    """A delta file's (feed path, ETag it leads to, ETags it starts from), else None."""
    value = entry.get("delta")
    if not isinstance(value, dict):
        return None
    feed, target, bases = value.get("feed"), value.get("to"), value.get("from")
    if not (isinstance(feed, str) and isinstance(target, str) and isinstance(bases, list)):
        return None
    return feed, target, tuple(b for b in bases if isinstance(b, str))


def immutable(entry: dict[str, Any]) -> bool:
    """Whether the file is a full archive page (RFC 5005): its bytes never change as
    articles arrive, so caches may keep it long without asking again."""
    return entry.get("immutable") is True


def read_status(out_dir: Path) -> dict[str, Any]:
    """status.json (see :func:`feedserver.publish.output.write_status`); {} if unreadable."""
    try:
        status = json.loads((out_dir / STATUS).read_bytes())
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


# One version of a file (the manifest, the config): (device, inode, size, mtime), or None.
Stamp = tuple[int, int, int, int] | None


def stamp_of(path: str) -> Stamp:
    """What identifies one version of the file (a rename or a write changes it)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

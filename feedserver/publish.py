"""The filesystem edge on the way out: the output folder and its manifest.

The output folder mirrors the site's URLs (``feed.rss``,
``topics/<slug>/feed.atom``, ...) so the Flask app, nginx or a CDN can serve
it as is.  Beside each file go precompressed ``.gz`` and ``.br`` bodies, made
once per publish.  ``.feedserver/manifest.json`` records each file's ETag,
Last-Modified, media type and encodings, and the paths that went away (served
as 410 Gone).

A publish writes every new body to a temporary file first; only when all of
them are on disk are they renamed into place, then the manifest.  A full disk
or a crash before that leaves the previous output untouched; a rename never
leaves a torn file, so a reader always gets a whole old or a whole new body.
Files whose bytes did not change are not rewritten: their mtime, ETag and
Last-Modified stay put, which is what keeps polling cheap.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import brotli

from .errors import PublishError
from .models import Rendered

META_DIR = ".feedserver"
MANIFEST = f"{META_DIR}/manifest.json"
STATUS = f"{META_DIR}/status.json"
ENCODINGS = {"br": ".br", "gzip": ".gz"}
_MIN_COMPRESS = 256


@dataclass(frozen=True)
class PublishResult:
    """What a publish changed on disk."""

    written: list[str]
    unchanged: int
    removed: list[str]


def etag_of(body: bytes) -> str:
    """Strong ETag from the bytes themselves, so it changes only with content."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def compress(body: bytes) -> dict[str, bytes]:
    """Deterministic gzip (mtime 0) and brotli bodies; none for tiny files."""
    if len(body) < _MIN_COMPRESS:
        return {}
    return {"br": brotli.compress(body, quality=9),
            "gzip": gzip.compress(body, compresslevel=9, mtime=0)}


def load_manifest(out_dir: Path) -> dict[str, Any]:
    """The current manifest, or an empty one (first run, or unreadable)."""
    try:
        data = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"version": 1, "files": {}, "gone": []}
    data.setdefault("files", {})
    data.setdefault("gone", [])
    return data


def _entry(item: Rendered, encoded: dict[str, bytes]) -> dict[str, Any]:
    return {
        "etag": etag_of(item.body),
        "size": len(item.body),
        "media_type": item.media_type,
        "last_modified": format_datetime(item.last_modified, usegmt=True),
        "channel": item.channel,
        "encodings": {name: {"etag": etag_of(body), "size": len(body)}
                      for name, body in encoded.items()},
    }


def _stage(out_dir: Path, rel: str, body: bytes, staged: list[tuple[str, str]]) -> None:
    target = out_dir / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    staged.append((tmp, str(target)))
    with os.fdopen(fd, "wb") as handle:
        handle.write(body)


def clean_temporaries(out_dir: Path) -> int:
    """Remove temp files a crashed publish left behind; returns how many."""
    count = 0
    for tmp in out_dir.rglob(".*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()
            count += 1
    return count


def publish(out_dir: Path, files: Iterable[Rendered], keep: set[str] | None = None,
            prune: bool = True) -> PublishResult:
    """Make ``files`` the output; ``keep`` lists old paths to leave as they are.

    With ``prune`` every other previously published path is removed and
    recorded as gone; without it (an incremental publish) old paths stay.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    old = load_manifest(out_dir)
    manifest: dict[str, Any] = {"version": 1, "files": {}, "gone": []}
    staged: list[tuple[str, str]] = []
    written: list[str] = []
    unchanged = 0
    try:
        for item in files:
            encoded = compress(item.body)
            entry = _entry(item, encoded)
            manifest["files"][item.path] = entry
            previous = old["files"].get(item.path)
            if previous is not None and previous["etag"] == entry["etag"] \
                    and (out_dir / item.path).is_file():
                manifest["files"][item.path] = {**entry, "last_modified":
                                                previous["last_modified"]} \
                    if previous.get("media_type") == entry["media_type"] else entry
                unchanged += 1
                continue
            _stage(out_dir, item.path, item.body, staged)
            for name, body in encoded.items():
                _stage(out_dir, item.path + ENCODINGS[name], body, staged)
            written.append(item.path)
    except OSError as exc:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise PublishError(f"cannot write to {out_dir}: {exc.strerror or exc}; "
                           "the previous output is unchanged") from None
    keep_paths = {p for p in (keep or set()) if p in old["files"]}
    for path in keep_paths:
        manifest["files"].setdefault(path, old["files"][path])
    if not prune:
        for path, entry in old["files"].items():
            manifest["files"].setdefault(path, entry)
    removed = sorted(set(old["files"]) - set(manifest["files"]))
    manifest["gone"] = sorted((set(old["gone"]) | set(removed)) - set(manifest["files"]))
    for tmp, target in staged:
        os.replace(tmp, target)
    write_json(out_dir / MANIFEST, manifest)
    for path in removed:
        for suffix in ("", *ENCODINGS.values()):
            with contextlib.suppress(OSError):
                (out_dir / (path + suffix)).unlink()
        _remove_empty_parents(out_dir, (out_dir / path).parent)
    return PublishResult(written, unchanged, removed)


def _remove_empty_parents(out_dir: Path, folder: Path) -> None:
    """Remove folders a removal left empty, up to (not including) the output root."""
    while folder != out_dir and out_dir in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def write_json(target: Path, data: Any) -> None:
    """Atomically replace a JSON file (temp file + rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True).encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise PublishError(f"cannot write {target}: {exc.strerror or exc}") from None


def write_status(out_dir: Path, built_at: datetime | None, problems: list[dict[str, str]],
                 articles: int) -> None:
    """Health facts for /healthz and `check`: last good build, current problems."""
    previous: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        previous = json.loads((out_dir / STATUS).read_text(encoding="utf-8"))
    write_json(out_dir / STATUS, {
        "last_success": built_at.isoformat() if built_at else previous.get("last_success"),
        "problems": problems,
        "articles": articles,
    })

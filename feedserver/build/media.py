"""Media files beside articles: found, measured, limited, and handed to the publish step.

Every picture, sound, video and PDF under ``seeds/`` (hidden files and folders,
editor leftovers and symbolic links passed over, as for articles) is published
at ``media/<its path>`` (:mod:`feedserver.core.media`).  What the renderers need
to know about one (its hash stamp, its duration, a picture's size) is measured
once per version of the file and kept in ``<state>/media-facts.json`` by size and
mtime, so a build with 300 MB of podcasts does not hash them again: durations come
from mutagen and picture sizes from Pillow (header reads), not hand-written parsers.

Limits: a file over ``max_media_bytes``, or past ``max_site_media_bytes`` for all
of them together (files taken in path order), is not published and is a problem
naming it; an article showing it gets a warning and keeps its text.  SVG is never
published: it can carry scripts, and no sanitizer is trusted with it here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from feedserver.build.codeversion import media_version
from feedserver.config import Settings
from feedserver.core.media import MediaFile, MediaIndex, media_type, media_url, output_path
from feedserver.core.records import Problem, Rendered

FACTS_FILE = "media-facts.json"
_HIDDEN_OR_JUNK = (".", "#")
_JUNK_ENDS = ("~", ".swp", ".tmp", ".part", ".partial", ".crdownload")


@dataclass
class MediaScan:
    """The media of one build: what may be published, what was refused and why."""

    files: dict[str, MediaFile] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    mtimes: dict[str, int] = field(default_factory=dict)
    root: str = ""

    def index(self, articles: frozenset[str]) -> MediaIndex:
        return MediaIndex(self.files, articles, self.refused)

    def signatures(self) -> dict[str, str]:
        """Each published media file's signature, by output path (as pages are signed)."""
        return {output_path(m.path): f"media\x1f{m.stamp}\x1f{m.size}\x1f{m.media_type}"
                for m in self.files.values()}

    def artwork(self, settings: Settings) -> tuple[str, list[Problem]]:
        """The podcast artwork's versioned URL when it is a file in ``seeds/`` (a changed
        picture is a new URL, like every media file's, so it is cached for a year), ''
        otherwise; a missing or refused one is a problem naming it."""
        podcast = settings.podcast
        if podcast is None or not podcast.image or "://" in podcast.image:
            return "", []
        path = podcast.image.lstrip("/")
        found = self.files.get(path)
        if found is not None:
            return media_url(settings.base_url, found), []
        why = self.refused.get(path) or f"no file {path} in the seeds folder"
        where = os.path.basename(settings.config_path) or "config.toml"
        return "", [Problem(where, f"podcast image {podcast.image!r}: {why}; the "
                                           "feeds name its unversioned address", "warning")]

    def rendered(self, paths: set[str]) -> tuple[list[Rendered], list[Problem]]:
        """The files at these output paths, read for the publish step; a file that went
        away or cannot be read since the scan is a problem, not a crash."""
        out: list[Rendered] = []
        problems: list[Problem] = []
        for found in self.files.values():
            target = output_path(found.path)
            if target not in paths:
                continue
            try:
                body = _read(os.path.join(self.root, found.path))
            except OSError as exc:
                problems.append(Problem(found.path, f"cannot read: {exc.strerror or exc}"))
                continue
            moment = datetime.fromtimestamp(self.mtimes[found.path] // 1_000_000_000, UTC)
            out.append(Rendered(target, body, found.media_type, moment))
        return out, problems


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)


def _walk(root: str, rel: str, found: list[tuple[str, os.stat_result]],
          problems: list[Problem]) -> None:
    try:
        with os.scandir(os.path.join(root, rel) if rel else root) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError:
        return  # the article scan reports unreadable folders
    for entry in entries:
        name = entry.name
        if name.startswith(_HIDDEN_OR_JUNK) or name.endswith(_JUNK_ENDS) or entry.is_symlink():
            continue
        path = f"{rel}{name}"
        if entry.is_dir(follow_symlinks=False):
            _walk(root, f"{path}/", found, problems)
        elif name.lower().endswith(".svg"):
            problems.append(Problem(path, "SVG pictures are not published (they can carry "
                                          "scripts); use PNG or WebP", "warning"))
        elif media_type(name) is not None:
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode):
                    found.append((path, info))


def _measure(full: str, path: str, size: int) -> MediaFile:
    """Hash, duration and picture size of one file (libraries read only headers)."""
    digest = hashlib.sha256()
    with open(full, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    kind = media_type(path) or "application/octet-stream"
    duration, width, height = None, 0, 0
    major = kind.split("/")[0]
    if major in ("audio", "video"):
        with contextlib.suppress(Exception):  # a file mutagen cannot read has no duration
            import mutagen

            info = mutagen.File(full)
            if info is not None and info.info and info.info.length:
                duration = max(1, round(info.info.length))
    elif major == "image":
        with contextlib.suppress(Exception):  # a picture Pillow cannot read has no size
            from PIL import Image

            with Image.open(full) as picture:
                width, height = picture.size
    return MediaFile(path, size, kind, digest.hexdigest()[:12], duration, width, height)


class Facts:
    """Measured facts by path, with the size and mtime they were measured at."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.changed = False
        self.version = media_version()  # facts measured by other code are measured again
        try:
            known = json.loads(path.read_bytes())
        except (OSError, ValueError):
            known = {}
        files = known.get("files") if isinstance(known, dict) \
            and known.get("version") == self.version else None
        self.known: dict[str, list[object]] = files if isinstance(files, dict) else {}

    def get(self, path: str, info: os.stat_result) -> MediaFile | None:
        row = self.known.get(path)
        if not isinstance(row, list) or len(row) != 7 or row[:2] != [info.st_size,
                                                                    info.st_mtime_ns]:
            return None
        _, _, kind, stamp, duration, width, height = row
        return MediaFile(path, info.st_size, str(kind), str(stamp),
                         duration if isinstance(duration, int) else None,
                         int(width) if isinstance(width, int) else 0,
                         int(height) if isinstance(height, int) else 0)

    def put(self, found: MediaFile, info: os.stat_result) -> None:
        self.known[found.path] = [info.st_size, info.st_mtime_ns, found.media_type, found.stamp,
                                  found.duration, found.width, found.height]
        self.changed = True

    def save(self, present: set[str]) -> None:
        """Write the facts of the files still present (atomically), if anything changed;
        a state folder that cannot be written only means files are measured again."""
        gone = set(self.known) - present
        if not self.changed and not gone:
            return
        for path in gone:
            del self.known[path]
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            temp.write_text(json.dumps({"version": self.version, "files": self.known},
                                       sort_keys=True), encoding="utf-8")
            os.replace(temp, self.path)
        except OSError:
            temp.unlink(missing_ok=True)


def discover(settings: Settings, store: bool = True) -> MediaScan:
    """Every media file under the seeds folder, measured, within the limits."""
    root = os.path.realpath(settings.seeds_dir)
    out = MediaScan(root=root)
    found: list[tuple[str, os.stat_result]] = []
    _walk(root, "", found, out.problems)
    facts = Facts(settings.ledger_file.parent / FACTS_FILE)
    total = 0
    for path, info in found:
        if info.st_size > settings.max_media_bytes:
            why = (f"media file is {info.st_size:,} bytes; the limit is "
                   f"{settings.max_media_bytes:,} (max_media_bytes); not published")
        elif total + info.st_size > settings.max_site_media_bytes:
            why = (f"media files pass {settings.max_site_media_bytes:,} bytes with this one "
                   "(max_site_media_bytes); not published")
        else:
            why = ""
        if why:
            out.refused[path] = why
            out.problems.append(Problem(path, why))
            continue
        measured = facts.get(path, info)
        if measured is None:
            try:
                measured = _measure(os.path.join(root, path), path, info.st_size)
            except OSError as exc:
                out.problems.append(Problem(path, f"cannot read: {exc.strerror or exc}"))
                continue
            facts.put(measured, info)
        total += info.st_size
        out.files[path] = measured
        out.mtimes[path] = info.st_mtime_ns
    if store:
        with contextlib.suppress(OSError):
            facts.path.parent.mkdir(parents=True, exist_ok=True)
        facts.save(set(out.files))
    return out

"""Media files published beside articles: what a file is, where it goes, how an item holds it.

Pure and stdlib-only (the web app may import it).  A picture, a sound, a video
or a PDF beside or below an article in ``seeds/`` is published at
``media/<its path in seeds>`` (:func:`output_path`): the address is known from
the file alone, before the ledger has given the article a slug, so parsing stays
a function of the file and the media facts handed in, and a picture two
articles show is published once.  Its URL carries ``?v=`` and the first
characters of the file's hash (:func:`media_url`): a changed picture is a new
URL, which is what lets it be cached for a year and what makes every item
showing it change (and be republished) with it.

An article keeps the media it shows as plain tuples of text (:data:`MediaRow`,
so the parse cache stores them like any other field); :class:`Media` is the
typed view renderers read (:func:`media_of`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote

MEDIA_DIR = "media"
# Suffix -> media type of every file published beside articles.  SVG is not here:
# a picture that can hold a script is not published (no sanitizer is trusted with it).
TYPES: dict[str, str] = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".webp": "image/webp", ".avif": "image/avif",
    ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".ogg": "audio/ogg", ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".mp4": "video/mp4", ".webm": "video/webm",
    ".pdf": "application/pdf",
}
# Types the publisher leaves uncompressed (already compressed: gzip gains nothing).
LONG_CACHE = "public, max-age=31536000, immutable"  # a media URL changes with its bytes
ROLES = ("image", "enclosure", "attachment")
# One media item of an article: role, url, type, length, title (alt text of an image),
# duration in seconds, width, height ('' when unknown).
MediaRow = tuple[str, ...]
_URL_SAFE = "/!$&'()*+,;=:@-._~"


@dataclass(frozen=True, slots=True)
class MediaFile:
    """What the build learned about one media file in ``seeds/`` (``path`` is relative).

    ``stamp`` (the first hex characters of its SHA-256) names one version of
    its bytes; ``duration`` (seconds) is what the audio or video file says;
    ``width``/``height`` are a picture's, 0 when unknown.
    """

    path: str
    size: int
    media_type: str
    stamp: str
    duration: int | None = None
    width: int = 0
    height: int = 0


@dataclass(frozen=True, slots=True)
class Media:
    """One picture, enclosure or attachment as renderers draw it."""

    role: str
    url: str
    media_type: str
    length: int
    title: str = ""
    duration: int | None = None
    width: int = 0
    height: int = 0

    @property
    def kind(self) -> str:
        """'image', 'audio', 'video' or 'file': what a page shows it with."""
        major = self.media_type.split("/")[0]
        return major if major in ("image", "audio", "video") else "file"

    @property
    def name(self) -> str:
        """The file name a link to it shows."""
        return PurePosixPath(self.url.split("?")[0]).name or self.url

    def row(self) -> MediaRow:
        return (self.role, self.url, self.media_type, str(self.length), self.title,
                "" if self.duration is None else str(self.duration), str(self.width or ""),
                str(self.height or ""))


def media_type(path: str) -> str | None:
    """The media type a file of this name is published with, or None if it is not media.

    Its name's suffix as ``PurePosixPath(path).suffix`` gives it (a dot that is neither
    the name's first nor its last character), found without making a path object: a full
    scan asks this of every file in the seeds folder, and the object took 65 of the 170
    ms the media walk of a 50,000-article folder took (benchmarks/README.md)."""
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    return TYPES.get(name[dot:].lower()) if 0 < dot < len(name) - 1 else None


def output_path(path: str) -> str:
    """Where the media file at ``path`` (relative to seeds) is published."""
    return f"{MEDIA_DIR}/{path}"


def media_url(base_url: str, found: MediaFile) -> str:
    """The absolute URL of a published media file, versioned by its bytes."""
    return f"{base_url}{quote(output_path(found.path), safe=_URL_SAFE)}?v={found.stamp}"


def is_media_path(path: str) -> bool:
    """True for an output path under ``media/`` (served with a long cache and ranges)."""
    return path.startswith(MEDIA_DIR + "/")


def of_file(role: str, base_url: str, found: MediaFile, title: str = "") -> Media:
    """A published file as one of an article's media."""
    return Media(role, media_url(base_url, found), found.media_type, found.size, title,
                 found.duration, found.width, found.height)


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def media_of(rows: tuple[MediaRow, ...]) -> list[Media]:
    """The typed view of an article's ``media`` field."""
    return [Media(r[0], r[1], r[2], _int(r[3]), r[4], int(r[5]) if r[5].isdigit() else None,
                  _int(r[6]), _int(r[7])) for r in rows if len(r) == 8]


def image_of(rows: tuple[MediaRow, ...]) -> Media | None:
    """The article's picture, if it has one."""
    return next((m for m in media_of(rows) if m.role == "image"), None)


def readable_size(length: int) -> str:
    """A file size as a link to it shows it (``1.2 MB``)."""
    size = float(length)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{length} bytes"  # pragma: no cover - the loop always returns


def enclosures_of(rows: tuple[MediaRow, ...]) -> list[Media]:
    """Enclosures then attachments: what feeds carry as enclosures, in order."""
    items = media_of(rows)
    return ([m for m in items if m.role == "enclosure"]
            + [m for m in items if m.role == "attachment"])


@dataclass(frozen=True)
class MediaIndex:
    """What a parse may look up besides its own file: the media files that may be
    published (by seeds path), the article files present, and the media files refused
    (path -> why: too large), so a link to one says why it is not shown."""

    files: dict[str, MediaFile]
    articles: frozenset[str] = frozenset()
    refused: dict[str, str] | None = None

    def stamp(self, path: str) -> str:
        """What ``path`` is now, for a parse's ``needs``: the media stamp, 'article',
        or '' (missing or refused)."""
        found = self.files.get(path)
        if found is not None:
            return found.stamp
        return "article" if path in self.articles else ""


NO_MEDIA = MediaIndex({})

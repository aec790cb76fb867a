"""Published feeds through the W3C Feed Validation Service's validator, offline.

Why this script: the validator (https://github.com/w3c/feedvalidator, Python 3) is not on
PyPI, so it cannot be a test dependency.  Tests run this file with the Python that the
environment variable ``FEEDSERVER_W3C_PYTHON`` names, one that can ``import feedvalidator``
(a virtualenv with html5lib and rdflib installed and the checkout's ``src`` on its path,
by a ``.pth`` file), and skip when there is none.  It uses the standard library and the
validator only, never feedserver.

Usage (``BASE_URL`` is where the files are served, e.g. ``http://127.0.0.1:8000/``)::

    python tests/w3c.py BASE_URL FOLDER            # every feed.rss, feed.atom, *.opml under it
    python tests/w3c.py BASE_URL FOLDER PATH...    # these, PATH relative to FOLDER
    python tests/w3c.py BASE_URL FILE...           # these, named relative to the current folder

A file is checked as the public service checks what it fetches from ``BASE_URL`` + the
file's path relative to the folder (a saved answer may be named with its query, as in
``feed.rss?q=steppe``): that URL is its base and its only acceptable ``rel="self"``, its
Content-Type is the one feedserver sends for its kind, only an event's first occurrence is
listed (with a count) and Info-level events are left out.  Compressed copies (.gz, .br) are
skipped.  Prints ``== PATH: OK`` or ``== PATH: N problems`` for each file and one line per
problem, ``FILE:LINE: Error|Warning ClassName: message``; exits 1 if there was any, 2 when
the arguments or the validator are wrong, else 0.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# What feedserver serves each kind of file as (feedserver/render/formats, render/pages.py).
CONTENT_TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
}
COMPRESSED = (".gz", ".br")


def feeds_under(folder: Path) -> list[Path]:
    """The feed and OPML files in ``folder`` and below, sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and (
        p.name in ("feed.rss", "feed.atom") or p.suffix == ".opml"))


def targets(args: list[str]) -> list[tuple[Path, str]]:
    """``(file, path relative to the root)`` for the arguments after BASE_URL."""
    root = Path(args[0]) if Path(args[0]).is_dir() else Path()
    named = args[1:] if Path(args[0]).is_dir() else args
    if not named:
        named = [str(p.relative_to(root)) for p in feeds_under(root)]
        if not named:
            raise SystemExit(f"w3c: no feed.rss, feed.atom or .opml file under {root}")
    found: list[tuple[Path, str]] = []
    for name in named:
        path = root / name
        if path.is_dir():
            found += [(p, p.relative_to(root).as_posix()) for p in feeds_under(path)]
        elif path.is_file():
            found.append((path, Path(os.path.relpath(path, root)).as_posix()))
        else:
            raise SystemExit(f"w3c: no such file: {path}")
    return [(p, rel) for p, rel in found if not rel.endswith(COMPRESSED)]


def content_type(rel: str) -> str | None:
    """The Content-Type served for ``rel`` (query string ignored); None if unknown."""
    return CONTENT_TYPES.get(Path(rel.partition("?")[0]).suffix)


def validate(raw: bytes, url: str, kind: str | None) -> list:
    """The events the public service reports for ``raw`` fetched from ``url`` (what
    ``feedvalidator.validateURL`` does once it has the body), Errors and Warnings only."""
    import feedvalidator
    from feedvalidator import compatibility, logging, mediaTypes, xmlEncoding

    events: list = []
    if len(raw) > feedvalidator.MAXDATALENGTH:
        limit = f"feed length > {feedvalidator.MAXDATALENGTH} bytes"
        return [logging.ValidatorLimit({"limit": limit})]
    media, charset = mediaTypes.checkValid(kind, events) if kind else (None, None)
    mediaTypes.contentSniffing(media, raw, events)
    encoding, text = xmlEncoding.decode(media, charset, raw, events, fallback="utf-8")
    if text is not None:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        checked = feedvalidator._validate(text, 1, events, url, encoding, [url],
                                          mediaType=media)
        events = checked.loggedEvents
        if media and checked.feedType:
            mediaTypes.checkAgainstFeedType(media, checked.feedType, events)
    return compatibility.AA(events)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or "://" not in argv[0]:
        print("usage: w3c.py BASE_URL FOLDER [PATH...] | BASE_URL FILE...", file=sys.stderr)
        return 2
    os.environ["LANGUAGE"] = "en"  # the validator's messages: English (read at import)
    try:
        from feedvalidator.formatter.base import BaseFormatter
        from feedvalidator.logging import Error
    except ImportError as error:
        print(f"w3c: {sys.executable} cannot import the validator: {error}", file=sys.stderr)
        return 2
    base = argv[0] if argv[0].endswith("/") else argv[0] + "/"
    words = BaseFormatter([])
    problems = 0
    try:
        files = targets(argv[1:])
    except SystemExit as error:
        print(error, file=sys.stderr)
        return 2
    for path, rel in files:
        events = validate(path.read_bytes(), base + rel, content_type(rel))
        print(f"== {rel}: " + (f"{len(events)} problems" if events else "OK"))
        for event in events:
            kind = "Error" if isinstance(event, Error) else "Warning"
            print(f"{path}:{event.params.get('line', 0)}: {kind} {type(event).__name__}: "
                  f"{words.getMessage(event)}{words.getCount(event)}")
        problems += len(events)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

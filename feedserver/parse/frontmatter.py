"""Front matter: YAML between ``---`` fences or TOML between ``+++`` fences.

Each known field has a small parser in :data:`FIELDS` (the Pelican way) that
checks its type and returns a clean value, so a wrong type becomes an error
naming the field instead of a crash three stages later.  YAML is read with
``safe_load`` only: a ``!!python/object`` tag is an error, never code that runs.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any

import yaml

from feedserver.core.errors import ArticleError
from feedserver.parse.text import clean_line, plain_line

MAX_TOPICS = 50
MAX_FRONT_MATTER = 256 * 1024
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
_FENCES = {"---": "yaml", "+++": "toml"}


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """safe_load where every plain scalar but null is the text as written.

    PyYAML follows YAML 1.1, which reads ``title: no`` as false, ``title: 1.10``
    as the float 1.1, ``tags: [on, 017, 12:30]`` as true, 15 and 750.  No field
    here is a number, and each field's parser (:data:`FIELDS`) types its own
    value: dates are parsed and checked by :func:`_date`, ``draft`` words by
    :func:`_bool`.  So only ``null``/``~``/empty (a field left out) and the
    ``<<`` merge key keep their implicit meaning; the rest stays the source
    text, which is what YAML 1.2's core schema gives for these words and what
    a number-looking title must keep anyway (``1.0`` is a float in YAML 1.2 too).

    libyaml's parser when PyYAML has it: much faster on front matter, same
    safe constructor.
    """


_IMPLICIT = {"tag:yaml.org,2002:null", "tag:yaml.org,2002:merge"}
_Loader.yaml_implicit_resolvers = {
    key: kept for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    if (kept := [(tag, rx) for tag, rx in resolvers if tag in _IMPLICIT])
}


def split(text: str) -> tuple[dict[str, Any], str]:
    """Return (front matter, body); a file without a fence has no front matter."""
    first, _, rest = text.partition("\n")
    kind = _FENCES.get(first.strip())
    if kind is None:
        return {}, text
    fence = first.strip()
    match = re.search(rf"^{re.escape(fence)}[ \t]*$", rest, re.MULTILINE)
    if match is None:
        raise ArticleError(f"front matter opened with '{fence}' is never closed")
    raw, body = rest[: match.start()], rest[match.end():].lstrip("\n")
    if len(raw) > MAX_FRONT_MATTER:
        raise ArticleError(f"front matter is {len(raw):,} characters; at most "
                           f"{MAX_FRONT_MATTER:,} are read")
    return _load(raw, kind), body


def _load(raw: str, kind: str) -> dict[str, Any]:
    try:
        # _Loader is a SafeLoader: a Python tag is an error, never code that runs.
        data = yaml.load(raw, Loader=_Loader) if kind == "yaml" else tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:  # a ValueError too: it must come first
        raise ArticleError(f"invalid TOML front matter: {exc}") from None
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        raise ArticleError(f"invalid YAML front matter: {_first_line(exc)}") from None
    except RecursionError:
        raise ArticleError("front matter nests too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ArticleError(f"front matter must be a mapping, got {type(data).__name__}")
    return data


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


def _text(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ArticleError(f"front matter '{name}' must be text, got {type(value).__name__}")
    return clean_line(str(value))


def _plain(name: str, value: Any) -> str:
    """A field every feed format shows as plain text: markup and invisibles removed.

    The title is not one of them here: it may also come from the body, so
    :func:`feedserver.parse.article.parse` makes whichever title it keeps plain, once.
    """
    return plain_line(_text(name, value))


def _date(name: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, date):
        result = datetime.combine(value, time(0, 0))
    elif isinstance(value, str):
        try:
            result = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ArticleError(f"front matter '{name}' is not a valid date: {value[:60]!r}") \
                from None
    else:
        raise ArticleError(f"front matter '{name}' must be a date, got {type(value).__name__}")
    if result.tzinfo is None:
        result = result.replace(tzinfo=UTC)  # naive dates are read as UTC, documented
    try:
        result = result.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ArticleError(f"front matter '{name}' is out of range: {value!s:.60}") from None
    if not EARLIEST <= result < LATEST:
        raise ArticleError(f"front matter '{name}' is out of range (1900-9000): {value!s:.60}")
    return result


def _topics(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [part for part in re.split(r"[,;]", value)]
    elif isinstance(value, list):
        items = value
    else:
        raise ArticleError(f"front matter '{name}' must be a list of names, "
                           f"got {type(value).__name__}")
    names: dict[str, None] = {}  # in order, each once (a list's `in` made 10,000 tags 1.5 s)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ArticleError(f"front matter '{name}' holds a {type(item).__name__}, "
                               "expected names")
        cleaned = plain_line(str(item))
        if cleaned:
            names[cleaned] = None
    return tuple(names)


_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


def _bool(name: str, value: Any) -> bool:
    """``draft``: a TOML boolean, or one of the YAML 1.1 words YAML authors write."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ArticleError(f"front matter '{name}' must be true or false, got {value!r:.40}")


def _author(name: str, value: Any) -> str:
    if isinstance(value, dict) and "name" in value:
        return _plain(name, value["name"])
    if isinstance(value, list) and value:
        return ", ".join(_author(name, v) for v in value)
    return _plain(name, value)


MAX_MEDIA = 20
MediaRef = tuple[str, str, str, str, str]  # url, type, length, title, duration ('' unknown)


def _ref(name: str, value: Any) -> MediaRef:
    """One media reference: a path or URL, or a table with ``url`` (or ``path``) and
    optional ``type``, ``length``, ``title``, ``duration`` (seconds)."""
    if isinstance(value, str):
        return (value.strip(), "", "", "", "")
    if isinstance(value, dict):
        url = value.get("url", value.get("path"))
        if isinstance(url, str) and url.strip():
            extra = [value.get(key, "") for key in ("type", "length", "title", "duration")]
            if all(isinstance(v, str | int) and not isinstance(v, bool) for v in extra):
                kind, length, title, duration = (str(v).strip() for v in extra)
                return (url.strip(), kind, length, plain_line(title), duration)
    raise ArticleError(f"front matter '{name}' must be a path, a URL or a table with 'url'")


def _refs(name: str, value: Any) -> tuple[MediaRef, ...]:
    """``enclosures``/``audio``/``attachments``: one reference or a list of them."""
    items = value if isinstance(value, list) else [value]
    return tuple(_ref(name, item) for item in items[:MAX_MEDIA])


def _path(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ArticleError(f"front matter '{name}' must be a path or a URL")
    return value.strip()


FIELDS: dict[str, tuple[str, Callable[[str, Any], Any]]] = {
    "title": ("title", _text),
    "date": ("date", _date),
    "published": ("date", _date),
    "updated": ("updated", _date),
    "modified": ("updated", _date),
    "author": ("author", _author),
    "authors": ("author", _author),
    "summary": ("summary", _plain),
    "description": ("summary", _plain),
    "topics": ("topics", _topics),
    "tags": ("topics", _topics),
    "categories": ("topics", _topics),
    "id": ("id", _text),
    "slug": ("slug", _text),
    "draft": ("draft", _bool),
    "lang": ("lang", _text),
    "language": ("lang", _text),
    "image": ("image", _path),
    "image_alt": ("image_alt", _plain),
    "enclosures": ("enclosures", _refs),
    "enclosure": ("enclosures", _refs),
    "audio": ("enclosures", _refs),
    "attachments": ("attachments", _refs),
}


def fields(meta: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """Known fields, parsed and renamed to their canonical keys; others ignored.

    A field with a wrong type or value is dropped with a warning naming it, and
    the article is still published (its title falls back to the heading, its
    date to the ledger's): one bad field must not lose a good article.
    ``topics`` and ``tags`` are synonyms and are merged.  Past
    :data:`MAX_TOPICS` names the rest are dropped with a warning too.
    """
    out: dict[str, Any] = {}
    for key, value in meta.items():
        spec = FIELDS.get(str(key).lower())
        if spec is None or value is None:
            continue
        canonical, parse = spec
        try:
            parsed = parse(str(key), value)
        except ArticleError as exc:
            warnings.append(f"{exc}; the field is ignored")
            continue
        if canonical in ("topics", "enclosures") and canonical in out:
            parsed = tuple(dict.fromkeys(out[canonical] + parsed))
        out[canonical] = parsed
    if len(out.get("topics", ())) > MAX_TOPICS:
        warnings.append(f"front matter lists {len(out['topics'])} topics; "
                        f"only the first {MAX_TOPICS} are used")
        out["topics"] = out["topics"][:MAX_TOPICS]
    return out

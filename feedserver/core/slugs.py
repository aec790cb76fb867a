"""The slugs that name articles' and topics' folders: URL-safe, and never a name the
site or Windows keeps for itself.

Shared by the settings (a configured topic's key must make a slug: checked when
they load), the topic rules and the ledger that mints article slugs, so it sits
in the core, beside the layout whose folder names a topic must not take.
"""

from __future__ import annotations

import re
from functools import lru_cache

from slugify import slugify as _slugify

from feedserver.core import layout

_INVISIBLE = re.compile("[\u200b-\u200d\u2060\ufeff\u00ad]")  # zero-width, soft hyphen
# Names Windows keeps for devices, with or without an extension ('con', 'CON.txt'): a
# folder called so cannot be created or copied there, nor synced by many bucket tools.
DEVICE_NAMES = frozenset({"con", "prn", "aux", "nul", *(f"com{n}" for n in range(1, 10)),
                          *(f"lpt{n}" for n in range(1, 10))})
MAX_SLUG = 80


def is_device_name(segment: str) -> bool:
    """Whether Windows reads this path segment as a device (any case, any extension)."""
    return segment.split(".", 1)[0].rstrip(" ").lower() in DEVICE_NAMES


def plain_slug(name: str) -> str:
    """The transliterated slug alone, before any suffix (what older versions minted)."""
    return _slugify(_INVISIBLE.sub("", name), max_length=MAX_SLUG, word_boundary=True)


def slugify(name: str) -> str:
    """Lowercase ASCII slug, transliterated ('Казахстан' -> 'kazakhstan'), URL-safe.

    An article's slug names its folder (``articles/<slug>/``), so a Windows
    device name gets the suffix ``-article`` ('con' -> 'con-article'); topics
    have their own suffix (:func:`topic_slug`).  Returns '' when nothing
    printable is left (a name of only zero-width or punctuation characters);
    callers drop such names.
    """
    slug = plain_slug(name)
    return f"{slug}-article" if is_device_name(slug) else slug


@lru_cache(maxsize=4096)
def topic_slug(name: str) -> str:
    """Slug for a topic channel; names that would clash with site paths, or that Windows
    keeps for devices ('con', 'LPT1'), get the suffix ``-topic``.

    Only those names change: every other topic keeps its slug, and its URLs.
    Cached: an archive repeats a few hundred topic names thousands of times,
    and transliterating one costs more than matching every rule on a text.
    """
    slug = plain_slug(name)
    return f"{slug}-topic" if slug in layout.RESERVED or is_device_name(slug) \
        or slug.startswith(layout.LANGUAGE_SLUG) else slug

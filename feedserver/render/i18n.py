"""Dates and the few fixed words of the pages in the page's language (Babel).

A page speaks its content's language: an article page its article's, a
channel's page, iframe view and feed preview the channel's (its articles' one
language, else the site's), the site-wide pages the site's ``language``.
Dates are Babel's (CLDR) month names in the format "d MMMM y" (English "2
December 2026", Russian "2 декабря 2026", with the genitive a date takes).  The
fixed words come from ``locale/<lang>.po``, read with Babel's PO reader; a
language without a catalog gets English words, and dates in its own language
where CLDR knows it.
"""

from __future__ import annotations

import gettext
import io
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

DATE_FORMAT = "d MMMM y"
SHORT_DATE = "d MMM y"


def _primary(lang: str) -> str:
    return (lang or "en").replace("_", "-").split("-", 1)[0].lower()


@lru_cache(maxsize=64)
def _locale(lang: str) -> Any:
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(lang.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        try:
            return Locale.parse(_primary(lang))
        except (UnknownLocaleError, ValueError):
            return Locale.parse("en")


@lru_cache(maxsize=64)
def _translations(lang: str) -> gettext.NullTranslations:
    """The catalog of ``lang`` (``locale/<primary>.po``, compiled in memory by Babel), or
    none (English words)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import Translations

    found = resources.files("feedserver.render").joinpath(f"locale/{_primary(lang)}.po")
    if not found.is_file():
        return gettext.NullTranslations()
    with found.open("rb") as handle:
        catalog = read_po(handle, locale=_primary(lang))
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def date(moment: datetime, lang: str, short: bool = False) -> str:
    """A date as readers of ``lang`` write it (the moment's own day, not converted)."""
    from babel.dates import format_date

    return format_date(moment.date(), SHORT_DATE if short else DATE_FORMAT,
                       locale=_locale(lang))


def word(text: str, lang: str) -> str:
    """One of the pages' fixed words in ``lang`` (English when there is no translation)."""
    return _translations(lang).gettext(text)


def items(count: int, lang: str) -> str:
    """'1 item', '5 items' in ``lang``, by its plural rule ('5 записей')."""
    return _translations(lang).ngettext("%(num)d item", "%(num)d items", count) % {"num": count}

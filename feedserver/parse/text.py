"""Bytes to clean Unicode text: decoding, XML-safe characters, NFC, summaries.

Scraped files arrive in whatever encoding the scraper saved.  UTF-8 (with or
without BOM) and BOM-marked UTF-16/32 are taken as they say; anything else is
handed to charset-normalizer rather than guessed by hand.  The result never
holds a character XML 1.0 forbids, so no later stage can produce a broken feed
because of a stray control byte.
"""

from __future__ import annotations

import codecs
import html
import re
import unicodedata

import nh3
from charset_normalizer import from_bytes

from feedserver.core.errors import ArticleError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# XML 1.0 Char production, minus bidi embedding/override controls that can make
# a title display as something other than what it says (Trojan Source).
_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff"
    "\u202a-\u202e\u2066-\u2069\U0001fffe\U0001ffff]"
)
_NEWLINES = re.compile("\r\n|\r|\u2028|\u2029|\x85|\x0b|\x0c")
_SPACES = re.compile(r"[^\S\n]+")


def decode(data: bytes) -> str:
    """Decode an article file, or raise ArticleError saying why it is not text."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(encoding)
            except UnicodeDecodeError as exc:
                raise ArticleError(f"invalid {encoding} after its byte order mark: {exc}") from None
    try:
        return _not_binary(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    try:  # UTF-8 carrying encoded lone surrogates (CESU-8, WTF-8): clean() drops them
        return _not_binary(data.decode("utf-8", errors="surrogatepass"))
    except UnicodeDecodeError:
        pass
    mostly = _mostly_utf8(data)
    if mostly is not None:
        return _not_binary(mostly)
    if b"\x00" in data[:4096]:
        raise ArticleError("binary file (NUL bytes, no UTF-16 byte order mark)")
    encoding = _detect(data[:200_000])
    if encoding is None:
        raise ArticleError("not text: no character encoding fits its bytes")
    return _not_binary(data.decode(encoding, errors="replace"))


_NON_ASCII = re.compile("[^\x00-\x7f\ufffd]")


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 text with a few broken bytes: keep it as UTF-8, broken bytes as U+FFFD.

    A detector would otherwise call the whole file cp1252 and garble every
    correct multi-byte character because of one bad byte.
    """
    lenient = data.decode("utf-8", errors="replace")
    broken = lenient.count("\ufffd")
    good = len(_NON_ASCII.findall(lenient))
    return lenient if good >= broken and broken <= max(3, len(lenient) // 100) else None


# When charset-normalizer finds several encodings equally good (short Western
# text fits cp1250 and cp1252 alike), prefer the ones scrapers actually write.
_PREFERRED = ("cp1252", "cp1251", "latin_1", "iso8859_15", "koi8_r", "cp1250")


def _detect(sample: bytes) -> str | None:
    """charset-normalizer's best guess, ties broken towards common encodings."""
    results = from_bytes(sample)
    best = results.best()
    if best is None:
        return None
    tied = {m.encoding for m in results
            if (m.chaos, m.coherence) == (best.chaos, best.coherence)}
    return next((enc for enc in _PREFERRED if enc in tied), best.encoding)


_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f\ufffd]")
# ANSI/ECMA-48 escape sequences a terminal scrape leaves (colours, cursor moves, titles):
# CSI (ESC [ parameters intermediates final), OSC (ESC ] ... BEL or ESC \ on one line:
# an unterminated one loses only its ESC, never the text after it), character
# set designations (ESC ( B) and the other two-byte escapes.  Each part is a character
# class disjoint from what follows it, so matching is linear.
_ANSI = re.compile("\x1b(?:\\[[0-?]*[ -/]*[@-~]|\\][^\x07\x1b\n]*(?:\x07|\x1b\\\\)"
                   "|[ -/]+[0-~]|[0-Z\\\\^_`a-~])")


def _not_binary(text: str) -> str:
    """Reject decoded text that is mostly control characters (an image, an archive).

    ANSI escape sequences are text a terminal scrape leaves, not binary: they are
    left out of the count (and removed by :func:`clean`).
    """
    sample = text[:20_000]
    if "\x1b" in sample:
        sample = _ANSI.sub("", sample)
    if len(_CONTROLS.findall(sample)) > max(8, 0.05 * len(sample)):
        raise ArticleError("binary file (mostly control characters)")
    return text


def _c1_table() -> dict[int, str | None]:
    """C1 controls (U+0080-U+009F) to the Windows-1252 characters they stand for.

    They come from cp1252 bytes decoded as Latin-1 (U+0080 was a euro sign).
    Readers map them the same way (feedparser does), so left as they are a
    title would not survive the validation round trip and its whole channel
    would stay unpublished.  The five bytes cp1252 leaves undefined are dropped.
    """
    table: dict[int, str | None] = {}
    for code in range(0x80, 0xA0):
        try:
            table[code] = bytes([code]).decode("cp1252")
        except UnicodeDecodeError:
            table[code] = None
    return table


_C1 = re.compile("[\x80-\x9f]")
_C1_TABLE = _c1_table()


# Every character clean() acts on besides composing: _NEWLINES, _FORBIDDEN and _C1 in one.
_DIRTY = re.compile(
    "[\r\u2028\u2029\x85\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f\ufffe\uffff"
    "\ud800-\udfff\u202a-\u202e\u2066-\u2069\U0001fffe\U0001ffff]"
)


def clean(text: str) -> str:
    """Normalise newlines, drop ANSI escapes and XML-forbidden characters, map C1 controls,
    compose to NFC."""
    if _DIRTY.search(text) is None:  # most texts: one scan instead of three
        return unicodedata.normalize("NFC", text)
    text = _NEWLINES.sub("\n", text)
    if "\x1b" in text:
        text = _ANSI.sub("", text)  # whole sequences: a lone ESC would leave "[31m" behind
    text = _FORBIDDEN.sub("", text)
    if _C1.search(text):
        text = text.translate(_C1_TABLE)
    return unicodedata.normalize("NFC", text)


def _quick_table() -> bytes:
    """Bytes that may start anything decode() or clean() would act on, mapped to NUL.

    In valid UTF-8 every such character begins with one of these bytes: ASCII
    controls but tab and newline, 0xC2 (U+0080-U+00BF: C1 controls), 0xE2
    (U+2000-U+2FFF: line separators, bidi controls), 0xEF (U+F000-U+FFFF:
    U+FFFD, U+FFFE, U+FFFF, the UTF-8 BOM), 0xF0 (U+1FFFE, U+1FFFF).  The
    UTF-16/32 byte order marks hold NUL, 0xFE or 0xFF, which UTF-8 never does.
    """
    flagged = {*range(0x09), *range(0x0B, 0x20), 0x7F, 0xC2, 0xE2, 0xEF, 0xF0}
    return bytes(0 if b in flagged else 1 for b in range(256))


_QUICK = _quick_table()


def decode_clean(data: bytes) -> str:
    """``clean(decode(data))``, with one byte scan for the usual file.

    A file without a single flagged byte (see :func:`_quick_table`) that is
    valid UTF-8 has no byte order mark, no control character for decode() to
    count and nothing for clean() to change but composing: it is decoded and
    composed at once.  Any other file takes the long way.
    """
    if b"\x00" not in data.translate(_QUICK):
        try:
            return unicodedata.normalize("NFC", data.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    return clean(decode(data))


def clean_line(text: str) -> str:
    """One-line field (title, author, tag): cleaned, whitespace folded, stripped."""
    return _SPACES.sub(" ", clean(text).replace("\n", " ")).strip()


# Something a browser would read as a tag: '<' then a letter, '/', '!' or '?', and a '>'
# before the next '<' (so "a < b", "1<2" and "<3" are text, as they are to a browser).
_TAG_LIKE = re.compile(r"<[A-Za-z/!?][^<>]*>")
_LONE_LT = re.compile(r"<(?![A-Za-z/!?][^<>]*>)")
# Elements whose content is code or fallback markup, never text a reader is shown:
# removed with their tags (every other element is unwrapped: its text stays).
_CODE_ELEMENTS = frozenset({"script", "style", "template", "noscript", "iframe", "noembed",
                            "noframes"})
# Invisible characters that only serve to make two equal-looking titles differ (or to
# hide text): zero-width space, word joiner and invisible operators, BOM, Mongolian vowel
# separator, soft hyphen, Hangul fillers, and the bidi marks, embeddings, overrides and
# isolates (the last two are already gone: see _FORBIDDEN).
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u180e\u200b\u200e\u200f"
                        "\u2060-\u2064\u202a-\u202e\u2066-\u2069\u3164\ufeff\uffa0]")
# Zero-width (non-)joiners change how Arabic, Persian, Indic scripts and emoji sequences
# look, so they stay between two non-ASCII characters; anywhere else they are invisible.
_JOINER = re.compile("(?<![^\x00-\x7f])[\u200c\u200d]|[\u200c\u200d](?![^\x00-\x7f])")


def strip_markup(text: str) -> str:
    """Visible text of a plain-text field someone wrote HTML into; entities decoded once.

    A title, an author, a topic name or a summary is plain text in every feed
    format; what looks like a tag in one is markup that leaked from a CMS or a
    scraper, so it is removed as WordPress does (``wp_strip_all_tags``): script
    and style elements with their content, every other tag unwrapped.  The
    HTML parser is nh3's (html5ever), the one browsers' rules describe, not a
    regex.  A '<' that starts no tag ("a<b" at the end) is text and stays; text
    with no tag-like '<' at all only has its entities decoded.
    """
    if "<" in text and _TAG_LIKE.search(text):
        text = nh3.clean(_LONE_LT.sub("&lt;", text), tags=set(),
                         clean_content_tags=set(_CODE_ELEMENTS), strip_comments=True)
    elif "&" not in text:
        return text
    return html.unescape(text)


def plain_line(text: str) -> str:
    """A one-line plain-text field as readers should see it: no markup, no invisibles.

    :func:`strip_markup`, then :func:`clean_line`, then the invisible
    characters of :data:`_INVISIBLE` (and joiners outside the scripts that need
    them) are removed, so that a title cannot hide text or pass for another.
    """
    line = clean_line(strip_markup(text))
    if _INVISIBLE.search(line) or "\u200c" in line or "\u200d" in line:
        line = _SPACES.sub(" ", _JOINER.sub("", _INVISIBLE.sub("", line))).strip()
    return line


def summarize(text: str, limit: int) -> str:
    """Plain-text summary: whitespace folded, cut on a word boundary with an ellipsis."""
    return cut(" ".join(text.split()), limit)


def cut(flat: str, limit: int) -> str:
    """:func:`summarize` for text whose whitespace is already folded (the caller has it)."""
    if len(flat) <= limit:
        return flat
    cut = flat[: limit + 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space > limit // 2 else cut[:limit]
    return cut.rstrip(" ,;:-–—") + "…"

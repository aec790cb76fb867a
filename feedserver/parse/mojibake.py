"""Repair text that was UTF-8 decoded as Latin-1/cp1252 ("CafÃ© prices rise"), with ftfy.

Scrapers often save such text.  Left as it is, a reader shows "CafÃ©" on the
pages and in JSON Feed while feedparser-based readers re-decode it to "Café":
the same article reads differently by format.  ftfy (maintained, used by
many corpus pipelines) knows which sequences are mojibake and which are real
text ("naïve façade", "Москва" stay), and its ``fix_encoding`` changes
nothing else (no quote uncurling, no width folding).

It is slow (figures: benchmarks/README.md), so it runs only on text holding what every
mojibake of UTF-8 holds: a lead byte of a multi-byte sequence (U+00C2 to
U+00F4 read as Latin-1) followed by a continuation byte (0x80-0xBF read as
cp1252 or Latin-1).  Correct Western text almost never has such a pair, and
a pre-check is one regex scan.
"""

from __future__ import annotations

import re


def _continuations() -> str:
    """Every character a byte 0x80-0xBF becomes when read as cp1252 or Latin-1."""
    found = {chr(code) for code in range(0x80, 0xC0)}  # Latin-1 (and C1 controls)
    for code in range(0x80, 0xC0):
        try:
            found.add(bytes([code]).decode("cp1252"))
        except UnicodeDecodeError:
            continue
    return "".join(sorted(found))


_SUSPECT = re.compile(f"[\u00c2-\u00f4][{re.escape(_continuations())}]")


def repair(text: str) -> tuple[str, str | None]:
    """The text with mojibake repaired, and a warning saying so (None if nothing changed)."""
    found = _SUSPECT.search(text)
    if found is None:
        return text, None
    import ftfy  # slow to import: only when a file may need it (every CLI run would pay)

    fixed = ftfy.fix_encoding(text)
    if fixed == text:
        return text, None
    start = max(0, found.start() - 12)
    sample = text[start:found.end() + 12].split("\n")[0]
    return fixed, (f"mojibake repaired (UTF-8 read as Latin-1, e.g. {sample!r} now reads "
                   f"{ftfy.fix_encoding(sample)!r})")

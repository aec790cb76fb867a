"""An article's language from its text, when its front matter names none.

py3langid (a maintained fork of langid.py: naive Bayes over byte n-grams, 97
languages, no network, deterministic) reads the first :data:`SAMPLE` characters
of the title and text: a DFA walk in Python costs about 0.75 ms per 1,000
characters, and a news article's language is settled long before its end.  Its
model takes about a second to load (a fifth through the build's ready copy), so the
build loads it once in the parent (:func:`warm`) before forking the parse workers,
which inherit it.

A detection is kept only when the model is sure (:data:`CONFIDENCE`) and the
text long enough to judge (:data:`MIN_LETTERS`); otherwise the caller falls back
to the site's default ``language``.  Kazakh and Russian share most of their
alphabet: a text with the letters only Kazakh uses (``ә ғ қ ң ө ұ ү һ і``) in
more than a few words is Kazakh even where the model hesitates.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

SAMPLE = 600  # characters of title + text the model reads
CONFIDENCE = 0.8  # normalized probability a detection needs
MIN_LETTERS = 20  # fewer letters than this: too little to tell
_LETTER = re.compile(r"[^\W\d_]")
_KAZAKH = re.compile(r"[әғқңөұүһіӘҒҚҢӨҰҮҺІ]")
_CYRILLIC = re.compile(r"[а-яёА-ЯЁ]")
_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


def tag(value: object) -> str | None:
    """A front matter ``lang`` as a BCP 47 tag ('pt_BR' -> 'pt-BR'), or None if it is none
    (feeds put it in ``xml:lang`` and ``<language>``, which take only tags)."""
    if not isinstance(value, str) or not _TAG.fullmatch(value.strip()):
        return None
    return value.strip().replace("_", "-")


_MODEL: list[Any] = []  # the identifier once loaded: at most one


# How the model is loaded (LanguageIdentifier.from_model_file's arguments): here once, and
# in the name of the build's ready copy (feedserver.build.language_model).
LOADED_AS = {"norm_probs": True}


def _identifier() -> Any:
    """The model, normalized to probabilities (loaded once per process)."""
    if not _MODEL:
        _MODEL.append(load_shipped())
    return _MODEL[0]


def load_shipped() -> Any:
    """The model from the file py3langid ships (about a second)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, **LOADED_AS)


def warm(load: Callable[[], Any] | None = None) -> None:
    """Load the model now (before forking workers, so they share it).

    ``load``: how (the build's shell loads it through a ready copy in the user's
    cache folder, :mod:`feedserver.build.language_model`; a cache never reaches the
    core); by default from the file py3langid ships.
    """
    if not _MODEL:
        _MODEL.append((load or load_shipped)())


def release() -> None:
    """Forget the model (loaded again when next needed)."""
    _MODEL.clear()


def is_loaded() -> bool:
    """Whether this process holds the model (about 70 MB)."""
    return bool(_MODEL)


def detect(title: str, text: str) -> str | None:
    """The language code (ISO 639-1, as BCP 47 uses it) of the text, or None if unsure."""
    sample = f"{title}\n{text}"[:SAMPLE]
    if len(_LETTER.findall(sample)) < MIN_LETTERS:
        return None
    kazakh = len(_KAZAKH.findall(sample))
    if kazakh >= 5 and kazakh * 40 >= len(_CYRILLIC.findall(sample)):
        return "kk"
    code, confidence = _identifier().classify(sample)
    return code if confidence >= CONFIDENCE else None

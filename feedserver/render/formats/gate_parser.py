"""feedparser as the gate runs it: the library as shipped, with faster helpers of the same meaning.

Every RSS and Atom document is read back by feedparser before it is published (the
gate, :func:`feedserver.render.formats.rss_atom.read_back`), and every filtered answer
before it is cached, so feedparser's own Python is a large share of a cold build and of
a first filtered answer (benchmarks/README.md, "feedparser's helpers").  Three of its
private helpers cost far more than what they do; :func:`feedparser` points feedparser at
replacements that give the very same values (tests/unit/test_c1_table.py and
tests/unit/test_gate_parser.py check each against the function it replaced, and whole
documents parsed both ways):

* its cp1252 table (:func:`c1_table`);
* ``_urljoin`` (:func:`urljoin`), called for every link, id and ``xml:base``;
* ``copy.deepcopy`` of an element's content parameters (:func:`copy_params`), called
  for every title, summary and content.

It also reads with Python's expat whatever the machine has installed.  Only the module
objects feedparser looks these names up in are changed: its parsing code is untouched,
and a feedparser without one of these names (or, for ``_urljoin``, with another pattern)
would simply not get that replacement.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import re
import types
import urllib.parse
from collections.abc import Iterator
from typing import Any

# feedparser's own table (feedparser.html._cp1252, private): C1 controls -> cp1252 characters.
_CP1252 = {code: bytes([code]).decode("cp1252") for code in range(0x80, 0xA0)
           if code not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}
_PLANE = 0x10000  # the Basic Multilingual Plane: what c1_table spells out
# Values a deep copy hands back as they are (immutable, holding nothing).
_ATOMS = frozenset({str, int, bool, float, type(None)})
_REPLACED: dict[str, Any] = {}
_DICT: Any = None  # feedparser's FeedParserDict, once :func:`feedparser` has imported it
# feedparser's ``urls._urifixer``: :func:`urljoin` stands in for ``_urljoin`` only where the
# installed feedparser's pattern is this very one.
_URIFIXER = re.compile("^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")


@functools.cache
def c1_table() -> list[int | str]:
    """:data:`_CP1252` as a list over the Basic Multilingual Plane: each code point maps to
    itself but the C1 controls, which map to their cp1252 characters.

    feedparser maps every text it reads through its table (``mixin.pop``:
    ``output.translate(_cp1252)``), and ``str.translate`` with a dict raises and clears a
    ``KeyError`` for each character the dict lacks, which is every character of a text
    that is not pure ASCII (ASCII has a fast path): about a quarter of the gate's
    feedparser time went there (benchmarks/README.md, "feedparser's cp1252 table").  A
    list answers each lookup without an exception; a character past its end raises
    ``IndexError``, a ``LookupError`` like ``KeyError``, and is left as it is, as the dict
    leaves it.
    """
    table: list[int | str] = list(range(_PLANE))
    for code, char in _CP1252.items():
        table[code] = char
    return table


def urljoin(base: str, uri: str) -> str:
    """feedparser's ``urls._urljoin``: the slashes after ``scheme://`` folded, then
    ``urllib.parse.urljoin``, '' where that raises ``ValueError``.

    feedparser folds the slashes with ``re.sub`` and a template (``r'\\1\\3'``), and
    Python expands a template for every match it makes: for a URL that has nothing to
    fold, that was most of the call.  Its pattern can only match at the start (``^``,
    lazy last group: it matches empty), so one ``match`` says the same.
    """
    found = _URIFIXER.match(uri)
    if found is not None and found.end(2) != found.end(1):
        uri = found.group(1) + uri[found.end(2):]
    try:
        return urllib.parse.urljoin(base, uri)
    except ValueError:
        return ""


def copy_params(params: Any, memo: dict[int, Any] | None = None) -> Any:
    """``copy.deepcopy`` of feedparser's content parameters (``mixin.pop``).

    They are a ``FeedParserDict`` of strings (type, language, base, value): a deep copy
    is a new one with the same items, each set through its ``__setitem__`` (and its key
    map) as ``copy`` sets them.  ``deepcopy`` first asks the object for ``__deepcopy__``,
    and a ``FeedParserDict`` answers a missing attribute by raising and catching a
    ``KeyError`` then an ``AttributeError``: most of the copy's cost.  Anything else
    (another class, an attribute of its own, a value that is not plain) goes to
    ``copy.deepcopy``.
    """
    if type(params) is _DICT and not params.__dict__ \
            and all(type(value) in _ATOMS for value in dict.values(params)):
        fresh = _DICT()
        for key, value in dict.items(params):
            fresh[key] = value
        return fresh
    return copy.deepcopy(params, memo)


@functools.cache
def feedparser() -> Any:
    """feedparser, set to read with Python's expat whatever the machine has installed, and
    to use this module's helpers.

    feedparser prefers libxml2's SAX driver (``drv_libxml2``) where libxml2's Python
    bindings are installed: the gate's reading would then hang on a system package
    (libxml2's maintainers asked feedparser to drop that driver for this very reason,
    kurtmckee/feedparser#506).  Where the bindings are absent, every parse first tried to
    import the driver and failed: a search of ``sys.path`` costing about 0.1 ms of the
    0.45-0.57 ms an envelope's read took (benchmarks/README.md, "Validation").
    """
    global _DICT
    import feedparser as library
    import feedparser.api
    import feedparser.mixin
    import feedparser.urls
    import feedparser.util

    library.api.PREFERRED_XML_PARSERS = []
    library.mixin._cp1252 = c1_table()
    _DICT = library.util.FeedParserDict
    theirs = getattr(library.urls, "_urifixer", None)
    if theirs is not None and (theirs.pattern, theirs.flags) == \
            (_URIFIXER.pattern, _URIFIXER.flags) and hasattr(library.urls, "_urljoin"):
        _REPLACED["urljoin"] = library.urls._urljoin
        library.urls._urljoin = urljoin
        if getattr(library.mixin, "_urljoin", None) is _REPLACED["urljoin"]:
            library.mixin._urljoin = urljoin
    if getattr(library.mixin, "copy", None) is copy:
        _REPLACED["copy"] = copy
        library.mixin.copy = types.SimpleNamespace(deepcopy=copy_params)
    return library


def replaced() -> dict[str, Any]:
    """What :func:`feedparser` replaced, by name ('urljoin': feedparser's ``_urljoin``;
    'copy': the ``copy`` module its mixin used): the tests' reference."""
    feedparser()
    return dict(_REPLACED)


@contextlib.contextmanager
def shipped() -> Iterator[Any]:
    """feedparser with the helpers it ships while the block runs (what a reader's copy
    runs: the reference of the tests and of ``benchmarks/feedparser_helpers.py``), this
    module's again after it."""
    library = feedparser()
    places = {"urljoin": ((library.urls, "_urljoin"), (library.mixin, "_urljoin")),
              "copy": ((library.mixin, "copy"),)}
    swapped = [(owner, name, getattr(owner, name), _REPLACED[key])
               for key in _REPLACED for owner, name in places[key]]
    for owner, name, _, theirs in swapped:
        setattr(owner, name, theirs)
    try:
        yield library
    finally:
        for owner, name, mine, _ in swapped:
            setattr(owner, name, mine)

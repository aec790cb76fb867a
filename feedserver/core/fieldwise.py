"""Conversions and storage of the records, derived from their dataclass fields.

One article is several records on its way through the build (what a file says,
its light head kept for every article, its heavy body, the publishable
article: see :mod:`feedserver.core.records`).  Nothing here names a field:
:func:`converter` copies the fields two records share, and :class:`Codec`
stores a record as the list of its field values, so a field added to the model
is carried by every conversion and by the parse cache with no other change.

Both run about 10,000 times per cold build, so each is compiled once per class
(or pair of classes) into the code one would write by hand, as
:mod:`dataclasses` itself does for ``__init__``; the generated code only reads
attributes and passes keywords, so it runs at the speed of the hand-written
converters it replaced.
"""

from __future__ import annotations

import hashlib
import types
import typing
from collections.abc import Callable
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

import orjson

R = TypeVar("R")
_converters: dict[tuple[type, type, tuple[str, ...]], Callable[..., Any]] = {}


def field_names(cls: type) -> tuple[str, ...]:
    """The names ``cls.__init__`` takes, in declaration order."""
    return tuple(f.name for f in fields(cls) if f.init)


def _compile(name: str, source: str, scope: dict[str, Any]) -> Any:
    code = compile(source, f"<fieldwise {name}>", "exec")
    exec(code, scope)  # generated from field names (identifiers), never from input
    return scope[name]


def converter(source: type, cls: type[R], *given: str) -> Callable[..., R]:
    """A function ``(record, **given) -> cls``: ``cls`` gets every field it shares with
    ``source`` from the record, and the ``given`` ones by keyword.

    For the converters on a build's path: made once (at import), it runs
    at the speed of the hand-written call.  Fields of ``source`` that ``cls``
    lacks are left behind; fields of ``cls`` that neither provides take their
    defaults (or raise ``TypeError``, like calling ``cls`` without them).
    """
    unknown = set(given) - set(field_names(cls))
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
    shared = [n for n in field_names(cls) if n not in given and n in set(field_names(source))]
    args = [f"{n}=_record_.{n}" for n in shared] + [f"{n}={n}" for n in given]
    head = ", *, " + ", ".join(given) if given else ""
    return _compile("make", f"def make(_record_, /{head}):\n    return _cls_({', '.join(args)})\n",
                    {"_cls_": cls})  # type: ignore[no-any-return]


def to_record(cls: type[R], source: object, /, **given: Any) -> R:
    """:func:`converter` for one call (tests, tools): slower by the look-up of the pair."""
    key = (type(source), cls, tuple(given))
    make = _converters.get(key)
    if make is None:
        make = _converters[key] = converter(*key[:2], *key[2])
    return make(source, **given)  # type: ignore[no-any-return]


def joiner(cls: type, names: tuple[str, ...], sep: str) -> Callable[[Any], str]:
    """A function that joins the named fields of a ``cls`` as text (None as '',
    other types by ``repr``), for hashing them."""
    hints = typing.get_type_hints(cls)
    parts = [f"s.{n}" if hints[n] is str else f"(s.{n} or '')" if hints[n] == str | None
             else f"repr(s.{n})" for n in names]
    return _compile("join", f"def join(s):\n    return sep.join(({', '.join(parts)},))\n",
                    {"sep": sep})  # type: ignore[no-any-return]


# -- storage ---------------------------------------------------------------------------------

Convert = Callable[[Any], Any]


def _plain(value: Any) -> Any:
    return value


def _codecs(kind: Any) -> tuple[Convert, Convert] | None:
    """(to JSON, from JSON) for one field type; None when JSON holds it as it is.

    orjson writes tuples as lists, so only reading them back needs a conversion.
    """
    if kind in (str, int, float, bool, type(None)):
        return None
    if kind is datetime:
        return datetime.isoformat, datetime.fromisoformat
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union) and len(args) == 2 and type(None) in args:
        inner = _codecs(next(a for a in args if a is not type(None)))
        if inner is None:
            return None
        out, back = inner
        return ((lambda v: None if v is None else out(v)) if out is not _plain else _plain,
                lambda v: None if v is None else back(v))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        inner = _codecs(args[0])
        if inner is None:
            return _plain, tuple
        out, back = inner
        return ((lambda v: [out(x) for x in v]) if out is not _plain else _plain,
                lambda v: tuple([back(x) for x in v]))
    if origin is tuple and args and Ellipsis not in args:
        each = [_codecs(a) for a in args]
        if all(c is None for c in each):
            return _plain, tuple
        outs = [c[0] if c else _plain for c in each]
        backs = [c[1] if c else _plain for c in each]
        return (lambda v: [o(x) for o, x in zip(outs, v, strict=True)],
                lambda v: tuple([b(x) for b, x in zip(backs, v, strict=True)]))
    raise TypeError(f"no storage for fields of type {kind!r}: add it to fieldwise._codecs")


_FORMAT = "fieldwise-1"  # part of every layout: a change of the encodings below is a miss


class Codec:
    """A record <-> the JSON list of its field values in declaration order (bytes).

    ``layout`` names the fields and their types: a stored value is read back
    only under the same layout (the caller keeps it beside the value), so a
    record stored before a field was added, removed or retyped is a miss, never
    a wrongly placed value.  JSON costs a body a few microseconds more to read
    than two text columns did, but a column per field would tie the table to
    the model.
    """

    def __init__(self, cls: type) -> None:
        hints = typing.get_type_hints(cls)
        self.cls = cls
        self.names = field_names(cls)
        shape = ";".join([_FORMAT, *(f"{n}:{hints[n]!r}" for n in self.names)])
        self.layout = hashlib.sha256(shape.encode()).hexdigest()[:16]
        pairs = [(at, _codecs(hints[n])) for at, n in enumerate(self.names)]
        self._out = tuple((at, c[0]) for at, c in pairs if c is not None and c[0] is not _plain)
        self._back = tuple((at, c[1]) for at, c in pairs if c is not None)
        args = ", ".join(f"{n}=v[{at}]" for at, n in enumerate(self.names))
        self._make: Callable[[list[Any]], Any] = _compile(
            "make", f"def make(v):\n    return cls({args})\n", {"cls": cls})
        self._values = _compile(
            "values", f"def values(r):\n    return [{', '.join(f'r.{n}' for n in self.names)}]\n",
            {})

    def dump(self, record: Any) -> bytes:
        values = self._values(record)
        for at, out in self._out:
            values[at] = out(values[at])
        return orjson.dumps(values)

    def load(self, data: bytes | str) -> Any:
        """The record, or None when ``data`` is not one of this layout's values."""
        try:
            values = orjson.loads(data)
            if type(values) is not list or len(values) != len(self.names):
                return None
            for at, back in self._back:
                values[at] = back(values[at])
            return self._make(values)
        except (ValueError, TypeError, IndexError):
            return None

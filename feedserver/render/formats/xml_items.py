"""A whole RSS or Atom document cut into its envelope and its item fragments, by expat.

The gate's cheap path (:func:`feedserver.render.formats.rss_atom.read_back`) needs the
exact bytes of each item as the document holds them, in document order, and the
document with them taken out.  expat (C, strict, with namespaces: what feedparser's
own strict parser is built on) reads the *whole* document once: it must be
well-formed, and each item must be an element of the format's item name at the item
depth, the items one run of bytes with nothing between them (that is how the
renderer splices them).  Anything else (not well-formed, a DOCTYPE, an item element
anywhere else, an empty item tag, text or a comment between items, no items) gives
None, and the gate parses the whole document with feedparser as it always did.

``context`` is what an item's reading may depend on besides its own bytes: the
prolog (XML declaration, processing instructions), the start tags of the item's
ancestors with their attributes (``xml:base``, ``xml:lang``, the version) and the
namespaces they declare.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any
from xml.parsers import expat


class _Refused(Exception):
    """A DOCTYPE: a document may declare entities of its own; the renderer writes none."""


def _refuse(*_: object) -> None:
    raise _Refused


def _parsed(parser: Any, body: bytes) -> bool:
    """Whether expat reads ``body`` whole with the handlers set: well-formed, no DOCTYPE.

    A declaration naming an encoding Python does not know (``LookupError``) or expat
    cannot take (a multi-byte one: ``ValueError``) is not how the renderer writes a
    document either: False, and the caller's full parse judges it (feedparser reads the
    bytes as the HTTP charset says), instead of the error escaping as a finding that
    blamed feedparser."""
    parser.StartDoctypeDeclHandler = _refuse
    try:
        parser.Parse(body, True)
    except (expat.ExpatError, _Refused, LookupError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Split:
    """A document as ``head + b"".join(items) + tail``."""

    head: bytes
    items: list[bytes]
    tail: bytes
    context: bytes


def split(body: bytes, name: str, depth: int) -> Split | None:
    """``body`` cut around its items (elements ``name`` at ``depth``, the root being 1),
    or None when it is not well-formed or not shaped as the renderer splices items."""
    return _cut(body, name, depth, None)


def _cut(body: bytes, name: str, depth: int, siblings: _Siblings | None) -> Split | None:
    """:func:`split`; with ``siblings``, the same expat pass also notes what
    :func:`elements` looks at (the starts of every element at ``depth``, the parents'
    ends, anything else in a parent): what :func:`probe` makes an envelope's cut of."""
    parser = expat.ParserCreate(namespace_separator=" ")
    level = 0
    root = -1
    opened = -1
    spans: list[tuple[int, int]] = []
    context: list[object] = []
    odd = False

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal level, root, opened, odd
        level += 1
        if siblings is not None:
            if level == depth:
                siblings.starts.append(parser.CurrentByteIndex)
            elif level == depth - 1:
                siblings.parents += 1
        if level < depth:
            if root < 0:
                root = parser.CurrentByteIndex
            context.append((tag, sorted(attrs.items())))
        elif tag == name:
            if level == depth:
                opened = parser.CurrentByteIndex
            else:
                odd = True

    def end(tag: str) -> None:
        nonlocal level, odd
        if siblings is not None and level == depth - 1:
            siblings.end = parser.CurrentByteIndex
        if level == depth and tag == name:
            at = parser.CurrentByteIndex
            if at == opened:  # an empty element: no end tag to find
                odd = True
            else:
                spans.append((opened, body.index(b">", at) + 1))
        level -= 1

    def namespace(prefix: str | None, uri: str) -> None:
        if level + 1 < depth:  # declared on an ancestor of the items
            context.append(("xmlns", prefix, uri))

    def inside(*_: object) -> None:  # text, a comment or an instruction in a parent
        if siblings is not None and level == depth - 1:
            siblings.odd = True

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartNamespaceDeclHandler = namespace
    if siblings is not None:
        parser.CharacterDataHandler = inside
        parser.CommentHandler = inside
        parser.ProcessingInstructionHandler = inside
    if not _parsed(parser, body) or odd or not spans or root < 0:
        return None
    if any(spans[i][1] != spans[i + 1][0] for i in range(len(spans) - 1)):
        return None
    first, last = spans[0][0], spans[-1][1]
    items = [body[a:b] for a, b in spans]
    prolog = body[:root]
    return Split(body[:first], items, body[last:],
                 len(prolog).to_bytes(4, "big") + prolog + repr(context).encode())


class _Siblings:
    """What :func:`_cut` notes for :func:`probe` (as :func:`elements` notes it)."""

    __slots__ = ("end", "odd", "parents", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.parents = 0
        self.end = -1
        self.odd = False


def probe(head: bytes, witness: bytes, tail: bytes, name: str,
          depth: int) -> tuple[Split, Elements | None] | None:
    """``split(head + witness + tail, name, depth)`` and ``elements(head + tail, depth)``
    in one expat pass, or None where that split is None.  The elements are given only
    where the split is the witness alone after ``head`` (what the gate goes on with);
    elsewhere None stands for them, and nothing is parsed again for a caller that stops.

    The gate read a computed answer's envelope with an empty item element (the
    witness) where its items are, then cut the envelope without it into its own
    elements: two passes of expat over the same few hundred bytes, about 30 us each in
    a filtered answer of 0.5 ms.  Where the split holds, the witness is one whole
    element at ``depth`` from ``len(head)`` on, with no attribute and no namespace of
    its own, so ``head + tail`` is that document without it (well-formed, the same
    elements, text, comments and instructions around), and its elements are those of
    this pass but the witness, those after it ``len(witness)`` bytes earlier (the one
    before it ends where the witness began: where, without it, the next element or the
    parent's end tag begins).  tests/unit/test_gate_readings.py compares the two with
    :func:`split` and :func:`elements` over the renderers' documents and random edits.
    """
    body = head + witness + tail
    siblings = _Siblings()
    cut = _cut(body, name, depth, siblings)
    if cut is None:
        return None
    at, size = len(head), len(witness)
    if cut.items != [witness] or cut.head != head or at not in siblings.starts:
        return cut, None  # not as the renderer draws: the gate reads it otherwise
    starts = [s if s < at else s - size for s in siblings.starts if s != at]
    end = siblings.end - size
    if siblings.odd or not starts or siblings.parents != 1 or end < starts[-1]:
        return cut, None
    envelope = head + tail
    bounds = [*starts, end]
    return cut, Elements(envelope[:starts[0]],
                         [envelope[a:b] for a, b in pairwise(bounds)], envelope[end:])


@dataclass(frozen=True)
class Elements:
    """A document without its items as ``opening + b"".join(elements) + closing``: the
    elements beside the items (what the channel says of itself), each one whole."""

    opening: bytes
    elements: list[bytes]
    closing: bytes


def elements(envelope: bytes, depth: int) -> Elements | None:
    """``envelope`` cut around the elements at ``depth`` (the items' own depth: the
    channel's title, links, dates...), or None when it is not well-formed, has no such
    element, or holds anything else in their parent (text, even a space; a comment; a
    processing instruction; a second parent): then it is read whole.

    Each element runs from its start tag to the next one's (or to its parent's end tag,
    for the last): with nothing else in the parent, that is exactly the element, its
    end tag or an empty element's ``/>`` included, whatever its attributes hold.
    """
    parser = expat.ParserCreate(namespace_separator=" ")
    level = 0
    starts: list[int] = []
    parents = 0
    end = -1
    odd = False

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal level, parents
        level += 1
        if level == depth:
            starts.append(parser.CurrentByteIndex)
        elif level == depth - 1:
            parents += 1

    def close(tag: str) -> None:
        nonlocal level, end
        if level == depth - 1:
            end = parser.CurrentByteIndex
        level -= 1

    def inside(*_: object) -> None:  # text, a comment or an instruction in the parent
        nonlocal odd
        if level == depth - 1:
            odd = True

    parser.StartElementHandler = start
    parser.EndElementHandler = close
    parser.CharacterDataHandler = inside
    parser.CommentHandler = inside
    parser.ProcessingInstructionHandler = inside
    if not _parsed(parser, envelope) or odd or not starts or parents != 1 \
            or end < starts[-1]:
        return None
    bounds = [*starts, end]
    return Elements(envelope[:starts[0]],
                    [envelope[a:b] for a, b in pairwise(bounds)],
                    envelope[end:])

"""The read side of the output folder's records: the manifest and status.json.

The writer (:mod:`feedserver.publish.output`) compresses and stages files, with
brotli, ISA-L and orjson; whatever only *reads* what it wrote (the web app in
every web worker, ``serve``'s start-up checks, the next build) comes here
instead and needs none of the writer's libraries.  It reads the manifest with msgspec,
in under half the standard library's time and with less memory at its peak (every
web worker reads it again after each publish, and waits for it: benchmarks/README.md,
"A publish, as a web worker sees it").

A manifest entry (``files[path]``) holds ``etag``, ``size``, ``media_type``,
``last_modified`` (an HTTP date), ``channel``, ``encodings`` (name -> etag and
size of each precompressed body) and, where they apply, ``format`` (the feed
format of a feed file), ``cors`` (other sites' scripts may read it) and
``max_age`` (a feed's freshness in seconds, from its channel's pace:
:mod:`feedserver.core.freshness`) and ``immutable`` (a full archive page): absent
means '', false, the refresh interval and false, which keeps a manifest of tens of
thousands of pages small.  An RFC 3229
delta (a file under :data:`DELTAS`, never served by its own URL) has ``delta``:
``feed`` (the feed's path), ``to`` (the plain ETag of the feed version it leads to)
and ``from`` (every ETag a client may hold for the version it starts from).

On disk the manifest is in parts (:class:`Shards`, format 4).  ``manifest.json`` holds
the version, the gone paths and the names of its parts; the entries and the channels'
signatures are in the part files under :data:`PARTS_DIR`, each the entries of one
bucket of keys, named by a hash of their bytes.  A key's bucket follows what a build
changes together (:func:`unit`: an article's files, a channel's archive pages by the
64): a one-file build of a 50,000-article site changes about 170 entries and 40
signatures, and rewrites the 18 and 35 parts that hold them (2.4 MB) instead of a
63 MB file, and a web worker decodes only the parts it has not read before
(``feedserver.web.published.Store``).  A part is never rewritten in place (a new name,
renamed in before the root that lists it), and a publish leaves the parts of the
root it replaced for one more publish, so a reader that read the old root a moment
before still finds them.  Every reader goes through :func:`load_manifest`, which
gives the manifest whole, as one dict, as before the parts; a format-3 manifest (one
file) is read as it is, and the next publish writes it in parts.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from feedserver.core.layout import MANIFEST, META_DIR, STATUS

# 2: entries carry ``format`` and ``cors``; 3: feeds carry ``max_age``.  An older
# manifest lacks them, so its channel signatures are not trusted: the next build goes
# through every file once.  4: the same entries, in parts (:class:`Shards`).
VERSION = 4
SIGNED_SINCE = 3  # the oldest version whose channel signatures are trusted
DELTAS = f"{META_DIR}/deltas"  # RFC 3229 feed deltas: deltas/<feed path>-<base>.<ext>
DELTAS_PREFIX = f"{DELTAS}/"  # every delta file's path starts so; nothing else's does
PARTS_DIR = f"{META_DIR}/manifest"  # the manifest's parts (Shards), named by their bytes
SECTIONS = ("files", "channels")  # what the parts hold; the root holds the rest
PER_PART = 500  # entries a part holds on average (Shards.fitting)
_FLAT = frozenset(("", f"{META_DIR}/query/items", "embed"))  # folders of one-file units
_ARCHIVES = 64  # archive pages of a channel a unit holds
# How keys are placed in buckets (unit, bucket): recorded in the root, and a manifest
# placed otherwise is placed afresh by its next publish (Shards.fits).  Change it
# whenever unit() or bucket() would place a key elsewhere.
PARTITION = 1


def etag_of(body: bytes) -> str:
    """Strong ETag from the bytes themselves, so it changes only with content."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_of_open(fd: int) -> str:
    """:func:`etag_of` of an open file's bytes, read in pieces with ``pread`` (a media
    file is never held whole; the descriptor's position is left where it was)."""
    digest, offset = hashlib.sha256(), 0
    while chunk := os.pread(fd, 1 << 20, offset):
        digest.update(chunk)
        offset += len(chunk)
    return '"' + digest.hexdigest()[:32] + '"'


def empty() -> dict[str, Any]:
    """The manifest of a folder nothing was published to."""
    return {"version": VERSION, "files": {}, "gone": [], "channels": {}}


def unit(key: str) -> str:
    """What a manifest key is stored with: the keys a build changes together.

    An article's page and its assets share their folder, a channel's files theirs, and
    its archive pages (``.../archive/<n>/``) go by the :data:`_ARCHIVES`; in a folder of
    one-file units (the top level, the query records, the embeds) each file is its own,
    and a channel's signature key (``slug`` or ``slug~page``) goes with its slug's pages.
    The deltas, all remade when their feeds change, are one unit.
    """
    if key.startswith(DELTAS_PREFIX):
        return DELTAS
    folder = key.rpartition("/")[0]
    if folder in _FLAT:
        slug, tilde, page = key.partition("~")
        return f"{slug}~{int(page) // _ARCHIVES}" if tilde and page.isdigit() else key
    return "/".join(str(int(part) // _ARCHIVES) if part.isdigit() else part
                    for part in folder.split("/"))


def bucket(key: str, buckets: int) -> int:
    """The part (of ``buckets``) a key is stored in: its :func:`unit`'s, by CRC-32 (the
    same in every process, unlike ``hash``)."""
    return zlib.crc32(unit(key).encode("utf-8", "surrogatepass")) % buckets


@dataclass(frozen=True, eq=False)
class Shards:
    """Where a manifest's entries are on disk: for each section, the part file of each
    bucket (None: an empty bucket) and the keys it holds.  Kept with the manifest it
    describes (under ``"shards"``, never written as such) so that a publish finds the
    buckets its changed keys fall in without a pass over every key; a publish makes a
    new one (:meth:`changed`), copying only the buckets it changed."""

    buckets: int
    names: Mapping[str, tuple[str | None, ...]]
    members: Mapping[str, tuple[frozenset[str], ...]]
    partition: int = PARTITION  # how its keys were placed (PARTITION when by this code)

    @staticmethod
    def fitting(entries: int) -> int:
        """The number of buckets for a manifest of ``entries`` keys: a power of two,
        about :data:`PER_PART` keys a part (at most 1,024 parts)."""
        count = 1
        while count < 1024 and entries > count * PER_PART * 1.5:
            count *= 2
        return count

    def fits(self, entries: int) -> bool:
        """Whether these buckets still suit that many keys (within a factor of four of
        :meth:`fitting`'s, so a site that grows is not re-partitioned at every step) and
        were placed as this code places keys (:data:`PARTITION`)."""
        best = self.fitting(entries)
        return self.partition == PARTITION and best // 4 <= self.buckets <= best * 4

    @classmethod
    def of(cls, sections: Mapping[str, Mapping[str, Any]], buckets: int) -> Shards:
        """Every key placed afresh (a first publish, or a site that outgrew its buckets):
        no part written yet."""
        members: dict[str, tuple[frozenset[str], ...]] = {}
        for section in SECTIONS:
            placed: list[list[str]] = [[] for _ in range(buckets)]
            for key in sections[section]:
                placed[bucket(key, buckets)].append(key)
            members[section] = tuple(frozenset(keys) for keys in placed)
        return cls(buckets, {s: (None,) * buckets for s in SECTIONS}, members)

    def changed(self, keys: Mapping[str, Iterable[str]],
                sections: Mapping[str, Mapping[str, Any]]) -> tuple[Shards, dict[str, set[int]]]:
        """These shards with ``keys`` (section -> keys added, changed or removed) placed
        as ``sections`` now hold them; and the buckets that changed, whose parts are to
        be written again."""
        members = {s: list(self.members[s]) for s in SECTIONS}
        dirty: dict[str, set[int]] = {s: set() for s in SECTIONS}
        for section in SECTIONS:
            now, held = sections[section], members[section]
            added: dict[int, set[str]] = {}
            dropped: dict[int, set[str]] = {}
            for key in keys.get(section, ()):
                at = bucket(key, self.buckets)
                dirty[section].add(at)
                (added if key in now else dropped).setdefault(at, set()).add(key)
            for at in dirty[section]:
                held[at] = (held[at] | added.get(at, set())) - dropped.get(at, set())
        return Shards(self.buckets, self.names, {s: tuple(members[s]) for s in SECTIONS},
                      self.partition), dirty

    def named(self, names: Mapping[str, Mapping[int, str | None]]) -> Shards:
        """These shards with the parts just written for some buckets."""
        return Shards(self.buckets, {
            s: tuple(names.get(s, {}).get(at, name) for at, name in enumerate(self.names[s]))
            for s in SECTIONS}, self.members, self.partition)

    def part_names(self) -> set[str]:
        """Every part file these shards list."""
        return {name for s in SECTIONS for name in self.names[s] if name}


def part_body(section: str, keys: Iterable[str], entries: Mapping[str, Any],
              dumps: Any) -> tuple[str, bytes]:
    """A part's file name and bytes: its keys' entries, sorted (the same keys and
    values give the same bytes, so the same name), encoded by ``dumps``."""
    body = dumps({key: entries[key] for key in sorted(keys)})
    return f"{section[0]}-{hashlib.sha256(body).hexdigest()[:24]}.json", body


def decode(raw: bytes | str) -> dict[str, Any]:
    """A manifest's text -> its dict, every section present; raises ValueError if garbled.

    msgspec decodes straight into Python objects: orjson, as fast, first builds a
    document of its own, about eleven times the manifest's size at its peak.  It refuses
    what the standard library would let through and orjson, our writer, never writes
    (``NaN``, text that is not UTF-8): such a file is garbled.  The cyclic garbage
    collector is paused while it parses: parsed JSON holds no cycle, so a collection then
    can free nothing, yet the containers it makes set them off by the dozen (a 53 MB
    manifest, 50,000 articles: 0.83 s to parse with the standard library, 0.45 s paused).
    """
    data = _object(raw, "the manifest")
    data.setdefault("files", {})
    data.setdefault("gone", [])
    data.setdefault("channels", {})
    version = data.get("version", 1)
    if not isinstance(version, int) or version < SIGNED_SINCE:
        data["channels"] = {}  # signatures of files whose entries lack format and cors
    return data


def part_names(root: Mapping[str, Any], section: str) -> list[str | None]:
    """The part files a decoded root lists for ``section`` (by bucket); raises
    ValueError when the list is not one."""
    parts = root.get("parts")
    names = parts.get(section) if isinstance(parts, dict) else None
    if not isinstance(names, list) or not all(n is None or _part_name(n) for n in names):
        raise ValueError(f"the manifest lists no parts of its {section}")
    return names


def _part_name(name: object) -> bool:
    return isinstance(name, str) and "/" not in name and name.endswith(".json") \
        and not name.startswith(".")


def decode_part(raw: bytes) -> dict[str, Any]:
    """One part's bytes -> its entries; raises ValueError if garbled (see :func:`decode`)."""
    return _object(raw, "a manifest part")


def _object(raw: bytes | str, what: str) -> dict[str, Any]:
    """A JSON object parsed by msgspec with the cyclic collector paused (see
    :func:`decode`); raises ValueError for anything else."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        data = msgspec.json.decode(raw)
    finally:
        if collecting:
            gc.enable()
    if not isinstance(data, dict):
        raise ValueError(f"{what} is not a JSON object")
    return data


def load_manifest(out_dir: Path) -> dict[str, Any]:
    """The current manifest, whole (its parts read and joined), or an empty one (first
    run, or unreadable: a part missing or garbled too).  With parts, it carries the
    :class:`Shards` it was read from under ``"shards"``, for the next publish."""
    try:
        data = decode((out_dir / MANIFEST).read_bytes())
        if "parts" in data:
            data.update(_read_parts(out_dir, data))
        return data
    except (OSError, ValueError):
        return empty()


def _read_parts(out_dir: Path, root: dict[str, Any]) -> dict[str, Any]:
    """The sections of a format-4 manifest, read from its parts, and their Shards."""
    folder = out_dir / PARTS_DIR
    sections: dict[str, Any] = {}
    names: dict[str, tuple[str | None, ...]] = {}
    members: dict[str, tuple[frozenset[str], ...]] = {}
    for section in SECTIONS:
        listed = part_names(root, section)
        joined: dict[str, Any] = {}
        held: list[frozenset[str]] = []
        for name in listed:
            part = decode_part((folder / name).read_bytes()) if name else {}
            joined.update(part)
            held.append(frozenset(part))
        sections[section], names[section], members[section] = joined, tuple(listed), \
            tuple(held)
    if len({len(names[s]) for s in SECTIONS}) != 1 or not names["files"]:
        raise ValueError("the manifest's parts do not match")
    if not isinstance(root.get("version"), int) or root["version"] < SIGNED_SINCE:
        sections["channels"] = {}
    partition = root.get("partition")
    return {**sections, "shards": Shards(len(names["files"]), names, members,
                                         partition if isinstance(partition, int) else 0)}


def feed_format(entry: dict[str, Any]) -> str:
    """The feed format of a file's entry ('' for anything but a feed)."""
    value = entry.get("format")
    return value if isinstance(value, str) else ""


def cors(entry: dict[str, Any]) -> bool:
    """Whether other sites' scripts may read the file."""
    return entry.get("cors") is True


def max_age(entry: dict[str, Any]) -> int | None:
    """A feed's freshness in seconds as the build computed it (None: not recorded)."""
    value = entry.get("max_age")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


def delta_of(entry: dict[str, Any]) -> tuple[str, str, tuple[str, ...]] | None:
    """A delta file's (feed path, ETag it leads to, ETags it starts from), else None."""
    value = entry.get("delta")
    if not isinstance(value, dict):
        return None
    feed, target, bases = value.get("feed"), value.get("to"), value.get("from")
    if not (isinstance(feed, str) and isinstance(target, str) and isinstance(bases, list)):
        return None
    return feed, target, tuple(b for b in bases if isinstance(b, str))


def immutable(entry: dict[str, Any]) -> bool:
    """Whether the file is a full archive page (RFC 5005): its bytes never change as
    articles arrive, so caches may keep it long without asking again."""
    return entry.get("immutable") is True


def read_status(out_dir: Path) -> dict[str, Any]:
    """status.json (see :func:`feedserver.publish.output.write_status`); {} if unreadable."""
    try:
        status = json.loads((out_dir / STATUS).read_bytes())
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


# One version of a file (the manifest, the config): (device, inode, size, mtime), or None.
Stamp = tuple[int, int, int, int] | None


def stamp_of(path: str) -> Stamp:
    """What identifies one version of the file (a rename or a write changes it)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

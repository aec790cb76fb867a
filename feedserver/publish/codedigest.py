"""The identity of the installed code: a hash of some of this package's source files and
of the installed versions of some libraries.

A value cached by one version of the code that made it must not be taken by another
(:mod:`feedserver.build.codeversion` keys the parse cache and every signature with it;
:mod:`feedserver.publish.readings_store` the gate's kept readings, which the build writes
and the web workers read).  It reads files, so it is not in the pure core; it lives at
the lowest layer that keys a cache (the query engine, below the build, opens the
readings store), and both version lists of ``codeversion`` name this file, so a change
to how the code is hashed changes every version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

PACKAGE = Path(__file__).parent.parent


def installed(name: str) -> str:
    """The installed version of the distribution ``name``, or ``-`` when it is absent."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def digest(modules: Iterable[str], libraries: Iterable[str],
           without: Iterable[str] = ()) -> str:
    """Hash of the sources (files or whole folders of this package, less the folders
    ``without``) and the libraries' versions."""
    h = hashlib.sha256()
    left_out = tuple(PACKAGE / name for name in without)
    for name in modules:
        root = PACKAGE / name
        files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix != ".pyc"
                       and not any(f.is_relative_to(out) for out in left_out)) \
            if root.is_dir() else [root]
        for path in files:
            h.update(f"{path.relative_to(PACKAGE).as_posix()}\0".encode())
            h.update(path.read_bytes())
    for library in libraries:
        h.update(f"\0{library}={installed(library)}".encode())
    return h.hexdigest()[:16]

"""py3langid's model, loaded through a ready copy in the user's cache folder.

py3langid ships its model as an xz-compressed NumPy archive: every process that
detects a language spends about 0.9 s loading it, half of that in lzma.  A
``feedserver build`` after a one-file change (about 3 s at 400 articles), ``check``
and every start of the scheduler are such processes.  The first load keeps the
identifier as loaded (a pickle, about 70 MB) in the user's cache folder
(``platformdirs``: ``$XDG_CACHE_HOME/feedserver``, else ``~/.cache/feedserver``); later
loads take about 0.08 s (read as a stream, see :func:`load`; 0.15 s read whole).

The copy's name says everything it was made from: the versions of py3langid, NumPy
and Python, the SHA-256 of the model file itself and how it was loaded
(:data:`feedserver.parse.language.LOADED_AS`), so an upgrade of any of them makes a
new one (and leaves the old for the user to delete).  A pickle runs code when loaded,
so a copy is read only from a folder that this user owns and nobody else may write
to.  A cache that cannot be read or written is passed by: the model
then loads as it always did.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import stat
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from feedserver.parse import language

log = logging.getLogger(__name__)


def load(cache_dir: Path | None = None) -> Any:
    """The model, normalized to probabilities, from the cache when a good copy is there."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    model = Path(MODEL_FILE) if Path(MODEL_FILE).is_absolute() else MODEL_DIR / MODEL_FILE
    folder = cache_dir if cache_dir is not None else _user_cache()
    copy = folder / _name(model) if folder is not None else None
    if copy is not None and _trusted(folder):
        # Read as a stream: the whole copy read first and then unpickled held its 65 MB
        # beside the model for a moment (the peak of a cold build's parent); a stream
        # holds one array's bytes at most, and loads in half the time.
        with contextlib.suppress(Exception), copy.open("rb") as stream:  # a damaged copy
            found = pickle.load(stream)  # may raise anything: pass it by
            if isinstance(found, LanguageIdentifier):
                return found
    identifier = language.load_shipped()
    if copy is not None:
        _keep(copy, identifier)
    return identifier


def _user_cache() -> Path | None:
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("feedserver", appauthor=False))
    except Exception:  # no home folder (a service account): no cache
        return None


def _name(model: Path) -> str:
    """The copy's file name: what it was made from."""
    made_of = hashlib.sha256()
    made_of.update(model.read_bytes())
    for part in (metadata.version("py3langid"), metadata.version("numpy"), sys.version,
                 str(pickle.HIGHEST_PROTOCOL), repr(sorted(language.LOADED_AS.items()))):
        made_of.update(b"\0" + part.encode())
    return f"py3langid-model-{made_of.hexdigest()[:24]}.pickle"


def _trusted(folder: Path) -> bool:
    """Whether ``folder`` is this user's own and nobody else may write to it."""
    try:
        info = folder.stat()
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _keep(copy: Path, identifier: Any) -> None:
    """Write the copy whole or not at all (another process may be writing it too)."""
    staged: str | None = None
    try:
        copy.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _trusted(copy.parent):
            return
        with tempfile.NamedTemporaryFile(dir=copy.parent, prefix=".tmp-", delete=False) as out:
            staged = out.name
            pickle.dump(identifier, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(staged, copy)
    except (OSError, pickle.PicklingError) as exc:
        log.debug("language model not cached in %s: %s", copy.parent, exc)
        if staged is not None:
            with contextlib.suppress(OSError):
                os.unlink(staged)

"""What a build checks before it may change anything a reader sees (a shell module).

* The seeds folder: a build that finds it missing, unreadable or suddenly
  empty, or more than half of its articles gone at once, publishes nothing
  (:class:`SeedsUnavailable`): an unmounted disk or a half-finished copy must
  not answer 410 Gone for every topic, which makes readers unsubscribe.
* The ledger: SQLite's own errors (a corrupt file, a full disk, a read-only
  folder) become one :class:`StateUnavailable` line naming the file and what
  to do, instead of a traceback and a restart loop.
* ``check`` reads a copy of the ledger in memory (:func:`scratch_ledger`), so
  it can mint identities for new files without creating or changing anything,
  not even the ``-shm`` of a live writer, nor any modification time.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Set
from pathlib import Path
from urllib.parse import quote

from feedserver.config import Settings
from feedserver.core.errors import MassRemovalRefused, SeedsUnavailable, StateUnavailable
from feedserver.core.records import Problem
from feedserver.identify.ledger import Ledger
from feedserver.publish.output import MANIFEST, STATUS

log = logging.getLogger(__name__)
KEEP = "nothing was published; the last good output stays"


def check_seeds_folder(seeds_dir: str) -> None:
    """Raise :class:`SeedsUnavailable` unless ``seeds_dir`` is a folder this process can list.

    Opening the folder costs one system call, and it is what the scan does
    next; a folder that is not there is most often an unmounted disk or a
    deploy in progress, never "every article was deleted".
    """
    try:
        with os.scandir(seeds_dir):
            pass
    except FileNotFoundError:
        raise SeedsUnavailable(f"the seeds folder {seeds_dir} is missing; {KEEP}") from None
    except NotADirectoryError:
        raise SeedsUnavailable(f"the seeds folder {seeds_dir} is not a folder; {KEEP}") from None
    except OSError as exc:
        raise SeedsUnavailable(f"cannot read the seeds folder {seeds_dir}: "
                               f"{exc.strerror or exc}; {KEEP}") from None


def _published_articles(out_dir: Path) -> int:
    """How many articles the last publish listed (status.json), 0 when unknown."""
    try:
        status = json.loads((out_dir / STATUS).read_text(encoding="utf-8"))
        return int(status.get("articles") or 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def check_removals(settings: Settings, known: Set[str], present: Set[str],
                   gone: Set[str]) -> list[Problem]:
    """Refuse a build that would take away all, or more than half, of the articles.

    ``known`` are the files of the last good build (the ledger's cache),
    ``present`` those on disk now and ``gone`` the known ones not on disk.
    With ``allow_mass_removal`` the build goes on and a warning says so (the
    log has it too).  A new site whose folder is empty may publish an empty site.
    """
    seeds = settings.seeds_dir
    allow = ("build with --allow-mass-removal (or set allow_mass_removal = true) to "
             "publish the removal")
    if not present:
        before = len(known) or _published_articles(Path(settings.output_dir))
        if not before:
            return []
        what = f"the seeds folder {seeds} is empty but {before} articles were published"
        if not settings.allow_mass_removal:
            raise SeedsUnavailable(f"{what}; {KEEP}; if that is meant, {allow}")
    elif known and len(gone) * 2 > len(known):
        what = f"{len(gone)} of {len(known)} articles in {seeds} are gone since the last build"
        if not settings.allow_mass_removal:
            raise MassRemovalRefused(f"{what}; {KEEP}; if that is meant, {allow}")
    else:
        return []
    log.warning("mass removal allowed: %s", what)
    return [Problem(seeds, f"mass removal: {what} (allowed by allow_mass_removal)",
                    "warning")]


def lost_ledger(settings: Settings) -> list[Problem]:
    """A warning when the ledger is gone but the output says a site was published."""
    out_dir = Path(settings.output_dir)
    if settings.ledger_file.exists() or not (out_dir / MANIFEST).is_file():
        return []
    return [Problem(str(settings.ledger_file), "ledger missing: ids of renamed articles may "
                    "change (a new ledger is started from the files as they are)", "warning")]


def state_error(path: Path, exc: BaseException, what: str = "the ledger") -> StateUnavailable:
    """One line naming the state file, what went wrong and what to do about it."""
    text = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
    low = text.lower()
    code = getattr(exc, "errno", None) if isinstance(exc, OSError) else None
    tail = "; the last good output stays"
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return StateUnavailable(
            f"{what} {path} is corrupt ({text}): move it aside and build again (a new "
            f"ledger is started; ids of renamed articles may change){tail}")
    if "full" in low or code == errno.ENOSPC:
        return StateUnavailable(f"cannot write {what} {path}: the disk is full; free "
                                f"space there and build again{tail}")
    if "readonly" in low or "read-only" in low or code in (errno.EROFS, errno.EACCES,
                                                           errno.EPERM) \
            or ("unable to open" in low and _read_only(path.parent)):
        return StateUnavailable(f"cannot write {what} {path}: its folder is read-only "
                                f"({text}); make state_dir writable and build again{tail}")
    return StateUnavailable(f"cannot use {what} {path} ({text}); check that state_dir "
                            f"is a writable folder with free space{tail}")


def _read_only(folder: Path) -> bool:
    """True when ``folder`` exists but this process may not write in it (SQLite only says
    "unable to open database file" when it cannot make its -wal or -shm file there)."""
    return folder.is_dir() and not os.access(folder, os.W_OK)


@contextlib.contextmanager
def translated(path: Path) -> Iterator[None]:
    """Turn SQLite's errors (and the folder's, while opening) into :class:`StateUnavailable`."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "interrupted" in str(exc):
            raise
        raise state_error(path, exc) from None


def open_ledger(path: Path, read_only: bool) -> Ledger:
    """The ledger, or for ``check`` a copy of it in memory (see :func:`scratch_ledger`)."""
    try:
        return scratch_ledger(path) if read_only else Ledger(path)
    except sqlite3.DatabaseError as exc:
        raise state_error(path, exc) from None
    except OSError as exc:  # the state folder itself cannot be made
        raise state_error(path, exc) from None


class _Scratch(Ledger):
    """A :class:`Ledger` over an in-memory database: writes go nowhere."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.path = path
        self.patience = 30.0
        self.db = db
        try:
            self._retry(self._setup)
        except BaseException:
            db.close()
            raise


def scratch_ledger(path: Path) -> Ledger:
    """A copy of the ledger in memory (empty when there is none), for a read-only ``check``.

    Without a ``-wal`` file beside it nobody has it open for writing, so the
    file is opened ``mode=ro&immutable=1`` (SQLite then reads the file alone and
    creates no ``-shm``).  With one, a writer is live (or was killed): even a
    read-only connection would take its read locks in the ``-shm`` and rewrite
    it, so the file and its ``-wal`` are copied to a private folder and read
    there (:func:`_snapshot`).  The copy in memory is SQLite's online backup.
    """
    memory = sqlite3.connect(":memory:", isolation_level=None)
    try:
        if Path(f"{path}-wal").exists():
            with tempfile.TemporaryDirectory(prefix="feedserver-check-") as folder:
                copy = _snapshot(path, Path(folder))
                _backup(sqlite3.connect(copy), memory)
        elif path.is_file():
            _backup(sqlite3.connect(f"file:{quote(str(path))}?mode=ro&immutable=1", uri=True),
                    memory)
    except BaseException:
        memory.close()
        raise
    return _Scratch(memory, path)


def _backup(source: sqlite3.Connection, memory: sqlite3.Connection) -> None:
    try:
        source.backup(memory)
    finally:
        source.close()


def _snapshot(path: Path, folder: Path, tries: int = 5) -> Path:
    """The ledger and its ``-wal`` copied into ``folder``, as one consistent state.

    The ``-wal`` is copied after the file, and the file's size and modification
    time are the same before and after both copies: no checkpoint ran meanwhile,
    and the frames of a commit still being appended fail their checksums and are
    ignored, as after a crash.
    """
    copy, wal = folder / path.name, Path(f"{path}-wal")
    for _ in range(tries):
        before = _stamp(path)
        shutil.copyfile(path, copy)
        try:
            shutil.copyfile(wal, f"{copy}-wal")
        except FileNotFoundError:  # checkpointed and closed meanwhile
            Path(f"{copy}-wal").unlink(missing_ok=True)
        if _stamp(path) == before:
            break
    return copy


def _stamp(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns

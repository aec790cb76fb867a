"""Tools for the fault tests: a changing corpus, output checks, a disk that fills up,
and ``feedserver serve`` on 127.0.0.1 (stopped by its PID)."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.parsers import expat

import pytest

from feedserver.config import Settings, load_settings
from feedserver.core.layout import JOURNAL, PUBLISHING, STATUS
from feedserver.publish.manifest import PARTS_DIR, load_manifest
from feedserver.publish.output import ENCODINGS, MANIFEST, etag_of
from feedserver.web.app import create_app
from tests.system.test_serve_e2e import free_port, stop, wait_ready

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TOPICS = ("Grain", "Rail", "Water", "Schools", "Banks", "Mining", "Ports", "Roads", "Health",
          "Courts", "Space", "Trade", "Music", "Chess")
_MEDIA = {".rss": "application/rss+xml", ".atom": "application/atom+xml"}


# -- a corpus that changes a little at every step -----------------------------------------

def article(index: int, version: int, topics: list[str]) -> str:
    """A small Markdown article; ``version`` changes its text (an edit)."""
    return ("---\n" f'title: "Report {index} (v{version})"\n'
            f"date: 2026-10-{1 + index % 28:02d}T08:{index % 60:02d}:00Z\n"
            f"topics: [{', '.join(topics)}]\n---\n"
            f"Paragraph {index}.{version}: the grain train reached the port.\n\n"
            f"Second paragraph, version {version}, with *emphasis* and a [link](/about/).\n")


def write_article(seeds: Path, name: str, text: str, stamp: float) -> None:
    path = seeds / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.utime(path, (stamp, stamp))


def seed_corpus(seeds: Path, count: int) -> None:
    """``count`` articles over the topics, in two folders, dated by index."""
    for index in range(count):
        topics = [TOPICS[index % len(TOPICS)], TOPICS[(index * 5 + 3) % len(TOPICS)]]
        write_article(seeds, f"{'desk/' if index % 3 else ''}a{index:03d}.md",
                      article(index, 0, topics), NOW.timestamp() - 86_400 + index)


def mutate(seeds: Path, step: int) -> str:
    """One deterministic change of the corpus: edit, add, rename, delete or retopic."""
    rng = random.Random(step)
    files = sorted(p for p in seeds.rglob("*.md"))
    stamp = NOW.timestamp() - 3_600 + step
    kind = ("edit", "add", "rename", "delete", "retopic")[step % 5]
    victim = files[rng.randrange(len(files))]
    index = int(victim.stem.lstrip("a").split("-")[0])
    if kind == "edit" or (kind == "delete" and len(files) < 20):
        write_article(seeds, str(victim.relative_to(seeds)),
                      article(index, step, [TOPICS[index % len(TOPICS)]]), stamp)
    elif kind == "add":
        write_article(seeds, f"new/a{1000 + step:04d}.md",
                      article(1000 + step, 0, [rng.choice(TOPICS)]), stamp)
    elif kind == "rename":
        target = seeds / "moved" / f"a{index:03d}-{step}.md"
        target.parent.mkdir(exist_ok=True)
        victim.rename(target)
    elif kind == "delete":
        victim.unlink()
    else:  # a topic of its own: a channel appears now and goes away at a later retopic
        lone = f"Lone {step % 3}"
        for other in files:
            if lone in other.read_text(encoding="utf-8"):
                write_article(seeds, str(other.relative_to(seeds)),
                              article(index, step, [TOPICS[0]]), stamp)
        write_article(seeds, str(victim.relative_to(seeds)), article(index, step, [lone]), stamp)
    return kind


def make_site(root: Path, count: int = 40) -> Settings:
    """A site under ``root``: config, seeds, output and state.

    Topics and languages are neither assigned nor detected, there is no poll budget,
    ``max_items`` holds the whole corpus (no archive pages) and each feed keeps two
    versions for RFC 3229 deltas, not eight: the fault tests are about crashes, disks and
    locks, and the kill loop needs builds that start quickly (detection loads a language
    model in every build process; archive pages and older deltas are more files of the
    same publish, whose crash safety they do not change).
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.toml").write_text(
        'site_title = "Fault site"\nbase_url = "https://feeds.example.org/"\n'
        "auto_topics = false\ndetect_topics = false\ndetect_language = false\n"
        "max_items = 60\npoll_budget = 0\ndelta_history = 2\n", encoding="utf-8")
    seed_corpus(root / "seeds", count)
    return load_settings(root / "config.toml", env={})


# -- what a consistent output folder is ------------------------------------------------------

BOOKKEEPING = frozenset({MANIFEST, STATUS, PUBLISHING, JOURNAL})

PARTS = f"{PARTS_DIR}/"


def tree(out: Path, seen: dict[str, tuple[tuple[int, int, int], bytes]] | None = None
         ) -> dict[str, bytes]:
    """Every published file's bytes: the served ones and those the manifest lists under
    the metadata folder (error pages, query records, RFC 3229 deltas); the publish's own
    bookkeeping (manifest and its parts, status, journal, marker) and temp files aside.

    With ``seen`` (kept by the caller across calls), a file whose inode, mtime and size
    are those of its last reading is not read again: the kill loop reads a folder of a
    thousand files three times a step, and a publish only ever renames new files into
    place, so an unchanged identity is unchanged bytes (a write in place would move the
    mtime and be read again).
    """
    files: dict[str, bytes] = {}
    for folder, _, names in os.walk(out):
        for name in names:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, out).replace(os.sep, "/")
            if rel in BOOKKEEPING or rel.startswith(PARTS) or name.endswith(".tmp") \
                    or not os.path.isfile(path):
                continue
            if seen is None:
                files[rel] = Path(path).read_bytes()
                continue
            info = os.stat(path)
            identity = (info.st_ino, info.st_mtime_ns, info.st_size)
            known = seen.get(rel)
            if known is None or known[0] != identity:
                known = seen[rel] = (identity, Path(path).read_bytes())
            files[rel] = known[1]
    return dict(sorted(files.items()))


def digest(files: dict[str, bytes]) -> str:
    whole = hashlib.sha256()
    for path, body in sorted(files.items()):
        whole.update(f"{path}\0{len(body)}\0".encode())
        whole.update(body)
    return whole.hexdigest()[:16]


class FeedCheck:
    """Every feed file parses, remembering bodies already found good.

    What a kill can do to a file is tear it or leave half of a rename: XML is parsed
    whole by expat, the parser feedparser itself reads feeds with (a torn document is
    what makes feedparser's ``bozo``), at C speed, since the kill loop meets a hundred
    new feed bodies a step, deltas included; JSON by ``json``.  That the bytes left are
    the ones the build's gate passed through feedparser is :func:`consistency`'s part
    (each file's bytes hash to its manifest ETag).
    """

    def __init__(self) -> None:
        self.good: set[str] = set()

    def __call__(self, files: dict[str, bytes]) -> list[str]:
        errors = []
        for path, body in files.items():
            kind = Path(path).suffix
            if not (kind in _MEDIA or path.endswith("feed.json")):
                continue
            key = hashlib.sha256(body).hexdigest()
            if key in self.good:
                continue
            error = _problem(kind, body)
            if error:
                errors.append(f"{path}: {error}")
            else:
                self.good.add(key)
        return errors


def _problem(kind: str, body: bytes) -> str:
    """Why a feed file's bytes do not parse, or ''."""
    if kind == ".json":
        try:
            ok = isinstance(json.loads(body)["items"], list)
        except (ValueError, KeyError, TypeError):
            ok = False
        return "" if ok else "not a JSON Feed"
    try:
        expat.ParserCreate().Parse(body, True)
    except expat.ExpatError as exc:
        return f"not well-formed XML: {exc}"
    return ""


def consistency(out: Path, files: dict[str, bytes]) -> list[str]:
    """Every manifest entry's bytes (and encodings) carry its ETag; nothing else is there.

    ``files`` is :func:`tree` of ``out``, read once by the caller.
    """
    errors = []
    manifest = load_manifest(out)
    expected = set()
    for path, entry in manifest["files"].items():
        variants = {"": entry["etag"]} | {ENCODINGS[name]: info["etag"]
                                          for name, info in entry.get("encodings", {}).items()}
        for suffix, etag in variants.items():
            expected.add(path + suffix)
            body = files.get(path + suffix)
            if body is None:
                errors.append(f"{path + suffix}: listed, missing")
            elif etag_of(body) != etag:
                errors.append(f"{path + suffix}: bytes do not match the manifest's ETag")
    errors += [f"{path}: on disk, not in the manifest" for path in sorted(set(files) - expected)]
    errors += [f"{p}: temp file left" for p in out.rglob("*.tmp")]
    return errors


# -- a disk that fills up ----------------------------------------------------------------------

@contextlib.contextmanager
def tiny_disk(folder: Path, size: str) -> Iterator[bool]:
    """A tmpfs of ``size`` mounted at ``folder``; yields False where mounting is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                  str(folder)], capture_output=True).returncode == 0
    except OSError:  # no mount command
        mounted = False
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave: int) -> Path:
    """A filler file that leaves about ``leave`` bytes free on ``folder``'s file system."""
    stats = os.statvfs(folder)
    filler = folder / "filler"
    with filler.open("wb") as handle:
        handle.truncate(0)
        remaining = stats.f_bavail * stats.f_frsize - leave
        while remaining > 0:
            chunk = min(remaining, 1 << 20)
            handle.write(b"\0" * chunk)
            remaining -= chunk
    return filler


# -- the command line and a real server -------------------------------------------------------

def cli(site: Path, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """``feedserver ARGS`` in the site folder, as a person runs it."""
    return subprocess.run([sys.executable, "-m", "feedserver", *args], cwd=site, text=True,
                          capture_output=True, timeout=120,
                          env={**clean_env(), **(env or {})})


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}


def health(settings: Settings) -> dict[str, Any]:
    response = create_app({"FEEDSERVER_SETTINGS": settings}).test_client().get("/healthz")
    assert response.status_code == 200
    return response.get_json()


@dataclass
class Served:
    port: int
    log: Path
    seeds: Path

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read(), response.getheader("ETag") or ""
        finally:
            conn.close()

    def health(self) -> dict[str, Any]:
        return json.loads(self.get("/healthz")[1])

    def titles(self) -> set[str]:
        return {item["title"] for item in json.loads(self.get("/feed.json")[1])["items"]}


@contextlib.contextmanager
def serving(site: Path, interval: int = 1) -> Iterator[Served]:
    """``feedserver serve --workers 2`` on the site (its own config.toml), stopped by PID."""
    port = free_port()
    env = {**clean_env(), "FEEDSERVER_BASE_URL": f"http://127.0.0.1:{port}/",
           "FEEDSERVER_REFRESH_INTERVAL": str(interval)}
    log = site / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "feedserver", "serve", "--port",
                                    str(port), "--workers", "2"], cwd=site, env=env,
                                   stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}/", process, log)
        yield Served(port, log, site / "seeds")
    finally:
        stop(process)


def until(check: Callable[[], object], timeout: float, what: str, log: Path) -> None:
    """Poll ``check`` until it is truthy; fail with the server log's tail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout}s:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.1)

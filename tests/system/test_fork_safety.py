"""A process that forks from one thread imports nothing in its other threads.

A scheduler forks from its job thread: the cold build's process
(:mod:`feedserver.schedule.apart`) and a build's parse and render workers.  If another
thread of the same process is importing a module at that moment, the child starts with
that module's import lock held by a thread it does not have, and the child's first import
of the module waits forever.  That happened: ``watch``'s main thread imported the metrics
library (which imports ``mimetypes``, which tries ``winreg``) just after starting the
scheduler, the cold build forked meanwhile, and its process hung at ``import winreg``
(through ``dateutil``) with nothing published, in about one start in thirteen on a
loaded machine.

Whether a given start hangs is a race, so this checks the rule that rules it out, on every
start: a test-only ``sitecustomize`` (on the server's ``PYTHONPATH``) records, through
Python's audit hooks, every fork and every module import made while a process has more
than one thread, with the threads alive then.  No thread may import while another thread
of its process that forks is alive.
``watch`` and ``serve`` run a cold build, a pooled parse of a batch of new files and an
edit, each publish pinging an external WebSub hub, then stop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import feedparser
import pytest

from tests.faultkit import until
from tests.system.test_lifecycle import _env as server_env
from tests.system.test_serve_e2e import free_port, wait_ready
from tests.websub_kit import TestServer

# Serial: real servers whose builds fork pools of workers. It times nothing, so it runs in
# the `faults` group (test_faults.py) and the two serial groups take about as long.
pytestmark = [pytest.mark.serial, pytest.mark.xdist_group("faults")]

BATCH = 70  # new files: more than gather.PARALLEL_MIN, so the parse runs in a worker pool

SITECUSTOMIZE = '''
import json, os, sys, threading
_out = os.environ.get("FEEDSERVER_TEST_AUDIT")

def _record(**fields):
    with open(_out, "a", encoding="utf-8") as f:
        f.write(json.dumps(fields) + "\\n")

def _hook(event, args):
    if event == "os.fork":
        _record(kind="fork", pid=os.getpid(), thread=threading.get_ident())
    elif event == "import" and args[0] not in sys.modules and threading.active_count() > 1:
        _record(kind="import", pid=os.getpid(), thread=threading.get_ident(),
                name=threading.current_thread().name, module=args[0],
                alive=[t.ident for t in threading.enumerate()])

if _out:
    sys.addaudithook(_hook)
'''


def _article(name: str, title: str) -> str:
    return (f'+++\ntitle = "{title}"\ndate = 2026-11-26T20:00:00Z\n'
            f'+++\n\nText of {title} ({name}).\n')


def _start(site: Path, command: str, hub: str) -> tuple[subprocess.Popen[bytes], Path, str]:
    hook = site / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = server_env(site, url, slow=False)  # the site's folders, none of ours
    env.update(FEEDSERVER_REFRESH_INTERVAL="2",
               FEEDSERVER_HUBS=f"builtin,{hub}",  # every publish pings it
               PYTHONPATH=str(hook), FEEDSERVER_TEST_AUDIT=str(site / "audit.jsonl"))
    args = ["serve", "--port", str(port), "--workers", "1"] if command == "serve" else [command]
    log = site / f"{command}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "feedserver", *args], cwd=site,
                                   env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return process, log, url


def _titles(site: Path) -> set[str]:
    return {entry.title for entry in feedparser.parse(site / "public" / "feed.rss").entries}


def _offending_imports(audit: Path) -> list[str]:
    """Imports made while another thread of the same process was alive that forks (then,
    before or after)."""
    forkers: dict[int, set[int]] = defaultdict(set)
    imports = []
    for line in audit.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event["kind"] == "fork":
            forkers[event["pid"]].add(event["thread"])
        else:
            imports.append(event)
    return sorted({f"{e['module']} (thread {e['name']!r})" for e in imports
                   if forkers[e["pid"]].intersection(e["alive"]) - {e["thread"]}})


@pytest.mark.parametrize("command", ["watch", "serve"])
def test_only_forking_threads_import(site_dir: Path, command: str) -> None:
    with TestServer() as hub:
        _publish_three_times(site_dir, command, hub)
        assert hub.recorder.posts(), "no ping reached the hub: the check saw no delivery"
    offending = _offending_imports(site_dir / "audit.jsonl")
    assert not offending, "imported beside a forking thread:\n" + "\n".join(offending)


def _publish_three_times(site_dir: Path, command: str, hub: TestServer) -> None:
    """A cold build, a pooled parse of a batch of new files and an edit, then a stop."""
    process, log, url = _start(site_dir, command, hub.url + "hub")
    try:
        if command == "serve":
            wait_ready(url, process, log)
        until(lambda: " run 1 (" in log.read_text(errors="replace"), 120, "first run", log)
        batch = site_dir / "batch"  # moved in whole: one build parses them all in a pool
        batch.mkdir()
        for number in range(BATCH):
            path = batch / f"batch-{number:03d}.md"
            path.write_text(_article(f"b{number}", f"Batch {number}"), encoding="utf-8")
            os.utime(path, (time.time() - 60, time.time() - 60))  # settled: none held back
        batch.rename(site_dir / "seeds" / "batch")
        until(lambda: "Batch 7" in _titles(site_dir), 120, "the batch published", log)
        edited = site_dir / "seeds" / "batch" / "batch-007.md"
        edited.write_text(_article("b7", "Batch seven, edited"), encoding="utf-8")
        until(lambda: "Batch seven, edited" in _titles(site_dir), 60, "the edit published", log)
        until(hub.recorder.posts, 30, "a ping at the hub", log)
        forks = (site_dir / "audit.jsonl").read_text(encoding="utf-8").count('"fork"')
        assert forks >= 2, "the builds forked no workers: the check would see nothing"
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # its own session: only what it started
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

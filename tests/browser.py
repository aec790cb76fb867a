"""Harness for tests in a real browser: Debian's Chromium driven by Playwright, real servers.

Why these parts: Playwright's Python package drives the system browser through
``executable_path`` (it never needs its own browser download) and reports what
a test must see: console messages, uncaught page errors and dialogs (an
``alert`` from injected markup).  feedserver runs as it does in production
(``feedserver serve``: granian, in a subprocess stopped by its PID); host pages
come from a plain ``http.server`` on another port, so the embeds are tested
cross-origin, as other sites use them.

Tests skip (with the reason) only when ``/usr/bin/chromium`` is absent; CI
installs it from ``.ci/run``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# Flags for this machine (containers as root, no GPU, no network beyond 127.0.0.1).
# Playwright adds --headless itself; --user-data-dir comes from the persistent context.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 15_000


def missing_reason() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return (f"{CHROMIUM} is not installed (Debian package 'chromium'; "
                "CI installs it in .ci/run)")
    return None


@dataclass
class Watch:
    """What one page said: console errors, uncaught exceptions, dialogs."""

    errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> Any:
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(
            f"{msg.text} @ {msg.location.get('url', '')}"))
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("dialog", self._dialog)
        return page

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


def _browser_env() -> dict[str, str]:
    """The browser is a tool here, not the system under test: it runs on the real clock
    even when the suite runs under libfaketime (Chromium hangs with it preloaded)."""
    return {k: v for k, v in os.environ.items()
            if k != "LD_PRELOAD" and not k.startswith("FAKETIME")}


@contextmanager
def chromium() -> Iterator[Any]:
    """A persistent Chromium context on a fresh user-data-dir, closed afterwards."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="feedserver-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), headless=True, args=FLAGS,
                viewport={"width": 1000, "height": 800}, locale="en-GB",
                timezone_id="UTC", service_workers="block", env=_browser_env())
            context.set_default_timeout(TIMEOUT_MS)
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_site(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on its own 127.0.0.1 port (a different origin); yield its URL."""
    handler = partial(_Quiet, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"feedserver serve exited: {log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"feedserver serve did not answer: {log.read_text(errors='replace')}")


@contextmanager
def feedserver(config: Path, port: int, args: tuple[str, ...] = (),
               preexec_fn: Callable[[], None] | None = None) -> Iterator[str]:
    """``feedserver serve`` (granian, one worker) on 127.0.0.1:port; stopped by its PID.
    ``args``: more of serve's options; ``preexec_fn``: run in its process before it starts
    (a resource limit)."""
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "FEEDSERVER_BASE_URL": url}
    log = config.parent / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "feedserver", "serve", "--config", str(config),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1", *args],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=config.parent,
            preexec_fn=preexec_fn)
    try:
        _wait_healthy(url, process, log)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def fetch(url: str, accept: str = "*/*") -> tuple[str, bytes]:
    """(Content-Type, body) as a feed reader would get them."""
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Content-Type"], response.read()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page PNG into test-artifacts/ (not committed) and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

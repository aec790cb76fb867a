"""The delivering side of the hub: verify intents, push feeds, ping external hubs.

Runs in the one process that runs the scheduler (:class:`Deliverer`, started by
:mod:`feedserver.schedule.scheduler`), never in a web worker.  A thread looks at
the store a few times a second (web workers add verification requests from
other processes) and at once when a publish queued something
(:meth:`Deliverer.wake`), and hands each due job to a small pool of threads:

- at most :data:`WORKERS` requests at a time, at most one per callback (or hub),
  and each bounded by :data:`TIMEOUT` seconds in all, so one slow or dead
  subscriber occupies one thread for a while and never holds up the others;
- a failed push or ping (no answer, or not a 2xx) is tried again after 2 s, then
  twice as long each time (capped at :data:`BACKOFF_CAP`), for
  ``hub_retry_seconds``; then it is dropped with a log line.  The attempt count
  and the next try are rows in SQLite, so a restart does not lose them;
- a subscriber answering ``410 Gone`` is unsubscribed.

Each push is the feed's current body as published, with its media type, the
``Link`` headers (``rel="hub"``, ``rel="self"``) and, when the subscription has a
secret, ``X-Hub-Signature: sha256=<HMAC of the body>`` (WebSub §7, §8).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from feedserver.config import Settings
from feedserver.core.layout import MANIFEST, is_archive
from feedserver.metrics import instruments
from feedserver.publish.manifest import feed_format, load_manifest
from feedserver.websub import addresses, ping
from feedserver.websub.store import PING, HubStore, Intent, Job

log = logging.getLogger(__name__)

WORKERS = 8  # requests in flight at once (daemon threads)
TIMEOUT = 10.0  # seconds one request may take in all
LOOK = 0.25  # seconds between two looks at the store
BACKOFF_FIRST = 2.0
BACKOFF_CAP = 900.0
EXPIRE_EVERY = 60.0  # seconds between two sweeps of expired leases


def backoff(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones (1, 2, ...)."""
    return min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** max(0, attempts - 1))


def signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def feed_paths(out_dir: Path, paths: list[str]) -> list[str]:
    """The feeds among the published ``paths`` (the manifest says which files are feeds)."""
    files = load_manifest(out_dir).get("files", {})
    return [p for p in paths if isinstance(files.get(p), dict) and feed_format(files[p])
            and not is_archive(p)]  # archive pages (RFC 5005): history, not subscribed to


def queue_published(settings: Settings, store: HubStore, paths: list[str]) -> int:
    """Queue a push to each subscriber (and a ping to each external hub) of every feed
    among ``paths``, the files a publish changed; how many jobs were queued.  Only
    queued: the process that runs the scheduler sends them."""
    topics = [settings.base_url + p for p in feed_paths(Path(settings.output_dir), paths)]
    if not topics:
        return 0
    now = time.time()
    queued = 0
    if settings.builtin_hub and store.exists():  # no store yet: no subscriber yet
        queued += store.enqueue_pushes(topics, now)
    return queued + ping.enqueue(store, settings, topics, now)


class Deliverer:
    """Verification, pushes and pings of one deployment, in background threads."""

    def __init__(self, settings: Settings, store: HubStore | None = None) -> None:
        self.settings = settings
        self.store = store or HubStore(settings.state_dir)
        self.out_dir = Path(settings.output_dir)
        self.own = addresses.own_origins(settings.base_url)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._busy: set[str] = set()  # targets with a request in flight
        self._lock = threading.Lock()
        # Daemon threads, not a ThreadPoolExecutor: the interpreter joins an executor's
        # threads at exit, so a request in flight would hold a stopping scheduler back.
        self._work: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._thread: threading.Thread | None = None
        self._swept = 0.0
        self._manifest: tuple[tuple[int, int, int] | None, dict[str, Any]] = (None, {})

    # --- the publisher's side ---

    def published(self, paths: list[str]) -> int:
        """Queue (and start at once) the notifications of one publish."""
        queued = queue_published(self.settings, self.store, paths)
        if queued:
            self.wake()
        return queued

    def wake(self) -> None:
        self._wake.set()

    # --- the thread ---

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="feedserver-websub", daemon=True)
        self._thread.start()
        for n in range(WORKERS):
            worker = threading.Thread(target=self._serve, name=f"feedserver-websub-{n}",
                                      daemon=True)
            worker.start()
            self._workers.append(worker)
        log.info("websub: delivering (hubs: %s)", ", ".join(self.settings.hub_urls) or "none")

    def stop(self) -> None:
        """Stop looking; requests in flight are left to their timeout (the queue keeps them)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for _ in self._workers:
            self._work.put(None)

    def _serve(self) -> None:
        while (task := self._work.get()) is not None:
            task()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step(time.time())
            except Exception:  # a locked or broken store must not end delivery for good
                log.exception("websub: delivery step failed; trying again")
                self._stop.wait(5)
            self._wake.wait(LOOK)
            self._wake.clear()

    def step(self, now: float) -> None:
        """Start what is due: verifications, then pushes and pings."""
        if now - self._swept >= EXPIRE_EVERY:
            self._swept = now
            expired = self.store.expire(now)
            if expired:
                log.info("websub: %d subscriptions expired", expired)
        intents, when = self.store.pending()
        if intents:
            for intent in self.store.take_intents():  # taken: each must run, never skipped
                self._submit(f"intent {intent.id}", self.verify, intent)
        if when is not None and when <= now:
            for job in self.store.due(now):
                self._submit(job.target, self.run_job, job)

    def _submit(self, target: str, work: Callable[[Any], object], item: object) -> None:
        with self._lock:
            if target in self._busy:
                return  # its turn comes when the one in flight is done
            self._busy.add(target)

        def run() -> None:
            try:
                work(item)
            except Exception:
                log.exception("websub: unexpected failure with %s", target)
            finally:
                with self._lock:
                    self._busy.discard(target)
                self._wake.set()

        self._work.put(run)

    def _files(self) -> dict[str, Any]:
        """The manifest's files, read again only when the manifest changed (a publish)."""
        try:
            st = (self.out_dir / MANIFEST).stat()
            key: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            key = None
        with self._lock:
            if key is None or key != self._manifest[0]:
                files = load_manifest(self.out_dir).get("files", {})
                self._manifest = (key, files if isinstance(files, dict) else {})
            return self._manifest[1]

    # --- one request each ---

    def verify(self, intent: Intent) -> bool:
        """Verification of intent (§5.3): the callback must echo ``hub.challenge``."""
        challenge = secrets.token_urlsafe(24)
        query = {"hub.mode": intent.mode, "hub.topic": intent.topic,
                 "hub.challenge": challenge}
        if intent.mode == "subscribe":
            query["hub.lease_seconds"] = str(intent.lease_seconds)
        url = intent.callback + ("&" if "?" in intent.callback else "?") + urlencode(query)
        try:
            target = addresses.check(url, self.settings.hub_allow_private_callbacks, self.own)
            status, body = addresses.call(target, "GET", b"", {}, TIMEOUT)
        except (addresses.Refused, OSError) as exc:
            log.info("websub: %s of %s to %s not verified: %s", intent.mode, intent.callback,
                     intent.topic, exc)
            return False
        if not 200 <= status < 300 or body.strip() != challenge.encode():
            log.info("websub: %s of %s to %s not confirmed (HTTP %d)", intent.mode,
                     intent.callback, intent.topic, status)
            return False
        if intent.mode == "subscribe":
            self.store.subscribe(intent, time.time())
        else:
            self.store.unsubscribe(intent.topic, intent.callback)
        log.info("websub: %sd %s to %s", intent.mode, intent.callback, intent.topic)
        return True

    def run_job(self, job: Job) -> None:
        try:
            error = ping.send(job, self.settings) if job.kind == PING else self.push(job)
        except Exception as exc:  # a surprise must not retry at once, four times a second
            log.exception("websub: %s of %s to %s failed unexpectedly", job.kind, job.topic,
                          job.target)
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            instruments.get().deliveries.labels(job.kind, "ok").inc()
            self.store.done(job)
            if job.kind == PING:
                self.store.note(ping.note_key(job.target), None, time.time())
            return
        now = time.time()
        if job.kind == PING:
            self.store.note(ping.note_key(job.target), error, now)
        wait = backoff(job.attempts + 1)
        if now + wait - job.first_at > self.settings.hub_retry_seconds:
            log.warning("websub: %s of %s to %s dropped after %d attempts: %s", job.kind,
                        job.topic, job.target, job.attempts + 1, error)
            self.store.done(job)
            instruments.get().deliveries.labels(job.kind, "dropped").inc()
            return
        instruments.get().deliveries.labels(job.kind, "retry").inc()
        log.warning("websub: %s of %s to %s failed (attempt %d, next in %.0fs): %s", job.kind,
                    job.topic, job.target, job.attempts + 1, wait, error)
        self.store.retry(job, now + wait, error)

    def push(self, job: Job) -> str | None:
        """POST the topic's current body to one subscriber; None when it took it."""
        now = time.time()
        sub = self.store.subscription(job.topic, job.target, now)
        base = self.settings.base_url
        path = job.topic[len(base):] if job.topic.startswith(base) else ""
        entry = self._files().get(path)
        if sub is None or not isinstance(entry, dict):
            return None  # unsubscribed, expired, or the feed is gone: nothing to deliver
        try:
            body = (self.out_dir / path).read_bytes()
        except OSError:
            return None
        headers = {"Content-Type": str(entry.get("media_type") or "application/octet-stream"),
                   "Link": ", ".join([*(f'<{hub}>; rel="hub"' for hub in
                                        self.settings.hub_urls),
                                      f'<{job.topic}>; rel="self"'])}
        if sub.secret:
            headers["X-Hub-Signature"] = signature(sub.secret, body)
        try:
            target = addresses.check(job.target, self.settings.hub_allow_private_callbacks,
                                     self.own)
            status, _ = addresses.call(target, "POST", body, headers, TIMEOUT)
        except addresses.Refused as exc:
            log.warning("websub: %s refused now (%s); unsubscribed", job.target, exc)
            self.store.unsubscribe(job.topic, job.target)
            return None
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"
        if status == 410:
            log.info("websub: %s answered 410 Gone; unsubscribed from %s", job.target,
                     job.topic)
            self.store.unsubscribe(job.topic, job.target)
            return None
        return None if 200 <= status < 300 else f"HTTP {status}"

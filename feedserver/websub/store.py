"""The hub's durable state: subscriptions, pending verifications, the delivery queue.

One SQLite file in the state folder (``<state_dir>/websub.sqlite3``, WAL), shared
by the processes of a deployment: web workers add verification requests
(:meth:`HubStore.request_intent`), and only the process that runs the scheduler
verifies, delivers and pings (:mod:`feedserver.websub.deliver`).  Everything
that must survive a restart is a row: a delivery not yet acknowledged stays in
``queue`` with its attempt count and the time of its next try, so a subscriber
that answered 500 before a restart is tried again after it.

A queue row names the subscriber (or external hub) and the topic, not a body:
the body is read from the output folder when it is sent, so a retry carries the
newest feed and a subscriber that is down for a day does not pile up copies.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FILENAME = "websub.sqlite3"
PUSH = "push"  # a feed body to a subscriber's callback
PING = "ping"  # "this topic changed" to an external hub
RATE_WINDOW = 60.0  # seconds: hub_rate_limit counts requests over this window
FORK_WAIT = 30.0  # seconds a fork waits at most for the store's calls to end

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    topic TEXT NOT NULL, callback TEXT NOT NULL, secret TEXT NOT NULL DEFAULT '',
    lease_seconds INTEGER NOT NULL, expires_at REAL NOT NULL, since REAL NOT NULL,
    PRIMARY KEY (topic, callback));
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY, mode TEXT NOT NULL, topic TEXT NOT NULL, callback TEXT NOT NULL,
    secret TEXT NOT NULL DEFAULT '', lease_seconds INTEGER NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL, topic TEXT NOT NULL,
    first_at REAL NOT NULL, next_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '', UNIQUE (kind, target, topic));
CREATE INDEX IF NOT EXISTS queue_due ON queue (next_at);
CREATE TABLE IF NOT EXISTS requests (client TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS notes (key TEXT PRIMARY KEY, value TEXT NOT NULL, at REAL NOT NULL);
"""


@dataclass(frozen=True)
class Subscription:
    topic: str
    callback: str
    secret: str
    lease_seconds: int
    expires_at: float


@dataclass(frozen=True)
class Intent:
    """A subscription or unsubscription request waiting for its verification."""

    id: int
    mode: str
    topic: str
    callback: str
    secret: str
    lease_seconds: int


@dataclass(frozen=True)
class Job:
    """One queued push or ping."""

    id: int
    kind: str
    target: str
    topic: str
    first_at: float
    attempts: int


class ForkGate:
    """Keeps a fork out of the store's calls: a fork in this process waits until no other
    thread is inside one, and no call starts or ends until the fork is done.

    SQLite holds process-wide mutexes inside a call (its allocator's, its open-file
    list's).  A child forked meanwhile starts with one held by a thread it does not have,
    and its first SQLite call waits forever.  The scheduler's process forks from its job
    thread (the cold build's process, a build's workers, which open the ledger) while its
    delivery thread reads this store four times a second
    (tests/unit/test_websub_store_fork.py).  Calls never wait for one another: a fork
    waits for the calls under way (at most :data:`FORK_WAIT`, so a stuck store cannot hold
    builds off for good), and a call that would start meanwhile waits for the fork."""

    def __init__(self) -> None:
        self._state = threading.Condition(threading.Lock())
        self._inside: dict[int, int] = {}  # thread -> calls it is inside
        self._forks = 0  # forks waiting: no new call starts meanwhile (else a busy store
        # would hold a fork off for good)

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        """Around each use of SQLite, connection to close."""
        me = threading.get_ident()
        with self._state:
            self._state.wait_for(lambda: not self._forks or me in self._inside)
            self._inside[me] = self._inside.get(me, 0) + 1
        try:
            yield
        finally:
            with self._state:
                self._inside[me] -= 1
                if not self._inside[me]:
                    del self._inside[me]
                self._state.notify_all()

    def before_fork(self) -> None:
        """Wait for other threads' calls to end, then hold the gate through the fork (a
        fork from inside a call of this thread's own does not wait for itself)."""
        me = threading.get_ident()
        self._state.acquire()
        self._forks += 1
        self._state.wait_for(lambda: not set(self._inside) - {me}, FORK_WAIT)
        self._forks -= 1

    def after_fork_in_parent(self) -> None:
        self._state.notify_all()  # the calls that waited for the fork
        self._state.release()

    def after_fork_in_child(self) -> None:
        """The child has only the forking thread: only its own calls are inside."""
        me = threading.get_ident()
        self._inside = {me: self._inside[me]} if me in self._inside else {}
        self._state.release()


FORKS = ForkGate()
os.register_at_fork(before=FORKS.before_fork, after_in_parent=FORKS.after_fork_in_parent,
                    after_in_child=FORKS.after_fork_in_child)


class HubStore:
    """The SQLite file; one short connection per call, so any thread or process may use it."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / FILENAME
        self._ready = False

    @contextlib.contextmanager
    def _db(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        with FORKS.call():
            yield from self._open(write)

    def _open(self, write: bool) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            if not self._ready:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SCHEMA)
                self._ready = True
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def exists(self) -> bool:
        return self.path.is_file()

    # --- requests (web workers) ---

    def allow_request(self, client: str, limit: int, now: float) -> bool:
        """Count one subscription request of ``client``; False past ``limit`` per minute."""
        with self._db() as db:
            db.execute("DELETE FROM requests WHERE at < ?", (now - RATE_WINDOW,))
            (count,) = db.execute("SELECT count(*) FROM requests WHERE client = ?",
                                  (client,)).fetchone()
            if count >= limit:
                return False
            db.execute("INSERT INTO requests VALUES (?, ?)", (client, now))
            return True

    def request_intent(self, mode: str, topic: str, callback: str, secret: str,
                       lease_seconds: int, now: float) -> None:
        """Record a request; the delivering process verifies it with the callback."""
        with self._db() as db:
            db.execute("DELETE FROM intents WHERE topic = ? AND callback = ?", (topic, callback))
            db.execute("INSERT INTO intents (mode, topic, callback, secret, lease_seconds, at) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (mode, topic, callback, secret,
                                                     lease_seconds, now))

    # --- verification (the delivering process) ---

    def take_intents(self, limit: int = 50) -> list[Intent]:
        """The oldest pending requests, removed from the table (verified once each)."""
        with self._db() as db:
            rows = db.execute("SELECT id, mode, topic, callback, secret, lease_seconds "
                              "FROM intents ORDER BY id LIMIT ?", (limit,)).fetchall()
            db.executemany("DELETE FROM intents WHERE id = ?", [(r[0],) for r in rows])
        return [Intent(*row) for row in rows]

    def subscribe(self, intent: Intent, now: float) -> None:
        """Activate (or renew: a new lease and secret) a verified subscription."""
        with self._db() as db:
            db.execute("INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?, ?) "
                       "ON CONFLICT (topic, callback) DO UPDATE SET secret = excluded.secret, "
                       "lease_seconds = excluded.lease_seconds, "
                       "expires_at = excluded.expires_at",
                       (intent.topic, intent.callback, intent.secret, intent.lease_seconds,
                        now + intent.lease_seconds, now))

    def unsubscribe(self, topic: str, callback: str) -> None:
        """Remove a subscription and whatever was still queued for it."""
        with self._db() as db:
            db.execute("DELETE FROM subscriptions WHERE topic = ? AND callback = ?",
                       (topic, callback))
            db.execute("DELETE FROM queue WHERE kind = ? AND target = ? AND topic = ?",
                       (PUSH, callback, topic))

    def subscription(self, topic: str, callback: str, now: float) -> Subscription | None:
        """The active subscription, or None (never made, removed, or its lease ran out)."""
        with self._db(write=False) as db:
            row = db.execute("SELECT topic, callback, secret, lease_seconds, expires_at "
                             "FROM subscriptions WHERE topic = ? AND callback = ? "
                             "AND expires_at > ?", (topic, callback, now)).fetchone()
        return Subscription(*row) if row else None

    def expire(self, now: float) -> int:
        """Drop subscriptions whose lease ran out; how many."""
        with self._db() as db:
            return db.execute("DELETE FROM subscriptions WHERE expires_at <= ?",
                              (now,)).rowcount

    # --- the queue ---

    def enqueue_pushes(self, topics: list[str], now: float) -> int:
        """A push to every active subscriber of each topic; one pending row per pair."""
        with self._db() as db:
            before = db.total_changes
            for topic in topics:
                db.execute("INSERT OR IGNORE INTO queue (kind, target, topic, first_at, next_at) "
                           "SELECT ?, callback, topic, ?, ? FROM subscriptions "
                           "WHERE topic = ? AND expires_at > ?", (PUSH, now, now, topic, now))
            return db.total_changes - before

    def enqueue_pings(self, hubs: tuple[str, ...], topics: list[str], now: float) -> int:
        """One ping per external hub and changed topic."""
        with self._db() as db:
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO queue (kind, target, topic, first_at, next_at) "
                           "VALUES (?, ?, ?, ?, ?)",
                           [(PING, hub, topic, now, now) for hub in hubs for topic in topics])
            return db.total_changes - before

    def due(self, now: float, limit: int = 100) -> list[Job]:
        with self._db(write=False) as db:
            rows = db.execute("SELECT id, kind, target, topic, first_at, attempts FROM queue "
                              "WHERE next_at <= ? ORDER BY next_at LIMIT ?",
                              (now, limit)).fetchall()
        return [Job(*row) for row in rows]

    def pending(self) -> tuple[int, float | None]:
        """(requests waiting for verification, when the next queued job is due): one
        cheap read the delivering process makes a few times a second."""
        with self._db(write=False) as db:
            intents, when = db.execute("SELECT (SELECT count(*) FROM intents), "
                                       "(SELECT min(next_at) FROM queue)").fetchone()
        return intents, when

    def done(self, job: Job) -> None:
        with self._db() as db:
            db.execute("DELETE FROM queue WHERE id = ?", (job.id,))

    def retry(self, job: Job, next_at: float, error: str) -> None:
        with self._db() as db:
            db.execute("UPDATE queue SET attempts = attempts + 1, next_at = ?, last_error = ? "
                       "WHERE id = ?", (next_at, error[:300], job.id))

    # --- notes and counts (the operator: CLI, /healthz) ---

    def note(self, key: str, value: str | None, now: float) -> None:
        """Set (or clear, with None) a fact /healthz shows, such as a failing hub."""
        with self._db() as db:
            if value is None:
                db.execute("DELETE FROM notes WHERE key = ?", (key,))
            else:
                db.execute("INSERT OR REPLACE INTO notes VALUES (?, ?, ?)", (key, value, now))

    def notes(self) -> dict[str, str]:
        with self._db(write=False) as db:
            return dict(db.execute("SELECT key, value FROM notes").fetchall())

    def counts(self, now: float) -> dict[str, int]:
        """Totals for /healthz: active subscriptions, queued pushes and pings, failing ones."""
        with self._db(write=False) as db:
            (subs,) = db.execute("SELECT count(*) FROM subscriptions WHERE expires_at > ?",
                                 (now,)).fetchone()
            queued = dict(db.execute("SELECT kind, count(*) FROM queue GROUP BY kind"))
            (failing,) = db.execute("SELECT count(*) FROM queue WHERE attempts > 0").fetchone()
        return {"subscribers": subs, "queued_pushes": queued.get(PUSH, 0),
                "queued_pings": queued.get(PING, 0), "failing": failing}

    def per_topic(self, now: float) -> dict[str, int]:
        """Active subscribers by topic URL (the CLI only: never shown to the public)."""
        with self._db(write=False) as db:
            return dict(db.execute("SELECT topic, count(*) FROM subscriptions "
                                   "WHERE expires_at > ? GROUP BY topic ORDER BY topic",
                                   (now,)).fetchall())

    def queued(self) -> list[tuple[str, str, str, int, float, str]]:
        """Every queued push and ping: kind, target, topic, attempts, next try, last error."""
        with self._db(write=False) as db:
            return db.execute("SELECT kind, target, topic, attempts, next_at, last_error "
                              "FROM queue ORDER BY next_at").fetchall()


def now() -> float:
    """The wall clock (leases and queue times are stored as Unix seconds)."""
    return time.time()

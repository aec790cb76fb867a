"""The poll budget: a client that fetches a feed in full far more often than it changes.

A feed says how long it stays fresh (``Cache-Control: max-age``, RSS ``ttl``).
A client may make ``poll_budget`` full (unconditional) GETs of one channel's
feeds per max-age; past that it gets ``429 Too Many Requests`` with
``Retry-After``.  Conditional requests are answered 304 before this is asked,
so a polite poller is never refused, and HEAD and HTML previews are never counted.

The count is GCRA (the generic cell rate algorithm: a token bucket kept as one
number per key, the "theoretical arrival time"), so it costs one row per
(client, channel) and one SQL statement per full feed request.  The rows live
in SQLite in the state folder (WAL, no fsync: a lost update after a crash only
forgives a client), shared by every web worker, so the budget holds
whatever worker a request lands on; a per-worker count divided by the number of
workers would punish a keep-alive client that always meets the same worker and
let one that meets them all through.  Any SQLite failure lets the request
through: politeness must never take feeds down.

Which address counts: the peer's, or, when the peer is one of
``trusted_proxies``, the nearest address in ``X-Forwarded-For`` that is not a
trusted proxy.  IPv6 clients count per /64 (one subscriber's whole network).
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Any

from feedserver.config import Settings

log = logging.getLogger(__name__)
FILENAME = "polling.sqlite3"
PRUNE_EVERY = 1000  # spends between removals of rows whose budget is whole again
Networks = tuple[IPv4Network | IPv6Network, ...]

_SPEND = ("INSERT INTO budget(key, tat) VALUES (:key, :now + :step) "
          "ON CONFLICT(key) DO UPDATE SET tat = max(tat, :now) + :step "
          "WHERE max(tat, :now) + :step - :now <= :window RETURNING tat")


def _grouped(address: str) -> str:
    """An IPv6 address as its /64 (one subscriber's network); anything else as it is."""
    if ":" not in address:
        return address
    try:
        return str(ip_network(f"{address}/64", strict=False))
    except ValueError:
        return address


def client_address(environ: Mapping[str, Any], trusted: Networks) -> str:
    """The address a request counts for: X-Forwarded-For only from a trusted proxy.

    The header is read right to left (each proxy appends the address it got the
    request from) and the first hop that is not itself trusted is the client;
    a garbled entry stops the walk at the proxy that wrote it.
    """
    peer = str(environ.get("REMOTE_ADDR") or "")
    if not trusted or not _within(peer, trusted):
        return _grouped(peer)
    client = peer
    for hop in reversed(str(environ.get("HTTP_X_FORWARDED_FOR") or "").split(",")):
        hop = hop.strip()
        if not hop or not _valid(hop):
            break
        client = hop
        if not _within(hop, trusted):
            break
    return _grouped(client)


def _valid(address: str) -> bool:
    try:
        ip_address(address)
    except ValueError:
        return False
    return True


def _within(address: str, networks: Networks) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


class PollBudget:
    """Full feed requests per (client, channel), shared through one SQLite file."""

    def __init__(self, path: Path, budget: int, trusted: Networks = (),
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.budget = budget
        self.trusted = trusted
        self.clock = clock
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        self._spent = 0
        self._lock = threading.Lock()
        self._failed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> PollBudget | None:
        """The budget the settings ask for; None when ``poll_budget`` is 0 (off)."""
        if settings.poll_budget <= 0:
            return None
        return cls(Path(settings.state_dir) / FILENAME, settings.poll_budget,
                   settings.proxy_networks)

    def _connection(self) -> sqlite3.Connection:
        """This process's connection, opened on first use (never across a fork)."""
        if self._db is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=2.0, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.execute("CREATE TABLE IF NOT EXISTS budget (key TEXT PRIMARY KEY, "
                       "tat REAL NOT NULL) WITHOUT ROWID")
            self._db, self._pid = db, os.getpid()
        return self._db

    def spend(self, environ: Mapping[str, Any], channel: str, max_age: int) -> int:
        """Count one full request; 0 if it may be answered, else seconds to wait."""
        key = f"{client_address(environ, self.trusted)}\x1f{channel}"
        window = float(max(1, max_age))
        now = self.clock()
        values = {"key": key, "now": now, "step": window / self.budget, "window": window}
        try:
            with self._lock:
                db = self._connection()
                if db.execute(_SPEND, values).fetchone() is not None:
                    self._prune(db, now)
                    return 0
                row = db.execute("SELECT tat FROM budget WHERE key = ?", (key,)).fetchone()
        except (sqlite3.Error, OSError) as exc:
            if not self._failed:
                log.warning("poll budget off for now: %s: %s", self.path, exc)
                self._failed = True
            return 0
        if row is None:
            return 0
        return max(1, math.ceil(row[0] + values["step"] - window - now))

    def _prune(self, db: sqlite3.Connection, now: float) -> None:
        """Now and then forget clients whose whole budget is back (bounded table)."""
        self._spent += 1
        if self._spent % PRUNE_EVERY == 0:
            db.execute("DELETE FROM budget WHERE tat < ?", (now,))


def refusal(max_age: int, retry_after: int) -> bytes:
    """The short plain explanation a refused client gets with its 429."""
    return (f"429 Too Many Requests: this feed was fetched in full too often from your "
            f"address. It stays fresh for {max_age} seconds (Cache-Control max-age); "
            f"try again in {retry_after} seconds. Requests that send the ETag "
            f"(If-None-Match) or Last-Modified (If-Modified-Since) you were given are "
            f"never refused.\n").encode()

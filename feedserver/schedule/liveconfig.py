"""The configuration of a long-running scheduler: re-read when it changes, last good kept.

``feedserver serve`` and ``feedserver watch`` run for weeks; people edit
``config.toml`` meanwhile (a new topic rule, a debris pattern).  The scheduler
asks :meth:`LiveConfig.current` before each build: one ``stat`` of the file,
and a re-read only when its identity, size or mtime changed (and a reload only
when its text differs from the text the settings came from, which also
catches an edit made before the scheduler first looked).  A config that
turned bad (broken TOML, an unknown key, a wrong type) is reported once in the
log with the key and line :mod:`feedserver.config` names, and through
:attr:`LiveConfig.error` (the scheduler puts it in ``status.json``, so
``/healthz`` shows it); the last good settings stay in use.

Settings that the web workers, the watcher or the locks were started with
(:data:`RESTART_KEYS`) keep their running values until a restart; the log
says so when a new file changes them.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from feedserver.config import Settings, load_settings, text_digest
from feedserver.core.errors import ConfigError
from feedserver.publish.manifest import Stamp, stamp_of

log = logging.getLogger(__name__)

RESTART_KEYS = ("seeds_dir", "output_dir", "state_dir", "ledger_path", "refresh_interval",
                "workers", "base_url", "frame_ancestors", "config_path")
class LiveConfig:
    """The settings to build with now, from the last good version of the config file."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.config_path
        self.stamp: Stamp = None  # the first look reads the file: it may have changed already
        self.error: str | None = None

    def current(self) -> Settings:
        """Re-read the file if it changed since the last look; the last good settings."""
        if not self.path:
            return self.settings
        stamp = stamp_of(self.path)  # before reading: a write after it is seen next time
        if stamp == self.stamp:
            return self.settings
        self.stamp = stamp
        if self._same_text():  # touched, or put back as it was
            self.error = None
            return self.settings
        try:
            fresh = load_settings(self.path)
        except ConfigError as exc:
            self.error = str(exc)
            log.error("config %s is invalid, keeping the last good configuration: %s",
                      self.path, exc)
            return self.settings
        self.error = None
        self.settings = self._adopt(fresh)
        return self.settings

    def _same_text(self) -> bool:
        try:
            text = Path(self.path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        return text_digest(text) == self.settings.config_digest

    def _adopt(self, fresh: Settings) -> Settings:
        running = {key: getattr(self.settings, key) for key in RESTART_KEYS}
        changed = [key for key, value in running.items() if getattr(fresh, key) != value]
        if changed:
            log.warning("config %s changes %s: kept as they are until a restart", self.path,
                        ", ".join(changed))
        log.info("config %s reloaded", Path(self.path).name)
        return replace(fresh, **running)

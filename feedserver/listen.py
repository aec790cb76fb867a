"""What ``feedserver serve`` decides and says at start, before it listens (issue 11).

* **The base URL.**  Every absolute link (feeds must have them, and the OPML,
  the embeds and the canonical links) is built from ``base_url``.  When no
  config, environment variable or ``--base-url`` sets it, ``serve`` builds
  them from the address it listens on, so ``serve --port 8765`` is a working
  site at that port, and says so.  Listening on every interface with a
  loopback base URL is warned about loudly: other machines would get links
  to their own loopback.
* **A stale build.**  Output published from another base URL (an earlier
  ``serve`` on another port, a ``build`` with the default) is rebuilt before
  the first request, instead of being served with dead links until the
  scheduler's first run.
* **The problems.**  Listed, not only counted, so a person starting the server
  sees which file is broken.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from feedserver.build.run import BuildReport
from feedserver.config import Settings
from feedserver.core.layout import STATUS
from feedserver.publish.manifest import load_manifest

Echo = Callable[[str], None]
WILDCARDS = frozenset({"0.0.0.0", "", "::", "[::]"})
SHOWN_PROBLEMS = 20


def is_loopback(url: str) -> bool:
    """Whether ``url`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serving_settings(settings: Settings, host: str, url: str, echo: Echo, warn: Echo
                     ) -> Settings:
    """The settings to serve with: ``base_url`` from the listening ``url`` when unset.

    ``echo`` gets what a person should know; ``warn`` (stderr) what is
    probably a mistake: every interface (``--host 0.0.0.0``) with links to
    this machine's loopback.
    """
    if not settings.base_url_set:
        settings = replace(settings, base_url=url, base_url_set=True)
        echo(f"feedserver: base_url is not set: links use {url}, the address serve listens "
             "on (set base_url, FEEDSERVER_BASE_URL or --base-url to the public address)")
    elif settings.base_url != url:
        echo(f"feedserver: links inside feeds and pages use base_url {settings.base_url}")
    if host in WILDCARDS and is_loopback(settings.base_url):
        bar = "!" * 78
        for line in (bar,
                     f"WARNING: serve listens on every interface (--host {host or '0.0.0.0'}) "
                     "but every link",
                     f"in feeds and pages points at {settings.base_url}, this machine's "
                     "loopback:",
                     "readers on other machines get dead links and an unstyled site.",
                     "Set the public address: FEEDSERVER_BASE_URL=https://news.example.org/",
                     "(or --base-url, or base_url in config.toml).",
                     bar):
            warn(line)
    return settings


def unset_note(settings: Settings) -> str | None:
    """What ``build`` and ``watch`` say when links come from the default base URL."""
    if settings.base_url_set:
        return None
    return (f"note: base_url is not set: links use {settings.base_url} (set base_url, "
            "FEEDSERVER_BASE_URL or --base-url to the address readers will use)")


def pages_note(settings: Settings) -> str | None:
    """What ``build``, ``watch`` and ``serve`` say when items link to pages nobody
    publishes: ``pages = false`` and no ``page_url``."""
    if settings.pages or settings.page_url:
        return None
    return ("note: pages = false and page_url is not set: items link to article pages "
            "this site does not publish (set page_url, and site_url, to where they live)")


def published_base(out_dir: Path) -> str | None:
    """The base URL the published site was built from: its 'all' JSON Feed's own URL
    without ``feed.json`` (not its home page, which is ``site_url`` where the pages
    live elsewhere)."""
    try:
        feed = json.loads((out_dir / "feed.json").read_bytes())
    except (OSError, ValueError):
        return None
    own = feed.get("feed_url") if isinstance(feed, dict) else None
    if not isinstance(own, str) or not own.endswith("/feed.json"):
        return None
    return own[: -len("feed.json")]


def needs_build(settings: Settings) -> bool:
    """Nothing is published yet, or it was published from another base URL."""
    out = Path(settings.output_dir)
    if not load_manifest(out)["files"]:
        return True
    published = published_base(out)
    return published is not None and published != settings.base_url


def _published_problems(settings: Settings) -> list[dict[str, Any]]:
    try:
        status = json.loads((Path(settings.output_dir) / STATUS).read_bytes())
    except (OSError, ValueError):
        return []
    problems = status.get("problems") if isinstance(status, dict) else None
    return [p for p in problems or () if isinstance(p, dict)]


def problem_lines(report: BuildReport | None, settings: Settings) -> list[str]:
    """``severity: where: reason`` per problem (of ``report``, or the published status),
    the first :data:`SHOWN_PROBLEMS`, then where to see the rest."""
    if report is not None:
        found = [(p.severity, p.where, p.reason) for p in report.problems]
    else:
        found = [(str(p.get("severity", "error")), str(p.get("where", "")),
                  str(p.get("reason", ""))) for p in _published_problems(settings)]
    lines = [f"{severity}: {where}: {reason}" for severity, where, reason in
             found[:SHOWN_PROBLEMS]]
    if len(found) > SHOWN_PROBLEMS:
        lines.append(f"... and {len(found) - SHOWN_PROBLEMS} more: 'feedserver check' lists "
                     "them all")
    return lines

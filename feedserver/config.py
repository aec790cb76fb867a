"""Typed settings from ``config.toml`` and ``FEEDSERVER_*`` environment variables.

Every scalar setting is declared once in :data:`SETTINGS` (name, type, default,
help), the Datasette way: the loader, the environment overrides, the error
messages and the README table all come from that one list.  A wrong key or a
wrong type is a :class:`ConfigError` naming the key (and the line, when TOML
itself is broken), never a traceback from deep inside a build.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from feedserver.core.errors import ConfigError
from feedserver.core.slugs import topic_slug

ENV_PREFIX = "FEEDSERVER_"
DEFAULT_BASE_URL = "http://127.0.0.1:8000/"
At = Callable[[str, str | None], str]  # (table, key) -> "config.toml, line N"

# (name, type, default, help).  Paths are relative to the config file's folder.
SETTINGS: list[tuple[str, type, Any, str]] = [
    ("site_title", str, "feedserver", "Title of the site and of the 'all' channel."),
    ("site_description", str, "Articles from this site.", "Description of the 'all' channel."),
    ("base_url", str, DEFAULT_BASE_URL, "Public URL every absolute link is built from."),
    ("language", str, "en", "Default language of articles and channels (BCP 47)."),
    ("author", str, "", "Default author when an article names none."),
    ("seeds_dir", str, "seeds", "Folder of article files (.txt and .md)."),
    ("output_dir", str, "public", "Folder the published feeds and pages are written to."),
    ("state_dir", str, "state", "Folder for the SQLite ledger and caches."),
    ("ledger_path", str, "", "SQLite ledger file; empty means <state_dir>/ledger.sqlite3."),
    ("max_items", int, 50, "Newest items per channel."),
    ("summary_length", int, 300, "Length of plain-text summaries, cut on a word boundary."),
    ("refresh_interval", int, 30, "Seconds between scans; also the shortest max-age and RSS "
                                  "ttl of a feed."),
    ("max_file_bytes", int, 8_000_000, "Larger article files are skipped with a problem."),
    ("workers", int, 2, "web worker processes for 'feedserver serve'."),
    ("build_processes", int, 0, "Processes used for a full build; 0 means one per core."),
    ("parse_timeout", float, 5.0, "CPU seconds one file's parse may take; a file over it is "
                                  "skipped until it changes. 0: no limit."),
    ("frame_ancestors", str, "*", "CSP frame-ancestors for embeddable pages."),
    ("auto_topics", bool, True, "Also assign topics named in config to untagged articles."),
    ("max_channels", int, 1000, "Most channels ('all' included); the topics with the fewest "
     "articles are left out past it."),
    ("allow_mass_removal", bool, False, "Let one build remove more than half of the "
     "articles (or all of them); otherwise it publishes nothing."),
    ("stuck_after", int, 0, "Seconds a build may run before /healthz says 'stuck'; "
                            "0 means max(600, 10 x refresh_interval)."),
    ("hub_lease_seconds", int, 864_000, "WebSub lease of the built-in hub when a subscriber "
                                        "asks for none."),
    ("hub_lease_max_seconds", int, 2_592_000, "Longest WebSub lease the built-in hub grants."),
    ("hub_allow_private_callbacks", bool, False, "Let the built-in hub call back loopback, "
     "private and link-local addresses (tests, a private network)."),
    ("hub_rate_limit", int, 30, "Subscription requests per minute one client address may "
                                "send to the built-in hub."),
    ("hub_retry_seconds", int, 86_400, "How long a failing push or hub ping is retried "
                                       "(doubling waits) before it is dropped."),
    ("max_media_bytes", int, 200_000_000, "Larger media files beside articles are not "
                                          "published (a problem names them)."),
    ("max_site_media_bytes", int, 2_000_000_000, "Most bytes of media files published in "
                                                 "all; files past it (in path order) are not."),
    ("detect_topics", bool, True, "Find topics in every article's text with no configuration: "
     "places, organisations and people named often, key phrases."),
    ("min_topic_articles", int, 2, "Fewest articles a detected topic needs for a channel "
     "(topics named in config or front matter always get one)."),
    ("detect_language", bool, True, "Detect an article's language from its text when its "
     "front matter names none (else the site 'language')."),
    ("log_format", str, "common", "Access log and build summary lines of 'serve', 'watch' "
                                  "and 'build': 'common' (Common Log Format, text) or 'json' "
                                  "(one JSON object a line)."),
    ("freshness_ceiling", int, 86_400, "Longest max-age and RSS ttl a quiet channel gets: "
     "each channel's follow its pace (a quarter of the median interval between its last "
     "changes, at least refresh_interval). 0: refresh_interval for every channel."),
    ("poll_budget", int, 10, "Full (unconditional) GETs of one channel's feeds one client "
     "address may make per max-age of that feed; past it, 429 with Retry-After. Conditional "
     "requests never count. 0: no limit."),
    ("trusted_proxies", str, "", "Reverse proxies (addresses or CIDR networks; a TOML list, "
     "or separated by commas or spaces) whose X-Forwarded-For names the client poll_budget "
     "counts."),
    ("nginx_conf", str, "", "File each publish rewrites with the output of 'feedserver export "
     "nginx' when its text changes (channels, gone paths, a channel's max-age); empty: none."),
    ("nginx_listen", str, "80", "nginx listen address of the exported config "
     "(127.0.0.1:8080)."),
    ("post_publish", str, "", "Shell command run after each successful publish (reload nginx, "
     "copy the folder to replicas); see Deploying."),
    ("delta_history", int, 8, "Versions of each feed remembered for RFC 3229 deltas "
     "(A-IM: feed): a poller holding one of them gets only the new and updated items "
     "(226). 0: no deltas."),
    ("archive_size", int, 50, "Items per archive page (RFC 5005): every channel's whole "
     "history is in pages of this many, oldest first; a full page never changes. "
     "0: no archives."),
    ("pages", bool, True, "Publish the HTML pages (index, topic and article pages). false: "
     "feeds, OPML, catalog and embeds only, for a site whose pages live elsewhere."),
    ("page_url", str, "", "With pages = false: where each article's page lives, a URL "
     "with {slug} and optionally {year}, {month}, {day} (its publication date, UTC), e.g. "
     "https://example.org/{year}/{slug}/. Empty: articles/<slug>/ here (not published)."),
    ("site_url", str, "", "With pages = false: where the site's pages live, the link of "
     "every channel. Empty: this site's index and topic pages (not published)."),
]
PAGE_URL_FIELDS = ("slug", "year", "month", "day")
LOG_FORMATS = ("common", "json")
# Who may read /metrics: loopback only unless config says otherwise ([] turns metrics off).
METRICS_ALLOW = ("127.0.0.0/8", "::1/128")
BUILTIN_HUB = "builtin"  # in ``hubs``: this server's own hub, at <base_url>websub
HUB_PATH = "websub"


@dataclass(frozen=True)
class TopicRule:
    """A configured topic: its name, description and the phrases that select it."""

    slug: str
    name: str
    description: str = ""
    phrases: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    also: tuple[str, ...] = ()  # detected topics renamed to (merged into) this one


@dataclass(frozen=True)
class Debris:
    """Scraper leftovers removed from plain-text articles.

    ``lines`` are regular expressions matched against a whole stripped line.
    ``caption_markers`` also remove the short caption line right before them.
    """

    lines: tuple[str, ...] = (
        r"still image",
        r"currently reading",
        r"read more",
        r"advertisement",
        r"share( this( article)?)?",
        r"image caption",
        r"media caption",
        r"skip to (main )?content",
    )
    caption_markers: tuple[str, ...] = (r"still image", r"image caption", r"media caption")
    drop_repeated_title: bool = True


@dataclass(frozen=True)
class Podcast:
    """``[podcast]``: which channels are podcasts ('all' and/or topic slugs) and the
    channel facts podcast apps require (Apple Podcasts, the Podcast Index).

    ``image`` is the artwork (an absolute URL, or a path in ``seeds/``, published
    under ``media/``; Apple asks for a square 1400-3000 px JPEG or PNG).
    """

    channels: tuple[str, ...] = ("all",)
    image: str = ""
    category: str = "News"
    subcategory: str = ""
    explicit: bool = False
    author: str = ""
    owner_name: str = ""
    owner_email: str = ""
    type: str = "episodic"
    locked: bool = True

    def image_url(self, base_url: str) -> str:
        """The artwork's absolute URL."""
        if "://" in self.image:
            return self.image
        from urllib.parse import quote

        return f"{base_url}media/{quote(self.image.lstrip('/'), safe='/-._~')}"


_PODCAST_TEXT = ("image", "category", "subcategory", "author", "owner_name", "owner_email",
                 "type")


def _parse_podcast(raw: Any, at: At) -> Podcast:
    if not isinstance(raw, dict):
        raise ConfigError(f"{at('', 'podcast')}: 'podcast' must be a table")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = at("podcast", key)
        if key == "channels":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: podcast.channels must be a list of channel "
                                  "slugs ('all' or topic keys)")
            values[key] = tuple("all" if v == "all" else topic_slug(v) for v in value)
        elif key in ("explicit", "locked"):
            values[key] = _coerce(f"podcast.{key}", bool, value, where)
        elif key in _PODCAST_TEXT:
            values[key] = _coerce(f"podcast.{key}", str, value, where)
        else:
            raise ConfigError(f"{where}: podcast: unknown key '{key}'")
    if not str(values.get("image", "")).strip():
        raise ConfigError(f"{at('', 'podcast')}: podcast.image is required: Apple Podcasts "
                          "and the Podcast Index list no show without its artwork (a path in "
                          "seeds/ or an absolute URL)")
    if values.get("type", "episodic") not in ("episodic", "serial"):
        raise ConfigError(f"{at('podcast', 'type')}: podcast.type must be 'episodic' or "
                          "'serial'")
    return Podcast(**values)


@dataclass(frozen=True)
class Settings:
    """All configuration, resolved: paths are absolute, base_url ends in '/'."""

    site_title: str = "feedserver"
    site_description: str = "Articles from this site."
    base_url: str = DEFAULT_BASE_URL
    language: str = "en"
    author: str = ""
    seeds_dir: str = "seeds"
    output_dir: str = "public"
    state_dir: str = "state"
    ledger_path: str = ""
    max_items: int = 50
    summary_length: int = 300
    refresh_interval: int = 30
    max_file_bytes: int = 8_000_000
    workers: int = 2
    build_processes: int = 0
    parse_timeout: float = 5.0
    frame_ancestors: str = "*"
    auto_topics: bool = True
    max_channels: int = 1000
    allow_mass_removal: bool = False
    stuck_after: int = 0
    hub_lease_seconds: int = 864_000
    hub_lease_max_seconds: int = 2_592_000
    hub_allow_private_callbacks: bool = False
    hub_rate_limit: int = 30
    hub_retry_seconds: int = 86_400
    max_media_bytes: int = 200_000_000
    max_site_media_bytes: int = 2_000_000_000
    freshness_ceiling: int = 86_400
    poll_budget: int = 10
    trusted_proxies: str = ""
    delta_history: int = 8
    debris: Debris = field(default_factory=Debris)
    topics: tuple[TopicRule, ...] = ()
    podcast: Podcast | None = None  # [podcast]: channels that are podcasts
    # False when nothing (config, environment, command line) set base_url: `serve` then
    # builds links from the address it listens on (feedserver.listen).
    base_url_set: bool = True
    config_path: str = ""  # the file these came from, so a long-running scheduler can re-read it
    config_digest: str = ""  # sha256 of the text read (schedule.liveconfig)
    # WebSub hubs every feed names: "builtin" (this server's /websub) and/or external URLs.
    hubs: tuple[str, ...] = (BUILTIN_HUB,)
    log_format: str = "common"
    # Networks whose clients may read /metrics (feedserver.web.metrics); empty: no metrics.
    metrics_allow: tuple[str, ...] = METRICS_ALLOW

    detect_topics: bool = True
    min_topic_articles: int = 2
    detect_language: bool = True
    auto_topics_exclude: tuple[str, ...] = ()  # detected topics never made (names or slugs)
    nginx_conf: str = ""  # feedserver.build.post_publish rewrites it; "" means never
    nginx_listen: str = "80"
    post_publish: str = ""  # a shell command after each publish (feedserver.build.post_publish)
    archive_size: int = 50  # items per archive page (feedserver.build.archives); 0: none
    pages: bool = True  # False: no HTML index, topic or article pages (feeds, lists, embeds)
    page_url: str = ""  # pages = false: the template of article links (core.layout.page_link)
    site_url: str = ""  # pages = false: every channel's link

    @property
    def builtin_hub(self) -> bool:
        """Whether this server's own hub (``/websub``) is on."""
        return BUILTIN_HUB in self.hubs

    @property
    def hub_urls(self) -> tuple[str, ...]:
        """The absolute URL of every hub, in the configured order (feeds and Link headers)."""
        return tuple(self.base_url + HUB_PATH if hub == BUILTIN_HUB else hub
                     for hub in self.hubs)

    @property
    def external_hubs(self) -> tuple[str, ...]:
        """The hubs that are told about each publish (all but the built-in one)."""
        return tuple(hub for hub in self.hubs if hub != BUILTIN_HUB)

    @property
    def stuck_seconds(self) -> int:
        """When a running build counts as stuck: ``stuck_after``, or 10 refresh intervals
        (never under 10 minutes: a cold build of a large folder is not stuck)."""
        return self.stuck_after or max(600, 10 * self.refresh_interval)

    @property
    def proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """``trusted_proxies`` as networks (checked when the settings were loaded)."""
        return proxy_networks(self.trusted_proxies)

    @property
    def ledger_file(self) -> Path:
        """Where the ledger lives: explicit path, or next to the other state."""
        if self.ledger_path:
            return Path(self.ledger_path)
        return Path(self.state_dir) / "ledger.sqlite3"

    def fingerprint(self) -> str:
        """Hash of everything that shapes output; a change forces a re-render."""
        shaping = {f.name: getattr(self, f.name) for f in fields(self)}
        for transient in ("seeds_dir", "output_dir", "state_dir", "ledger_path", "workers",
                          "build_processes", "stuck_after", "base_url_set", "config_path",
                          "config_digest", "allow_mass_removal", "parse_timeout",
                          "hub_lease_seconds", "hub_lease_max_seconds",
                          "hub_allow_private_callbacks", "hub_rate_limit",
                          "hub_retry_seconds", "log_format", "metrics_allow",
                          "poll_budget", "trusted_proxies", "nginx_conf", "nginx_listen",
                          "post_publish", "pages"):
            shaping.pop(transient)
        raw = json.dumps(shaping, default=repr, sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()[:16]


def _coerce(name: str, kind: type, value: Any, origin: str) -> Any:
    """Check or convert one value to its declared type, naming the key on failure."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0", "false",
                                                         "no", "off"}:
            return value.lower() in {"1", "true", "yes", "on"}
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
        if isinstance(value, str) and re.fullmatch(r"\d+(\.\d*)?", value.strip()):
            return float(value)
    elif isinstance(value, str):
        return value
    raise ConfigError(f"{origin}: '{name}' must be {kind.__name__}, got {value!r}")


def proxy_networks(text: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """Addresses or CIDR networks separated by commas or spaces; ValueError names a bad one."""
    networks = []
    for part in text.replace(",", " ").split():
        try:
            networks.append(ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an IP address or network") from None
    return tuple(networks)


def text_digest(text: str) -> str:
    """What identifies one version of a config file's text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_patterns(where: str, patterns: list[str]) -> None:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{where}: bad regular expression {pattern!r}: {exc}") from None
        if _nested_repeat(pattern):
            raise ConfigError(f"{where}: {pattern!r} repeats a part that itself repeats "
                              "(nested quantifiers, as in '(a+)+'): such a pattern can take "
                              "exponential time on one line of an article; write it without")


def _nested_repeat(pattern: str) -> bool:
    """True if a repeat (``*``, ``+``, ``{m,n}``) holds another repeat: the shape
    whose backtracking explodes (star height above one).  Patterns see scraped
    text, and Python's engine has no time limit."""
    import re._parser as sre  # the parser re itself uses; local: only config loading needs it

    def repeats(items: Any, inside: bool) -> bool:
        for op, arg in items:
            if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
                many = arg[1] > 1
                if (many and inside) or repeats(arg[2], inside or many):
                    return True
                continue
            parts = (arg[1] if op is sre.BRANCH else [arg[3]] if op is sre.SUBPATTERN
                     else [arg[1]] if op in (sre.ASSERT, sre.ASSERT_NOT) else [])
            if any(repeats(part, inside) for part in parts):
                return True
        return False

    return repeats(sre.parse(pattern), False)


def _toml_error(path: Path, exc: tomllib.TOMLDecodeError) -> ConfigError:
    return ConfigError(f"{path}: invalid TOML: {exc}")


def _parse_topics(raw: Any, at: At) -> tuple[TopicRule, ...]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{at('', 'topics')}: 'topics' must be a table of tables")
    rules = []
    allowed = {"name", "description", "phrases", "patterns", "also"}
    for key, spec in raw.items():
        table = f"topics.{key}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{at('topics', key)}: {table} must be a table")
        unknown = set(spec) - allowed
        if unknown:
            name = sorted(unknown)[0]
            raise ConfigError(f"{at(table, name)}: {table}: unknown key '{name}'")
        for listed in ("phrases", "patterns", "also"):
            value = spec.get(listed, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{at(table, listed)}: {table}.{listed} must be a list "
                                  "of strings")
        _check_patterns(f"{at(table, 'patterns')}: {table}.patterns", spec.get("patterns", []))
        slug = topic_slug(key)
        if not slug:
            raise ConfigError(f"{at(table, None)}: {table}: the key makes an empty slug")
        rules.append(TopicRule(slug=slug, name=str(spec.get("name", key)),
                               description=str(spec.get("description", "")),
                               phrases=tuple(spec.get("phrases", [])),
                               patterns=tuple(spec.get("patterns", [])),
                               also=tuple(spec.get("also", []))))
    return tuple(rules)


def _parse_exclude(raw: Any, where: str) -> tuple[str, ...]:
    """``auto_topics_exclude``: names or slugs of detected topics never to make."""
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise ConfigError(f"{where}: 'auto_topics_exclude' must be a list of strings")
    return tuple(raw)


def _parse_debris(raw: Any, at: At) -> Debris:
    if not isinstance(raw, dict):
        raise ConfigError(f"{at('', 'debris')}: 'debris' must be a table")
    unknown = set(raw) - {"lines", "caption_markers", "drop_repeated_title"}
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(f"{at('debris', name)}: debris: unknown key '{name}'")
    base = Debris()
    values: dict[str, Any] = {}
    for key in ("lines", "caption_markers"):
        if key in raw:
            value = raw[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{at('debris', key)}: debris.{key} must be a list of strings")
            _check_patterns(f"{at('debris', key)}: debris.{key}", value)
            values[key] = tuple(value)
    if "drop_repeated_title" in raw:
        values["drop_repeated_title"] = _coerce("debris.drop_repeated_title", bool,
                                                raw["drop_repeated_title"],
                                                at("debris", "drop_repeated_title"))
    return Debris(**{**{f.name: getattr(base, f.name) for f in fields(base)}, **values})


def _parse_hubs(raw: Any, where: str) -> tuple[str, ...]:
    """``hubs``: "builtin" and/or absolute http(s) hub URLs, each once."""
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise ConfigError(f"{where}: 'hubs' must be a list of strings")
    hubs: list[str] = []
    for hub in (v.strip() for v in raw):
        parts = urlsplit(hub)
        if hub != BUILTIN_HUB and (parts.scheme not in {"http", "https"} or not parts.netloc):
            raise ConfigError(f"{where}: 'hubs' entries must be \"{BUILTIN_HUB}\" or an "
                              f"absolute http(s) URL, got {hub!r}")
        if hub not in hubs:
            hubs.append(hub)
    return tuple(hubs)


def _parse_networks(raw: Any, where: str) -> tuple[str, ...]:
    """``metrics_allow``: IPv4/IPv6 addresses or networks (CIDR), each once."""
    import ipaddress

    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise ConfigError(f"{where}: 'metrics_allow' must be a list of networks "
                          "(\"127.0.0.1/32\", \"10.0.0.0/8\", \"::1\")")
    found: list[str] = []
    for text in (v.strip() for v in raw):
        try:
            net = str(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ConfigError(f"{where}: 'metrics_allow' entry {text!r} is not an IP "
                              "address or network") from None
        if net not in found:
            found.append(net)
    return tuple(found)


def _resolve_paths(values: dict[str, Any], root: Path) -> None:
    for key in ("seeds_dir", "output_dir", "state_dir", "ledger_path", "nginx_conf"):
        if values.get(key):
            values[key] = str((root / values[key]).resolve())


def _line_of(text: str, key: str | None, table: str = "") -> int:
    """Line of ``key = ...`` in the TOML text (after the ``[table]`` header when given;
    the header itself when ``key`` is None), for error messages; 1 when not found."""
    start = 0
    if table:
        dotted = r"[ \t]*\.[ \t]*".join(rf"([\"']?){re.escape(part)}\{i + 1}"
                                        for i, part in enumerate(table.split(".", 1)))
        header = re.search(rf"^[ \t]*\[[ \t]*{dotted}[ \t]*\]", text, re.MULTILINE)
        start = header.start() if header else 0
    match = None if key is None else \
        re.compile(rf"^[ \t]*{re.escape(key)}[ \t]*=", re.MULTILINE).search(text, start)
    return text.count("\n", 0, match.start() if match else start) + 1


def _check_values(values: dict[str, Any], origins: dict[str, str]) -> None:
    """Checks beyond the type; the error names where the value came from."""
    for positive in ("max_items", "summary_length", "refresh_interval", "max_file_bytes",
                     "workers", "max_channels", "hub_lease_seconds", "hub_lease_max_seconds",
                     "hub_rate_limit", "hub_retry_seconds", "max_media_bytes",
                     "max_site_media_bytes",
                     "min_topic_articles"):
        if values[positive] < 1:
            raise ConfigError(f"{origins.get(positive, 'default')}: '{positive}' must be at "
                              f"least 1, got {values[positive]}")
    for zero_off in ("freshness_ceiling", "poll_budget", "delta_history", "archive_size"):
        if values[zero_off] < 0:
            raise ConfigError(f"{origins.get(zero_off, 'default')}: '{zero_off}' must be at "
                              f"least 0 (0 turns it off), got {values[zero_off]}")
    try:
        proxy_networks(values["trusted_proxies"])
    except ValueError as exc:
        raise ConfigError(f"{origins.get('trusted_proxies', 'default')}: trusted_proxies: "
                          f"{exc}") from None
    if values["stuck_after"] < 0:
        raise ConfigError(f"{origins.get('stuck_after', 'default')}: 'stuck_after' must be at "
                          f"least 0, got {values['stuck_after']}")
    if values["log_format"] not in LOG_FORMATS:
        raise ConfigError(f"{origins.get('log_format', 'default')}: 'log_format' must be "
                          f"one of {', '.join(LOG_FORMATS)}, got {values['log_format']!r}")
    _check_elsewhere(values, origins)
    url = values["base_url"]
    if not url.strip():  # FEEDSERVER_BASE_URL= or base_url = "": not set (feedserver.listen)
        url = values["base_url"] = DEFAULT_BASE_URL
        origins.pop("base_url", None)
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(f"{origins.get('base_url', 'default')}: base_url must be an "
                          f"absolute http(s) URL, got {url!r}")
    values["base_url"] = url if url.endswith("/") else url + "/"


def _check_elsewhere(values: dict[str, Any], origins: dict[str, str]) -> None:
    """``page_url`` and ``site_url``: absolute http(s) URLs, for a site without pages.

    With pages published here they would send readers away from pages that exist, so
    they are refused then; a template names ``{slug}`` (else every item had one link)
    and no other field than :data:`PAGE_URL_FIELDS`.
    """
    for key in ("page_url", "site_url"):
        value = values[key].strip()
        values[key] = value
        if not value:
            continue
        where = origins.get(key, "default")
        if values["pages"]:
            raise ConfigError(f"{where}: '{key}' is for pages = false (the pages are "
                              "published here, and links go to them)")
        sample = value
        if key == "page_url":
            fields_named = ", ".join("{" + n + "}" for n in PAGE_URL_FIELDS)
            try:
                names = {name for _, name, _, _ in string.Formatter().parse(value)
                         if name is not None}
            except ValueError as exc:
                raise ConfigError(f"{where}: page_url: {exc!s} (the fields are "
                                  f"{fields_named})") from None
            if "slug" not in names or not names <= set(PAGE_URL_FIELDS):
                raise ConfigError(f"{where}: page_url must name {{slug}} and no other field "
                                  f"than {fields_named}, got {value!r}")
            try:
                sample = value.format(slug="a", year="2026", month="01", day="02")
            except (ValueError, IndexError, KeyError) as exc:  # a format spec: {year:x}
                raise ConfigError(f"{where}: page_url: {exc!s} (the fields are "
                                  f"{fields_named}, without format specs)") from None
        parts = urlsplit(sample)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ConfigError(f"{where}: {key} must be an absolute http(s) URL, got {value!r}")


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None,
                  overrides: dict[str, Any] | None = None) -> Settings:
    """Read settings: defaults, then the TOML file, then env, then overrides.

    Relative paths are taken from the config file's folder (or the current
    folder without a file), so a deployment can run from anywhere.
    """
    env = dict(os.environ if env is None else env)
    declared = {name: (kind, default) for name, kind, default, _ in SETTINGS}
    values: dict[str, Any] = {name: default for name, (_, default) in declared.items()}
    root = Path.cwd()
    extra: dict[str, Any] = {}
    origins: dict[str, str] = {}
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = env[ENV_PREFIX + "CONFIG"]
    if path is not None:
        cfg = Path(path)
        origin = str(cfg)
        try:
            data = tomllib.loads(cfg.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{cfg}: config file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise _toml_error(cfg, exc) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{cfg}: cannot read: {exc}") from None
        root = cfg.resolve().parent
        extra["config_path"] = str(cfg.resolve())
        text = cfg.read_text(encoding="utf-8")
        extra["config_digest"] = text_digest(text)

        def at(table: str, key: str | None) -> str:
            return f"{origin}, line {_line_of(text, key, table)}"

        for key, value in data.items():
            where = origins[key] = at("", key)
            if key == "trusted_proxies" and isinstance(value, list) \
                    and all(isinstance(v, str) for v in value):
                value = " ".join(value)  # a TOML list reads better than one string
            if key in declared:
                values[key] = _coerce(key, declared[key][0], value, where)
            elif key == "topics":
                extra["topics"] = _parse_topics(value, at)
            elif key == "debris":
                extra["debris"] = _parse_debris(value, at)
            elif key == "hubs":
                extra["hubs"] = _parse_hubs(value, where)
            elif key == "metrics_allow":
                extra["metrics_allow"] = _parse_networks(value, where)
            elif key == "podcast":
                extra["podcast"] = _parse_podcast(value, at)
            elif key == "auto_topics_exclude":
                extra["auto_topics_exclude"] = _parse_exclude(value, where)
            else:
                raise ConfigError(f"{where}: unknown key '{key}'")
    for name, (kind, _) in declared.items():
        if ENV_PREFIX + name.upper() in env:
            origins[name] = f"environment {ENV_PREFIX}{name.upper()}"
            values[name] = _coerce(name, kind, env[ENV_PREFIX + name.upper()], origins[name])
    if ENV_PREFIX + "HUBS" in env:  # comma- or space-separated
        extra["hubs"] = _parse_hubs(env[ENV_PREFIX + "HUBS"].replace(",", " ").split(),
                                    f"environment {ENV_PREFIX}HUBS")
    if ENV_PREFIX + "METRICS_ALLOW" in env:  # comma- or space-separated
        extra["metrics_allow"] = _parse_networks(
            env[ENV_PREFIX + "METRICS_ALLOW"].replace(",", " ").split(),
            f"environment {ENV_PREFIX}METRICS_ALLOW")
    for name, value in (overrides or {}).items():
        if name not in declared:
            raise ConfigError(f"unknown setting '{name}'")
        if value is not None:
            origins[name] = "command line"
            values[name] = _coerce(name, declared[name][0], value, origins[name])
    _check_values(values, origins)
    _resolve_paths(values, root)
    return Settings(**values, **extra, base_url_set="base_url" in origins)

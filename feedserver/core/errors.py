"""Exceptions that carry a message meant for a person, not a traceback."""

from __future__ import annotations


class FeedserverError(Exception):
    """Base for errors the CLI prints as one clear line and exits non-zero."""


class ConfigError(FeedserverError):
    """The configuration is wrong; the message names the key (and line)."""


class ArticleError(FeedserverError):
    """One article file cannot be published; the message says why."""


class PublishError(FeedserverError):
    """The output folder could not be written; the previous output stays."""


class Unavailable(FeedserverError):
    """A build cannot run until a person fixes something outside the code.

    Nothing was published: the last good output stays served.  Retrying at
    once gives the same answer, so a long-lived caller (the scheduler) should
    report it as one line, back off and try again later rather than restart.
    """


class SeedsUnavailable(Unavailable):
    """The seeds folder is missing, unreadable or suddenly empty; the message names it."""


class MassRemovalRefused(SeedsUnavailable):
    """More than half of the articles would go in one build without ``allow_mass_removal``."""


class StateUnavailable(Unavailable):
    """The ledger (``state_dir``) is corrupt, full or read-only; the message names the file
    and what to do."""

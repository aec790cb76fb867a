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

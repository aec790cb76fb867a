"""``feedserver serve`` parses requests with gunicorn's C parser."""

from __future__ import annotations

from gunicorn.http import message

from feedserver.config import Settings
from tests.unit.test_access_log import config


def test_serve_parses_requests_with_gunicorns_c_parser(settings: Settings) -> None:
    """gunicorn takes its C parser (gunicorn_h1c, a dependency) when it is installed and
    no compatibility flag rules it out: 3-12% less worker CPU a request than its Python
    parser (benchmarks/README.md, "Serving")."""
    assert message._check_fast_parser(config(settings))

"""``feedserver serve --no-scheduler``: a replica serves the output, never builds it.

Any number of replicas read one output folder (a shared volume, or a copy
kept by the builder's ``post_publish`` hook): a replica that built, or ran a
scheduler, would write into a folder that is another machine's, or compete
with the one builder.  The server itself is replaced here by a recorder; the
real servers are in tests/system/test_replicas.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from feedserver import serve
from feedserver.cli import main
from feedserver.config import Settings
from feedserver.core.layout import MANIFEST
from feedserver.metrics import multiproc


class Recorder:
    """Stands in for :class:`feedserver.serve.FeedServer`: what would have run."""

    runs: ClassVar[list[Recorder]] = []

    def __init__(self, factory: Any, options: dict[str, Any], background: Any,
                 metrics_dir: Any) -> None:
        self.factory, self.options, self.background = factory, options, background
        self.metrics_dir = metrics_dir
        Recorder.runs.append(self)

    def run(self) -> None:
        """Serve nothing (the test looks at what was configured); clean up as on exit."""
        if self.metrics_dir is not None:
            multiproc.remove(self.metrics_dir)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Recorder]:
    Recorder.runs = []
    monkeypatch.setattr(serve, "FeedServer", Recorder)
    monkeypatch.setattr(serve, "start_background",
                        lambda settings: pytest.fail("a replica started a scheduler"))
    monkeypatch.setattr(serve, "run_build", lambda *a, **k: pytest.fail("a replica built"))
    return Recorder.runs


def unset_base(settings: Settings) -> Settings:
    return dataclasses.replace(settings, base_url="http://127.0.0.1:8000/", base_url_set=False)


def test_a_replica_over_an_empty_folder_builds_nothing_and_says_why_it_is_empty(
        settings: Settings, recorded: list[Recorder]) -> None:
    lines: list[str] = []
    serve.run(settings, "127.0.0.1", 8123, scheduler=False, echo=lines.append)
    assert len(recorded) == 1 and recorded[0].background is None
    assert not (Path(settings.output_dir) / MANIFEST).exists()
    assert not Path(settings.state_dir).exists()  # no ledger, no lock: nothing of a builder
    text = "\n".join(lines)
    assert "nothing is published" in text and "503" in text


def test_a_replica_takes_its_links_from_the_published_output(
        settings: Settings, build: Any, recorded: list[Recorder]) -> None:
    build()  # the builder's output, from the config's base_url
    published = settings.base_url
    lines: list[str] = []
    serve.run(unset_base(settings), "127.0.0.1", 8123, scheduler=False, echo=lines.append)
    app = recorded[0].factory()
    assert app.config["FEEDSERVER_SETTINGS"].base_url == published  # not its own address
    response = app.test_client().get("/feed.rss")
    assert response.status_code == 200
    assert f"<{published}feed.rss>; rel=\"self\"" in response.headers.getlist("Link")
    assert any("replica" in line for line in lines)


def test_the_command_line_has_the_flag(monkeypatch: pytest.MonkeyPatch,
                                       settings: Settings) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(serve, "run", lambda *a, **k: seen.update(k))
    result = CliRunner().invoke(main, ["serve", "--no-scheduler", "--config",
                                       str(settings.config_path)])
    assert result.exit_code == 0, result.output
    assert seen.get("scheduler") is False
    monkeypatch.setattr(serve, "run", lambda *a, **k: seen.update(k))
    CliRunner().invoke(main, ["serve", "--config", str(settings.config_path)])
    assert seen.get("scheduler") is True


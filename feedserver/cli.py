"""The ``feedserver`` command: a thin click shell over :mod:`feedserver.build.run`.

Each command loads settings (``--config``, then ``FEEDSERVER_*``), calls one
function and turns its report into lines and an exit code.  Errors that are
meant for people (:class:`FeedserverError`) print as one line, no traceback.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import click

from feedserver.build.guard import state_error
from feedserver.build.run import BuildReport, run_build, terminal_progress
from feedserver.config import Settings, load_settings
from feedserver.core.errors import FeedserverError
from feedserver.listen import pages_note, unset_note
from feedserver.metrics.instruments import build_outcome
from feedserver.metrics.logs import JSON, build_fields, failure_fields, json_line
from feedserver.publish.output import note_status
from feedserver.schedule.locks import BUILD_LOCK, build_lock, lock_file
from feedserver.web.health import published_details


def _settings(config: str | None, **overrides: object) -> Settings:
    path = config
    if path is None and Path("config.toml").is_file():
        path = "config.toml"
    try:
        return load_settings(path, overrides=overrides)
    except FeedserverError as exc:
        raise click.ClickException(str(exc)) from None


def _print_problems(report: BuildReport) -> None:
    for problem in report.problems:
        click.echo(f"{problem.severity}: {problem}", err=True)


@contextlib.contextmanager
def _build_lock(settings: Settings) -> Iterator[None]:
    """``build.lock``; a state folder that refuses it (read-only, full) is one line."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(build_lock(settings))
        except OSError as exc:
            raise state_error(lock_file(settings, BUILD_LOCK), exc, "the build lock") from None
        yield


config_option = click.option("--config", "config", type=click.Path(dir_okay=False),
                             help="config.toml to read (default: ./config.toml).")
base_url_option = click.option("--base-url", "base_url",
                               help="Public URL every absolute link is built from "
                                    "(overrides base_url).")


def _say_notes(settings: Settings) -> None:
    """What ``build`` and ``watch`` say before they start: links built from the default
    base URL, items linking to pages nobody publishes."""
    for note in (unset_note(settings), pages_note(settings)):
        if note:
            click.echo(note, err=True)


@click.group()
@click.version_option(package_name="feedserver")
def main() -> None:
    """Publish a folder of articles as validated RSS, Atom and JSON Feed channels."""


@main.command()
@config_option
@click.option("--out", "output_dir", type=click.Path(file_okay=False),
              help="Output folder (overrides output_dir).")
@click.option("--allow-mass-removal", "allow_mass_removal", is_flag=True, default=None,
              help="Publish even if more than half of the articles (or all) are gone.")
@base_url_option
def build(config: str | None, output_dir: str | None, allow_mass_removal: bool | None,
          base_url: str | None) -> None:
    """Build and publish every channel into the output folder.

    A missing, unreadable or suddenly empty seeds folder, or more than half of
    the articles gone at once, publishes nothing (the last good output stays)
    and exits non-zero, unless --allow-mass-removal says the removal is meant.
    """
    settings = _settings(config, output_dir=output_dir, allow_mass_removal=allow_mass_removal,
                         base_url=base_url)
    _say_notes(settings)
    try:
        with _build_lock(settings):  # never at the same time as a running scheduler's build
            report = run_build(settings, progress=terminal_progress, one_shot=True)
    except FeedserverError as exc:  # /healthz shows it too, until a build succeeds
        note_status(Path(settings.output_dir), last_error={
            "at": datetime.now(UTC).replace(microsecond=0).isoformat(), "message": str(exc)})
        if settings.log_format == JSON:
            click.echo(json_line("build failed", failure_fields("failed", "command", str(exc))))
        raise click.ClickException(str(exc)) from None
    _print_problems(report)
    _queue_websub(settings, report.written)
    line = (f"published {report.articles} articles in {report.channels} channels "
            f"({len(report.written)} files written, {report.unchanged} unchanged, "
            f"{len(report.removed)} removed) to {settings.output_dir} "
            f"in {report.seconds:.2f}s")
    if settings.log_format == JSON:  # the summary as one JSON object, for log shippers
        outcome = build_outcome(report.published, bool(report.written or report.removed))
        line = json_line(line, build_fields(report, outcome, "command"))
    click.echo(line)


def _queue_websub(settings: Settings, written: list[str]) -> None:
    """Queue the WebSub pushes and pings of a publish; a running scheduler sends them."""
    from feedserver.websub.deliver import queue_published
    from feedserver.websub.store import HubStore

    if settings.hubs and written:
        try:
            queue_published(settings, HubStore(settings.state_dir), written)
        except Exception as exc:  # a hub is never a reason for a build to fail
            click.echo(f"warning: WebSub notifications not queued: {exc}", err=True)


@main.command()
@config_option
def subscribers(config: str | None) -> None:
    """WebSub: subscribers per feed of the built-in hub, and queued pushes and pings."""
    import time

    from feedserver.websub.store import HubStore

    settings = _settings(config)
    click.echo(f"hubs: {', '.join(settings.hub_urls) or 'none'}")
    store = HubStore(settings.state_dir)
    if not store.exists():
        click.echo("no subscribers yet")
        return
    now = time.time()
    topics = store.per_topic(now)
    for topic, count in topics.items():
        click.echo(f"{count:6d}  {topic}")
    click.echo(f"{sum(topics.values())} subscribers of {len(topics)} feeds")
    for kind, target, topic, attempts, next_at, error in store.queued():
        wait = max(0, round(next_at - now))
        click.echo(f"queued {kind} of {topic} to {target}: {attempts} failed attempts, "
                   f"next in {wait}s{f' ({error})' if error else ''}")
    for key, value in store.notes().items():
        click.echo(f"{key}: {value}")


@main.command()
@config_option
@click.option("--no-events", "no_events", is_flag=True,
              help="Do not watch seeds/ for changes; scan every refresh_interval seconds only.")
def watch(config: str | None, no_events: bool) -> None:
    """Keep the output folder fresh, without a web server (nginx or a CDN serves it).

    A saved file is published within about a second (file-system events), and
    seeds/ is scanned every refresh_interval seconds.  One scheduler per
    state_dir: a second one stands by.  Stops on Ctrl-C or SIGTERM.
    """
    from feedserver.schedule.scheduler import configure_logging, run_forever

    settings = _settings(config)
    _say_notes(settings)
    configure_logging(log_format=settings.log_format)
    run_forever(settings, events=not no_events)


@main.command()
@config_option
@click.option("--strict", is_flag=True, help="Exit non-zero on any problem, warnings included.")
def check(config: str | None, strict: bool) -> None:
    """Read and validate everything without publishing; list every problem."""
    settings = _settings(config)
    try:  # reads a copy of the ledger: creates and changes nothing (see feedserver.build.guard)
        report = run_build(settings, publish_output=False, one_shot=True)
    except FeedserverError as exc:
        raise click.ClickException(str(exc)) from None
    _print_problems(report)
    for line in published_details(Path(settings.output_dir), settings.stuck_seconds):
        click.echo(f"status: {line}", err=True)  # what /healthz only names
    click.echo(f"{report.articles} articles, {report.channels} channels, "
               f"{len(report.errors)} errors, {len(report.problems) - len(report.errors)} "
               "warnings")
    if report.errors or (strict and report.problems):
        sys.exit(1)


@main.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Web worker processes (overrides workers).")
@click.option("--dev", is_flag=True, help="Use Flask's development server (local work only).")
@base_url_option
@click.option("--no-scheduler", "no_scheduler", is_flag=True,
              help="A replica: serve the output folder as published elsewhere (by "
                   "'feedserver watch'); never build, run no scheduler.")
def serve(config: str | None, host: str, port: int, workers: int | None, dev: bool,
          base_url: str | None, no_scheduler: bool) -> None:
    """Build if nothing is published yet, then serve the output folder with granian.

    With --no-scheduler, only serve: any number of such replicas can read the
    output folder of one builder.
    """
    from feedserver import serve as serving  # granian is only needed by this command

    settings = _settings(config, workers=workers, base_url=base_url)
    try:
        serving.run(settings, host, port, dev=dev, echo=click.echo,
                    scheduler=not no_scheduler)
    except FeedserverError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def export() -> None:
    """Write configuration for other servers from the published output."""


@export.command("nginx")
@config_option
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="File to write (default: standard output).")
@click.option("--listen", default=None,
              help="nginx listen address (overrides nginx_listen; default 80).")
def export_nginx(config: str | None, out: str | None, listen: str | None) -> None:
    """An nginx include file (for the http block) serving the output folder with the
    app's HTTP contract, generated from the manifest; see README "Deploying"."""
    from feedserver.publish import nginx

    settings = _settings(config)
    address = listen or settings.nginx_listen
    if out is None:
        click.echo(nginx.render(settings, nginx.load_manifest(Path(settings.output_dir)),
                                address), nl=False)
        return
    written = nginx.write(settings, Path(out), address)
    click.echo(f"{'wrote' if written else 'unchanged:'} {out}", err=True)

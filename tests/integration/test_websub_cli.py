"""`feedserver build` queues a publish's WebSub notifications; `feedserver subscribers`
shows the operator what the hub holds (issue 19)."""

from __future__ import annotations

import time
from pathlib import Path

from click.testing import CliRunner

from feedserver.cli import main
from feedserver.config import Settings
from feedserver.websub.store import HubStore, Intent

HUB = "http://127.0.0.1:9/hub"


def run(settings: Settings, *args: str, hubs: str = "builtin") -> str:
    result = CliRunner().invoke(main, [*args, "--config", settings.config_path],
                                env={"FEEDSERVER_HUBS": hubs}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_build_queues_pings_for_changed_feeds_and_subscribers_lists_them(
        settings: Settings, site_dir: Path) -> None:
    assert run(settings, "subscribers").splitlines()[-1] == "no subscribers yet"
    run(settings, "build", hubs=f"builtin,{HUB}")
    store = HubStore(settings.state_dir)
    pinged = {topic for kind, target, topic, *_ in store.queued() if kind == "ping"}
    assert settings.base_url + "feed.atom" in pinged
    assert all(topic.rsplit("/", 1)[-1] in ("feed.rss", "feed.atom", "feed.json")
               for topic in pinged)
    now = time.time()
    for n, topic in enumerate(("feed.atom", "feed.atom", "topics/energy/feed.rss")):
        store.subscribe(Intent(n, "subscribe", settings.base_url + topic,
                               f"https://reader{n}.example/cb", "", 3600), now)
    listed = run(settings, "subscribers", hubs=f"builtin,{HUB}")
    assert f"     2  {settings.base_url}feed.atom" in listed
    assert f"     1  {settings.base_url}topics/energy/feed.rss" in listed
    assert "3 subscribers of 2 feeds" in listed
    assert f"queued ping of {settings.base_url}feed.atom to {HUB}: 0 failed attempts" in listed
    # Once sent, a build that changes nothing queues nothing.
    for job in store.due(time.time() + 1):
        store.done(job)
    run(settings, "build", hubs=f"builtin,{HUB}")
    assert store.queued() == []

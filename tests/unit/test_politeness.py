"""The poll budget (feedserver.web.politeness) and its settings, with a hand-moved clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedserver.config import load_settings, proxy_networks
from feedserver.core.errors import ConfigError
from feedserver.web.politeness import PollBudget, client_address


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def peer(address: str, forwarded: str | None = None) -> dict[str, str]:
    environ = {"REMOTE_ADDR": address}
    if forwarded is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    return environ


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def budget(tmp_path: Path, clock: Clock) -> PollBudget:
    return PollBudget(tmp_path / "polling.sqlite3", 3, proxy_networks("10.0.0.1"), clock)


def test_budget_per_max_age_then_retry_after(budget: PollBudget, clock: Clock) -> None:
    client = peer("192.0.2.7")
    assert [budget.spend(client, "all", 600) for _ in range(3)] == [0, 0, 0]
    # The fourth in the same second: one more fits after 600 / 3 seconds.
    assert budget.spend(client, "all", 600) == 200
    clock.now += 199
    assert budget.spend(client, "all", 600) == 1
    clock.now += 1
    assert budget.spend(client, "all", 600) == 0
    assert budget.spend(client, "all", 600) == 200  # refused requests were not counted


def test_spread_out_requests_never_run_out(budget: PollBudget, clock: Clock) -> None:
    client = peer("192.0.2.8")
    for _ in range(50):
        assert budget.spend(client, "energy", 300) == 0
        clock.now += 100  # three per max-age: exactly the budget


def test_counted_per_client_and_per_channel(budget: PollBudget) -> None:
    for _ in range(3):
        assert budget.spend(peer("192.0.2.1"), "all", 600) == 0
    assert budget.spend(peer("192.0.2.1"), "all", 600) > 0
    assert budget.spend(peer("192.0.2.1"), "energy", 600) == 0
    assert budget.spend(peer("192.0.2.2"), "all", 600) == 0


def test_shared_between_processes_through_the_file(tmp_path: Path, clock: Clock) -> None:
    """Two workers (two connections to one file) spend from the same budget."""
    one = PollBudget(tmp_path / "p.sqlite3", 2, (), clock)
    two = PollBudget(tmp_path / "p.sqlite3", 2, (), clock)
    assert one.spend(peer("192.0.2.3"), "all", 60) == 0
    assert two.spend(peer("192.0.2.3"), "all", 60) == 0
    assert one.spend(peer("192.0.2.3"), "all", 60) == 30
    assert two.spend(peer("192.0.2.3"), "all", 60) == 30


def test_an_unusable_store_lets_requests_through(tmp_path: Path, clock: Clock) -> None:
    (tmp_path / "state").write_text("a file where the folder should be")
    blocked = PollBudget(tmp_path / "state" / "polling.sqlite3", 1, (), clock)
    assert [blocked.spend(peer("192.0.2.4"), "all", 60) for _ in range(5)] == [0] * 5


@pytest.mark.parametrize(("environ", "expected"), [
    (peer("192.0.2.9"), "192.0.2.9"),
    (peer("192.0.2.9", "203.0.113.5"), "192.0.2.9"),           # untrusted peer: ignored
    (peer("10.0.0.1", "203.0.113.5"), "203.0.113.5"),          # trusted proxy: its client
    (peer("10.0.0.1", "198.51.100.1, 203.0.113.5"), "203.0.113.5"),  # the nearest hop
    (peer("10.0.0.1", "203.0.113.5, 10.0.0.1"), "203.0.113.5"),  # proxies skipped
    (peer("10.0.0.1", "bogus, 203.0.113.5"), "203.0.113.5"),
    (peer("10.0.0.1", "203.0.113.5, bogus"), "10.0.0.1"),      # garbled: the proxy counts
    (peer("10.0.0.1"), "10.0.0.1"),
    (peer("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64"),       # IPv6: per /64
])
def test_which_address_counts(environ: dict[str, str], expected: str) -> None:
    assert client_address(environ, proxy_networks("10.0.0.0/30")) == expected


def test_settings(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]\npoll_budget = 0\n')
    settings = load_settings(config, env={})
    assert [str(n) for n in settings.proxy_networks] == ["127.0.0.1/32", "10.0.0.0/8"]
    assert PollBudget.from_settings(settings) is None  # 0: off
    assert load_settings(None, env={}).poll_budget == 10
    env = {"FEEDSERVER_TRUSTED_PROXIES": "::1, 192.168.0.0/16"}
    assert len(load_settings(None, env=env).proxy_networks) == 2
    config.write_text('trusted_proxies = "10.0.0.1 proxy.example"\n')
    with pytest.raises(ConfigError, match=r"line 1: trusted_proxies: 'proxy.example'"):
        load_settings(config, env={})
    with pytest.raises(ConfigError, match="'poll_budget' must be at least 0"):
        load_settings(None, env={"FEEDSERVER_POLL_BUDGET": "-1"})

"""A channel's freshness (max-age, RSS ttl) from its own pace: feedserver.core.freshness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from feedserver.core.freshness import DAY, channel_max_age, ttl_minutes

START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def every(step: timedelta, count: int, start: datetime = START) -> list[datetime]:
    return [start + i * step for i in range(count)]


@pytest.mark.parametrize(("step", "expected"), [
    (timedelta(minutes=20), 300),              # a quarter of 20 minutes
    (timedelta(hours=4), 3600),                # a quarter of 4 hours
    (timedelta(days=2), 43_200),               # half a day
    (timedelta(days=8), DAY),                  # two days, clamped to the ceiling
])
def test_a_quarter_of_the_regular_interval(step: timedelta, expected: int) -> None:
    assert channel_max_age(every(step, 12), floor=30, ceiling=DAY) == expected


def test_quarter_of_the_median_interval() -> None:
    # Gaps (newest first): 1 h, 2 h, 2 h, 8 h, 40 h: the median is 2 h, a quarter 30 min.
    hours = [0, 1, 3, 5, 13, 53]
    updates = [START - timedelta(hours=h) for h in hours]
    assert channel_max_age(updates, floor=30) == 1800


def test_busy_channel_is_fresh_sooner_than_a_monthly_one() -> None:
    busy = every(timedelta(minutes=4), 10)
    monthly = every(timedelta(days=30), 10)
    fast, slow = channel_max_age(busy, 30), channel_max_age(monthly, 30)
    assert fast == 60 and slow == DAY and fast < slow


def test_clamped_between_refresh_interval_and_ceiling() -> None:
    assert channel_max_age(every(timedelta(seconds=10), 10), floor=30) == 30
    assert channel_max_age(every(timedelta(days=7), 10), floor=30, ceiling=7200) == 7200
    assert channel_max_age(every(timedelta(days=7), 10), floor=30) == DAY


def test_only_the_newest_changes_count() -> None:
    # Years of monthly posts, then ten posts an hour apart: the channel is busy now.
    old = every(timedelta(days=30), 40, START - timedelta(days=1300))
    recent = every(timedelta(hours=1), 10)
    assert channel_max_age(old + recent, floor=30) == 900
    # Order of the input does not matter.
    assert channel_max_age(list(reversed(old + recent)), floor=30) == 900


def test_one_batch_is_one_change() -> None:
    # Twenty items published in the same second, and one a day before: one gap of a day.
    batch = [START] * 20 + [START - timedelta(days=1)]
    assert channel_max_age(batch, floor=30) == DAY // 4


@pytest.mark.parametrize("updates", [[], [START], [START, START]])
def test_unknown_pace_is_the_refresh_interval(updates: list[datetime]) -> None:
    assert channel_max_age(updates, floor=45) == 45


def test_ceiling_at_or_below_floor_turns_it_off() -> None:
    monthly = every(timedelta(days=30), 10)
    assert channel_max_age(monthly, floor=30, ceiling=0) == 30
    assert channel_max_age(monthly, floor=30, ceiling=30) == 30


def test_same_dates_same_answer() -> None:
    dates = every(timedelta(minutes=37), 15)
    assert channel_max_age(dates, 30) == channel_max_age(list(dates), 30) == 555


@pytest.mark.parametrize(("seconds", "minutes"), [(1, 1), (30, 1), (60, 1), (61, 2),
                                                   (900, 15), (DAY, 1440)])
def test_ttl_minutes_rounds_up(seconds: int, minutes: int) -> None:
    assert ttl_minutes(seconds) == minutes

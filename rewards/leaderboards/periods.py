"""The calendar periods an instant belongs to, in the organisation's zone.

The keys match `rewards.clock.period_start`: an ISO week from Monday, a month, a quarter, a year,
each named by its local first day, and all time under one fixed date.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

from rewards.clock import local_now

WEEK, MONTH, QUARTER, YEAR, ALL = "week", "month", "quarter", "year", "all"
PERIODS = (WEEK, MONTH, QUARTER, YEAR, ALL)
ALL_TIME = date(1970, 1, 1)


@lru_cache(maxsize=4096)
def starts_of_day(day: date) -> tuple[tuple[str, date], ...]:
    """(period, first day) for every period containing the local `day`."""
    return (
        (WEEK, day - timedelta(days=day.weekday())),
        (MONTH, day.replace(day=1)),
        (QUARTER, date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)),
        (YEAR, date(day.year, 1, 1)),
        (ALL, ALL_TIME),
    )


def local_day(instant: datetime, tz_name: str) -> date:
    return local_now(instant, tz_name).date()


def period_keys(instant: datetime, tz_name: str) -> tuple[tuple[str, date], ...]:
    """Every (period, first day) containing `instant` in `tz_name`."""
    return starts_of_day(local_day(instant, tz_name))


def start_of(period: str, instant: datetime, tz_name: str) -> date:
    """The key of the `period` containing `instant` (what a leaderboard reads)."""
    return dict(period_keys(instant, tz_name))[period]

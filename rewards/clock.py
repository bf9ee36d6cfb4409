"""Time in one place: an injectable clock, UTC storage and conversions to a member's zone.

Everything is stored in UTC; "today", birthdays, timeframe buckets and availability are computed in
the member's own zone (falling back to the organisation's `TIMEZONE`). Tests pin the clock by
passing a `FixedClock`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved; for tests and replays."""

    def __init__(self, instant: datetime) -> None:
        self._now = as_utc(instant)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = as_utc(instant)

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def as_utc(value: datetime) -> datetime:
    """Treat naive datetimes as UTC (SQLite returns them naive) and convert aware ones to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    """The member's zone, or the fallback when unset or unknown (imports validate zones)."""
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def local_now(instant: datetime, tz_name: str | None, fallback: str = "UTC") -> datetime:
    return as_utc(instant).astimezone(zone(tz_name, fallback))


def local_today(instant: datetime, tz_name: str | None, fallback: str = "UTC") -> date:
    return local_now(instant, tz_name, fallback).date()


def period_start(kind: str, instant: datetime, tz_name: str) -> datetime | None:
    """Start (as UTC) of the calendar period containing `instant` in `tz_name`.

    `kind` is week (ISO, Monday), month, quarter, year or all (None: no lower bound).
    """
    local = local_now(instant, tz_name)
    day = local.date()
    if kind == "all":
        return None
    if kind == "day":
        start = day
    elif kind == "week":
        start = day - timedelta(days=day.weekday())
    elif kind == "month":
        start = day.replace(day=1)
    elif kind == "quarter":
        start = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    elif kind == "year":
        start = date(day.year, 1, 1)
    else:
        raise ValueError(f"unknown period {kind!r}")
    return datetime(start.year, start.month, start.day, tzinfo=local.tzinfo).astimezone(UTC)


@lru_cache(maxsize=1024)
def timeframe_bucket(timeframe: str, instant: datetime, tz_name: str | None, fallback: str) -> str:
    """The bucket label a timeframe reward is limited to once per, in the member's zone.

    Cached: a batch of 30,000 awards asks for the same few (instant, zone) pairs."""
    local = local_now(instant, tz_name, fallback)
    if timeframe == "hourly":
        return local.strftime("%Y-%m-%dT%H")
    if timeframe == "daily":
        return local.date().isoformat()
    if timeframe == "weekly":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if timeframe == "biweekly":
        year, week, _ = local.isocalendar()
        return f"{year}-B{(week - 1) // 2:02d}"
    if timeframe == "monthly":
        return local.strftime("%Y-%m")
    if timeframe == "quarterly":
        return f"{local.year}-Q{(local.month - 1) // 3 + 1}"
    if timeframe == "yearly":
        return str(local.year)
    raise ValueError(f"unknown timeframe {timeframe!r}")

"""The period an export covers: local days in `TIMEZONE`, from the first to the last inclusive.

`--from 2026-01-01 --to 2026-03-31` means every row whose time falls on one of those days in the
organisation's zone, so an export by month matches the leaderboards' months. Either end may be
left open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rewards.errors import InvalidInput


@dataclass(frozen=True)
class Window:
    first: date | None = None
    last: date | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.first and self.last and self.first > self.last:
            raise InvalidInput(
                f"The period starts ({self.first}) after it ends ({self.last}): "
                "give --from before --to."
            )

    @property
    def start(self) -> datetime | None:
        """The first instant (UTC) inside the window, or None when open."""
        return None if self.first is None else local_midnight(self.first, self.timezone)

    @property
    def end(self) -> datetime | None:
        """The first instant (UTC) after the window, or None when open."""
        if self.last is None:
            return None
        return local_midnight(self.last + timedelta(days=1), self.timezone)

    def where(self, column: Any) -> list[Any]:
        """The conditions keeping `column` (a UTC time column) inside the window."""
        conditions = []
        if self.start is not None:
            conditions.append(column >= self.start)
        if self.end is not None:
            conditions.append(column < self.end)
        return conditions

    def label(self) -> str:
        """How the window reads in a file name: `2026-01-01_2026-03-31`, `all` when open."""
        return f"{self.first or 'start'}_{self.last or 'now'}" if self.first or self.last else "all"


def local_midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(0), ZoneInfo(timezone)).astimezone(UTC)


def parse_day(raw: str | None, what: str) -> date | None:
    """`YYYY-MM-DD` (or nothing) as a date; anything else is refused with a sentence."""
    if raw is None or not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput(
            f"{what} must be a date such as 2026-01-31, got {raw.strip()!r}."
        ) from None


def window(first: str | None, last: str | None, timezone: str) -> Window:
    return Window(parse_day(first, "The start date"), parse_day(last, "The end date"), timezone)

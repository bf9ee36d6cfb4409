"""`availability_rule`: when a reward can be given, judged on the member's own local clock.

- `start_date` / `end_date` are `MM-DD`; a range whose end comes before its start wraps the year end
  (`12-15` to `01-15` is the holiday season).
- `dow` lists weekdays with 0 = Monday ... 6 = Sunday.
- `start_time` / `end_time` are `HH:MM[:SS]`; an end before the start spans midnight.
"""

from __future__ import annotations

from datetime import date, datetime, time

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, field_validator, model_validator


def parse_month_day(value: str) -> tuple[int, int]:
    try:
        month_text, day_text = value.split("-")
        month, day = int(month_text), int(day_text)
        date(2000, month, day)  # 2000 is a leap year, so 02-29 is accepted
    except (ValueError, AttributeError):
        raise ValueError(f"must be MM-DD, such as 12-01, got {value!r}") from None
    return month, day


def parse_clock(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except (ValueError, TypeError):
        raise ValueError(f"must be HH:MM or HH:MM:SS, got {value!r}") from None


class AvailabilityRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start_date: StrictStr | None = None
    end_date: StrictStr | None = None
    dow: tuple[StrictInt, ...] | None = None
    start_time: StrictStr | None = None
    end_time: StrictStr | None = None

    @field_validator("start_date", "end_date")
    @classmethod
    def _month_day(cls, value: str | None) -> str | None:
        if value is not None:
            parse_month_day(value)
        return value

    @field_validator("start_time", "end_time")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None:
            parse_clock(value)
        return value

    @field_validator("dow")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None:
            if not value:
                raise ValueError("must list at least one weekday (0=Monday ... 6=Sunday)")
            for day in value:
                if not 0 <= day <= 6:
                    raise ValueError(f"weekdays are 0 (Monday) to 6 (Sunday), got {day}")
        return value

    @model_validator(mode="after")
    def _pairs(self) -> AvailabilityRule:
        if (self.start_date is None) != (self.end_date is None):
            raise ValueError("start_date and end_date go together")
        return self

    def is_available(self, local: datetime) -> bool:
        """Is the reward available at this member-local moment?"""
        if self.dow is not None and local.weekday() not in self.dow:
            return False
        if self.start_date and self.end_date:
            today = (local.month, local.day)
            start, end = parse_month_day(self.start_date), parse_month_day(self.end_date)
            inside = start <= today <= end if start <= end else today >= start or today <= end
            if not inside:
                return False
        if self.start_time or self.end_time:
            now = local.time().replace(tzinfo=None)
            begin = parse_clock(self.start_time) if self.start_time else time.min
            finish = parse_clock(self.end_time) if self.end_time else time.max
            inside = begin <= now <= finish if begin <= finish else now >= begin or now <= finish
            if not inside:
                return False
        return True

    def describe(self) -> str:
        """A short sentence for refusals: when the reward can be given."""
        parts = []
        if self.start_date and self.end_date:
            parts.append(f"from {self.start_date} to {self.end_date}")
        if self.dow is not None:
            names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
            parts.append("on " + ", ".join(names[d] for d in self.dow))
        if self.start_time or self.end_time:
            parts.append(f"between {self.start_time or '00:00'} and {self.end_time or '23:59'}")
        return " ".join(parts) or "always"

"""The `job` field: when the scheduler evaluates a reward.

Three triggers, shaped as in the seed README (and as APScheduler 3 takes them):

- ``{"trigger": "cron", "cron": {"day": "last", "hour": 16, "minute": 0}}``: the CronTrigger fields
  year, month, day, week, day_of_week, hour, minute, second, start_date, end_date;
- ``{"trigger": "interval", "interval": {"hours": 2}}``: weeks, days, hours, minutes, seconds;
- ``{"trigger": "date", "run_date": "2025-12-25 10:00:00", "skip_past_dates": true}``: once. The
  original's ``"date": {"run_date": ...}`` form is accepted too and normalised to the README's.

Plus `id` (default ``reward_<reward_id>``, filled in by the loader), `name`, `timezone` (IANA;
default: the organisation's TIMEZONE), `jitter` and `misfire_grace_time` (seconds), and
`coalesce` (run missed fire times once instead of once each; default true).

`rewards/` may not import APScheduler, so cron expressions are checked by `check_cron_field`, which
accepts the APScheduler 3 grammar with APScheduler's ranges. It is deliberately a little stricter:
APScheduler matches month and weekday names by prefix, so it silently drops a step such as
``mon-fri/2``; here that is an error. Note APScheduler's weekday numbering: 0 is Monday.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rewards.catalog.problems import Issue, issues_from, raise_if, show
from rewards.catalog.rules import Number

TRIGGERS = ("cron", "interval", "date")
CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
CRON_RANGES: dict[str, tuple[int, int]] = {
    "year": (1970, 9999),
    "month": (1, 12),
    "day": (1, 31),
    "week": (1, 53),
    "day_of_week": (0, 6),
    "hour": (0, 23),
    "minute": (0, 59),
    "second": (0, 59),
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
POSITIONS = ("1st", "2nd", "3rd", "4th", "5th", "last")

_ALL = re.compile(r"\*(?:/(\d+))?")
_NUMBERS = re.compile(r"(\d+)(?:-(\d+))?(?:/(\d+))?")
_NAMES = re.compile(r"([a-z]+)(?:-([a-z]+))?")
_POSITION = re.compile(r"(1st|2nd|3rd|4th|5th|last) +([a-z]+)")
_SEPARATOR = re.compile(r" *, *")
_JOB_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")

_HINTS = {
    "year": "use a year such as 2026, a range 2026-2028, * or */2",
    "month": "use 1-12 or jan..dec, ranges like jan-mar, steps like */3, lists like 1,7",
    "day": 'use 1-31, ranges like 1-15, "last", or a weekday position such as "1st mon" or '
    '"last fri"',
    "week": "use ISO weeks 1-53, ranges like 1-26, steps like */2",
    "day_of_week": "use 0-6 (0 is Monday) or mon..sun, ranges like mon-fri, lists like mon,wed",
    "hour": "use 0-23, ranges like 9-17, steps like */2, lists like 9,16",
    "minute": "use 0-59, ranges like 0-30, steps like */15, lists like 0,30",
    "second": "use 0-59, ranges like 0-30, steps like */15, lists like 0,30",
}


def _check_step(step: int, span: int) -> None:
    if step == 0:
        raise ValueError("a step must be at least 1")
    if step > span:
        raise ValueError(f"the step {step} is larger than the range it steps through ({span})")


def _check_number(field: str, value: int) -> None:
    low, high = CRON_RANGES[field]
    if not low <= value <= high:
        raise ValueError(f"{value} is outside {low}-{high}")


def _name_index(field: str, name: str, names: tuple[str, ...]) -> int:
    if name not in names:
        kind = "month" if field == "month" else "weekday"
        raise ValueError(f'"{name}" is not a {kind} name ({", ".join(names)})')
    return names.index(name)


def _check_part(field: str, part: str) -> None:
    low, high = CRON_RANGES[field]
    if match := _ALL.fullmatch(part):
        if match[1] is not None:
            _check_step(int(match[1]), high - low)
        return
    if match := _NUMBERS.fullmatch(part):
        first = int(match[1])
        last = int(match[2]) if match[2] is not None else None
        _check_number(field, first)
        if last is not None:
            _check_number(field, last)
            if first > last:
                raise ValueError(f"the range {first}-{last} runs backwards")
        if match[3] is not None:
            _check_step(int(match[3]), (last if last is not None else high) - first)
        return
    if field in ("month", "day_of_week") and (match := _NAMES.fullmatch(part)):
        names = MONTHS if field == "month" else WEEKDAYS
        first = _name_index(field, match[1], names)
        if match[2] is not None and first > _name_index(field, match[2], names):
            raise ValueError(f'the range "{part}" runs backwards')
        return
    if field == "day":
        if part == "last":
            return
        if match := _POSITION.fullmatch(part):
            _name_index("day_of_week", match[2], WEEKDAYS)
            return
    raise ValueError(f'"{part}" is not a valid {field} expression; {_HINTS[field]}')


def check_cron_field(field: str, value: object) -> None:
    """Raise ValueError (with a sentence) unless `value` is a valid APScheduler 3 `field` value."""
    if field not in CRON_RANGES:
        raise ValueError(f'"{field}" is not a cron field ({", ".join(CRON_FIELDS)})')
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"must be a whole number or a cron expression string, got {show(value)}")
    text = str(value).strip().lower()
    if not text:
        raise ValueError(f"must not be empty; {_HINTS[field]}")
    for part in _SEPARATOR.split(text):
        _check_part(field, part)


def parse_datetime(value: object) -> datetime:
    """``YYYY-MM-DD HH:MM:SS``, ``YYYY-MM-DD`` or any ISO 8601 date-time (offset optional)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(
            f'must be a date-time string such as "2025-12-25 10:00:00", got {show(value)}'
        )
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            'must be "YYYY-MM-DD HH:MM:SS" or ISO 8601, such as "2025-12-25 10:00:00", '
            f"got {show(value)}"
        ) from None


def _cron_value(value: object, info: ValidationInfo) -> object:
    if value is not None:
        assert info.field_name is not None
        check_cron_field(info.field_name, value)
    return value


def _non_negative(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


CronValue = Annotated[int | str | None, BeforeValidator(_cron_value)]
DateTimeValue = Annotated[
    datetime | None, BeforeValidator(lambda v: None if v is None else parse_datetime(v))
]
Duration = Annotated[Number | None, BeforeValidator(_non_negative)]


def _zone_aware(moment: datetime, zone: str) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo(zone))


class CronSpec(BaseModel):
    """CronTrigger fields; unset fields follow APScheduler (finer fields than the coarsest one set
    take their minimum, coarser ones are `*`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    year: CronValue = None
    month: CronValue = None
    day: CronValue = None
    week: CronValue = None
    day_of_week: CronValue = None
    hour: CronValue = None
    minute: CronValue = None
    second: CronValue = None
    start_date: DateTimeValue = None
    end_date: DateTimeValue = None

    @model_validator(mode="after")
    def _sensible(self) -> CronSpec:
        if all(getattr(self, name) is None for name in CRON_FIELDS):
            raise ValueError(f"must set at least one of {', '.join(CRON_FIELDS)}")
        if self.start_date and self.end_date:
            start, end = self.start_date, self.end_date
            if (start.tzinfo is None) == (end.tzinfo is None) and end < start:
                raise ValueError("end_date is before start_date")
        return self

    def describe(self) -> str:
        return " ".join(
            f"{name}={getattr(self, name)}"
            for name in CRON_FIELDS
            if getattr(self, name) is not None
        )


class IntervalSpec(BaseModel):
    """IntervalTrigger lengths; at least one, all non-negative, adding up to more than zero."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weeks: Duration = None
    days: Duration = None
    hours: Duration = None
    minutes: Duration = None
    seconds: Duration = None

    def length(self) -> timedelta:
        return timedelta(
            weeks=self.weeks or 0,
            days=self.days or 0,
            hours=self.hours or 0,
            minutes=self.minutes or 0,
            seconds=self.seconds or 0,
        )

    @model_validator(mode="after")
    def _positive(self) -> IntervalSpec:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("must set at least one of weeks, days, hours, minutes, seconds")
        if self.length() <= timedelta(0):
            raise ValueError('must add up to more than zero, e.g. {"hours": 2}')
        return self

    def describe(self) -> str:
        parts = [
            f"{value} {name if value != 1 else name[:-1]}"
            for name in ("weeks", "days", "hours", "minutes", "seconds")
            if (value := getattr(self, name))
        ]
        return "every " + " ".join(parts)


# Which top-level keys belong to which trigger; a key of another trigger is an error.
_SECTION_OF: dict[str, str] = {
    "cron": "cron",
    "interval": "interval",
    "run_date": "date",
    "skip_past_dates": "date",
}
_REQUIRED: dict[str, str] = {"cron": "cron", "interval": "interval", "date": "run_date"}


def _lift_date_section(data: dict[str, Any]) -> dict[str, Any]:
    """The original's ``"date": {"run_date": ..., "skip_past_dates": ...}`` -> the README's form."""
    if "date" not in data:
        return data
    section = data["date"]
    if not isinstance(section, dict):
        raise ValueError(
            f'must be an object such as {{"run_date": "2025-12-25 10:00:00"}}, got {show(section)}'
        )
    lifted = {k: v for k, v in data.items() if k != "date"}
    for key, value in section.items():
        if key not in ("run_date", "skip_past_dates"):
            raise ValueError(f'"{key}" is not a date setting (run_date, skip_past_dates)')
        if key in lifted:
            raise ValueError(f"{key} is given both here and at the top of the job; give it once")
        lifted[key] = value
    return lifted


def _trigger_mismatches(data: dict[str, Any]) -> list[Issue]:
    """Sections that do not belong to the trigger, and the section the trigger needs, as issues
    located at the offending key (relative to the job)."""
    trigger = data.get("trigger")
    if trigger not in TRIGGERS:
        return []
    issues: list[Issue] = []
    for key, owner in _SECTION_OF.items():
        if key in data and data[key] is not None and owner != trigger:
            issues.append(
                (key, f'belongs to trigger "{owner}", but this job\'s trigger is "{trigger}"')
            )
    needed = _REQUIRED[str(trigger)]
    if data.get(needed) is None:
        issues.append((needed, f'required for trigger "{trigger}"'))
    return issues


class JobSpec(BaseModel):
    """A validated `job`. Build it with `collect_job` to get issues located field by field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trigger: Literal["cron", "interval", "date"]
    cron: CronSpec | None = None
    interval: IntervalSpec | None = None
    run_date: DateTimeValue = None
    skip_past_dates: StrictBool | None = None
    id: StrictStr | None = None
    name: StrictStr | None = Field(default=None, min_length=1, max_length=200)
    timezone: StrictStr | None = None
    jitter: StrictInt | None = Field(default=None, ge=0, le=86_400)
    misfire_grace_time: StrictInt | None = Field(default=None, ge=1, le=31_536_000)
    coalesce: StrictBool | None = None

    @model_validator(mode="before")
    @classmethod
    def _date_section(cls, data: Any) -> Any:
        return _lift_date_section(data) if isinstance(data, dict) else data

    @field_validator("id")
    @classmethod
    def _job_id(cls, value: str | None) -> str | None:
        if value is not None and not _JOB_ID.fullmatch(value):
            raise ValueError(f"must be 1-200 letters, digits or _ . : -, got {show(value)}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"must be an IANA time zone such as America/New_York, got {show(value)}"
                ) from None
        return value

    @model_validator(mode="after")
    def _matches_trigger(self) -> JobSpec:
        issues = _trigger_mismatches(self.model_dump(exclude_none=True))
        if issues:
            raise ValueError("; ".join(f"{field}: {message}" for field, message in issues))
        return self

    @property
    def skips_past_dates(self) -> bool:
        return bool(self.skip_past_dates)

    def with_default_id(self, reward_id: int) -> JobSpec:
        """The job with `id` set to ``reward_<reward_id>`` when the catalogue gave none."""
        return self if self.id else self.model_copy(update={"id": f"reward_{reward_id}"})

    def first_run(self, now: datetime, default_timezone: str = "UTC") -> datetime | None:
        """For a date job: the aware moment to run, or None when it is past and skip_past_dates.

        A past date without skip_past_dates is still returned: the job is due, and runs once (the
        scheduler claims each (job id, fire time) once, so a restart does not run it again). The
        original moved such a job to the same day next year, silently turning a one-time job
        into a yearly one.
        """
        if self.trigger != "date" or self.run_date is None:
            raise ValueError("first_run applies to date jobs only")
        moment = _zone_aware(self.run_date, self.timezone or default_timezone)
        if moment <= now and self.skips_past_dates:
            return None
        return moment

    def describe(self) -> str:
        if self.trigger == "cron" and self.cron is not None:
            text = f"cron {self.cron.describe()}"
        elif self.trigger == "interval" and self.interval is not None:
            text = self.interval.describe()
        else:
            when = self.run_date.isoformat(sep=" ") if self.run_date else "?"
            text = f"once at {when}" + (" (skipped if past)" if self.skips_past_dates else "")
        return text + (f" ({self.timezone})" if self.timezone else "")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        if self.run_date is not None:
            data["run_date"] = self.run_date.isoformat(sep=" ")
        return data


def collect_job(raw: object, where: str = "job") -> tuple[JobSpec | None, list[Issue]]:
    """Validate a `job` value, locating every issue (``job.cron.hour``, ``job.interval``...)."""
    if raw is None:
        return None, []
    if not isinstance(raw, dict):
        return None, [
            (
                where,
                'must be an object such as {"trigger": "cron", "cron": {"hour": 9}}, '
                f"got {show(raw)}",
            )
        ]
    try:
        data = _lift_date_section(raw)
    except ValueError as error:
        return None, [(f"{where}.date", str(error))]
    issues: list[Issue] = []
    if "trigger" not in data:
        issues.append((f"{where}.trigger", "required: cron, interval or date"))
    mismatches = [(f"{where}.{key}", message) for key, message in _trigger_mismatches(data)]
    issues.extend(mismatches)
    try:
        return JobSpec.model_validate(data), issues
    except ValidationError as error:
        found = issues_from(error, where, JobSpec)
        # The model repeats the trigger checks as one sentence; the located ones above are better.
        found = [
            (field, message)
            for field, message in found
            if not (field == f"{where}.trigger" and message == "required" and "trigger" not in data)
            and not (field == where and mismatches)
        ]
        return None, issues + found


def parse_job(raw: object, *, reward_id: object = "-") -> JobSpec | None:
    """Validate a `job` value; raise `CatalogError` listing every problem."""
    job, issues = collect_job(raw)
    raise_if(reward_id, issues)
    return job

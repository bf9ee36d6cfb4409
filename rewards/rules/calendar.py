"""Calendar rules: Birthday, WorkAnniversary and EmploymentDuration.

Each evaluator loads, in ONE query, the active members who have not opted out of celebrations and
whose birthday (or hire) month/day lies in the window of UTC dates around `ctx.now` (the day before
to the day after: every zone's local date is in that window), then decides per member in Python
with the member's own zone (falling back to the organisation's `TIMEZONE`).

29 February: in a common year a 29 February birthday or hire date is celebrated on 28 February
(the original never matched it outside leap years, so those members were silently skipped). In a
leap year it is celebrated on 29 February only, not also on the 28th.

Weekends (``CELEBRATION_WEEKEND_POLICY``): with ``on_day`` (the default) a date is celebrated on
the day itself. With ``friday_before`` an occurrence falling on a Saturday or Sunday in the
member's zone is celebrated on the Friday before it, with ``monday_after`` on the Monday after it,
so nobody's birthday passes unnoticed while the office is empty. The shift can cross a month or
year end (a Sunday 1 January birthday is celebrated on Friday 30 December with
``friday_before``), and it applies after the 29 February rule (a 28 February stand-in on a
Saturday moves too).

Candidate keys name the occurrence, not the day it is celebrated on (``birthday:2027``,
``anniversary:5``), so a re-run of the same day, of the next day in another zone, or of the shifted
day, can never award twice. args carry the occurrence (``birthday`` / ``anniversary``) and, when a
weekend moved it, the day it is celebrated (``celebrated_on``).
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, extract, false, or_
from sqlmodel import col, select

from rewards.catalog.rules import EmploymentDuration, WorkAnniversary
from rewards.clock import as_utc, local_today
from rewards.privacy.preferences import celebrated
from rewards.rules.base import Candidate, EvalContext
from rewards.store.models import Member

_FEB = 2


def observed_day(month: int, day: int, year: int) -> tuple[int, int]:
    """The (month, day) a yearly date is celebrated on in `year`: 29 February becomes
    28 February in a common year; every other date is itself."""
    if (month, day) == (_FEB, 29) and not _calendar.isleap(year):
        return (_FEB, 28)
    return (month, day)


_FRIDAY, _SATURDAY = 4, 5


def celebrated_on(occurrence: date, policy: str) -> date:
    """The day an occurrence is celebrated under the weekend `policy` (see the module docstring)."""
    weekday = occurrence.weekday()
    if weekday < _SATURDAY or policy == "on_day":
        return occurrence
    if policy == "friday_before":
        return occurrence - timedelta(days=weekday - _FRIDAY)
    return occurrence + timedelta(days=7 - weekday)


def occurrence_celebrated(month: int, day: int, today: date, policy: str) -> date | None:
    """The occurrence of a yearly (month, day) that is celebrated on `today`, or None.

    The shifted day can fall in the neighbouring year, so three years are tried.
    """
    for year in (today.year - 1, today.year, today.year + 1):
        observed = observed_day(month, day, year)
        occurrence = date(year, *observed)
        if celebrated_on(occurrence, policy) == today:
            return occurrence
    return None


def _moved(occurrence: date, today: date) -> dict[str, str]:
    """``celebrated_on`` when a weekend moved the celebration, else nothing."""
    return {} if occurrence == today else {"celebrated_on": today.isoformat()}


def _window(ctx: EvalContext) -> list[tuple[int, int]]:
    """Stored (month, day) pairs that could be celebrated on some local date around `ctx.now`
    (two more days each way when weekends move celebrations)."""
    today = as_utc(ctx.now).date()
    reach = 1 if ctx.settings.weekend_policy == "on_day" else 3
    pairs: set[tuple[int, int]] = set()
    for offset in range(-reach, reach + 1):
        day = today + timedelta(days=offset)
        pairs.add((day.month, day.day))
        if (day.month, day.day) == (_FEB, 28) and not _calendar.isleap(day.year):
            pairs.add((_FEB, 29))
    return sorted(pairs)


def _matches(month: Any, day: Any, pairs: Sequence[tuple[int, int]]) -> ColumnElement[bool]:
    if not pairs:
        return false()
    return or_(*(and_(month == m, day == d) for m, d in pairs))


def _celebrated() -> ColumnElement[bool]:
    """Active and celebrated publicly or privately (`rewards.privacy`: "off" is left out here;
    "private" is told by direct message only, when the celebration is announced)."""
    return celebrated(Member.__table__)  # type: ignore[attr-defined]


async def birthdays(ctx: EvalContext) -> list[Candidate]:
    """Members whose birthday is today in their own zone (29 February: see the module docstring).

    Key ``birthday:{local year}``; args ``birthday`` (the local date, ISO).
    """
    month = col(Member.birthday_month)
    day = col(Member.birthday_day)
    query = (
        select(col(Member.id), month, day, col(Member.timezone))
        .where(_celebrated(), _matches(month, day, _window(ctx)))
        .order_by(col(Member.id))
    )
    async with ctx.db.read() as session:
        rows = (await session.execute(query)).all()
    found: list[Candidate] = []
    policy = ctx.settings.weekend_policy
    for member_id, b_month, b_day, tz in rows:
        if member_id is None or b_month is None or b_day is None:  # pragma: no cover
            continue
        today = local_today(ctx.now, tz, ctx.settings.timezone)
        occurrence = occurrence_celebrated(b_month, b_day, today, policy)
        if occurrence is not None:
            found.append(
                Candidate(
                    member_id=member_id,
                    key=f"birthday:{occurrence.year}",
                    args={"birthday": occurrence.isoformat(), **_moved(occurrence, today)},
                )
            )
    return found


async def _anniversaries(ctx: EvalContext, years: int | None) -> list[Candidate]:
    """Members on a work anniversary today (every one, or only the `years`-th)."""
    hire = col(Member.hire_date)
    month = extract("month", hire)
    day = extract("day", hire)
    query = (
        select(col(Member.id), hire, col(Member.timezone))
        .where(_celebrated(), hire.is_not(None), _matches(month, day, _window(ctx)))
        .order_by(col(Member.id))
    )
    async with ctx.db.read() as session:
        rows = (await session.execute(query)).all()
    found: list[Candidate] = []
    policy = ctx.settings.weekend_policy
    for member_id, hired, tz in rows:
        if member_id is None or not isinstance(
            hired, date
        ):  # pragma: no cover - defensive against raw drivers
            continue
        today = local_today(ctx.now, tz, ctx.settings.timezone)
        occurrence = occurrence_celebrated(hired.month, hired.day, today, policy)
        if occurrence is None:
            continue
        completed = occurrence.year - hired.year
        if completed < 1 or (years is not None and completed != years):
            continue
        found.append(
            Candidate(
                member_id=member_id,
                key=f"anniversary:{completed}",
                args={
                    "years_employed": completed,
                    "hire_date": hired.isoformat(),
                    "anniversary": occurrence.isoformat(),
                    **_moved(occurrence, today),
                },
            )
        )
    return found


async def work_anniversaries(ctx: EvalContext, rule: WorkAnniversary) -> list[Candidate]:
    """Members completing exactly `rule.years` years today (the anniversary day itself, not every
    day after it as in the original)."""
    return await _anniversaries(ctx, rule.years)


async def employment_anniversaries(ctx: EvalContext, rule: EmploymentDuration) -> list[Candidate]:
    """Members on any yearly work anniversary today, or only the `rule.years`-th when set.

    args: ``years_employed``, ``hire_date``, ``anniversary``.
    """
    return await _anniversaries(ctx, rule.years)

"""AttendanceRule: who attended over a period, from an attendance data set.

Data: `attendance_record(dataset, member_id, day, present)`, loaded by
`rewards attendance import` (`filter_by` is kept for catalogue compatibility; the day column is
always `attendance_record.day`).

Window. All dates are in the organisation's zone (`TIMEZONE`); `today` is the evaluation moment's
date there and the window never reaches today or any later day (the original counted future days,
so "perfect month" could only pass on the month's last day):

- `unit: day` (fixed or rolling): the last `count` complete days, `today - count` to yesterday.
- rolling `week`: the last `7 * count` days, `today - 7*count` to yesterday.
- rolling `month`: from the same day-of-month `count` months ago (clamped to that month's last
  day) to yesterday; on 2026-11-18 with `count: 1` that is 2026-10-18 to 2026-11-17.
- fixed `week`: the `count` complete ISO weeks (Monday to Sunday) before the current week.
- fixed `month`: the `count` complete calendar months before the current month; `count: 1` on
  any day of November is 1 to 31 October.
- fixed `week`/`month` with `partial_period: true`: the current period so far plus the
  `count - 1` periods before it, that is from the first day of the earliest of those periods to
  yesterday. On the first day of a period with `count: 1` the window is empty and nobody is judged.

Judgement:
- expected days = the calendar days of the window (Monday to Friday only with `only_weekdays`);
  when there are none, nobody is judged;
- present days = expected days with a `present` record; missed = expected - present (a missing
  record counts as a missed day, like a record with `present` false);
- `perfect`: no missed day; `partial`: missed days <= `deviation`;
- only active members with at least one record of the data set inside the window are judged: the
  others have no data, and are neither rewarded nor counted as absent.

One grouped query counts the present expected days per member; when passing needs at least one
present day (always, unless `deviation` covers the whole window) it counts only present days and
keeps, with ``HAVING``, the members with enough of them, so only winners come back.
A candidate's key is `attendance:{window_start}:{window_end}` (ISO dates), and its args are
`present_days`, `expected_days`, `missed_days`, `window_start` and `window_end`.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

from sqlalchemy import and_, case, func, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from rewards.catalog.rules import AttendanceRule
from rewards.clock import local_today
from rewards.rules.base import Candidate, EvalContext
from rewards.store.db import Database
from rewards.store.models import AttendanceRecord, Member


def add_months(day: date, months: int) -> date:
    """`day` moved by `months` calendar months, clamped to the target month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def attendance_window(rule: AttendanceRule, today: date) -> tuple[date, date]:
    """The inclusive (start, end) of the window judged on `today` (see the module docstring).

    Start is after end when the window is empty (a partial period on its first day).
    """
    yesterday = today - timedelta(days=1)
    if rule.unit == "day":
        return today - timedelta(days=rule.count), yesterday
    if rule.period_type == "rolling":
        if rule.unit == "week":
            return today - timedelta(days=7 * rule.count), yesterday
        return add_months(today, -rule.count), yesterday
    if rule.unit == "week":
        current = today - timedelta(days=today.weekday())
        if rule.partial_period:
            return current - timedelta(days=7 * (rule.count - 1)), yesterday
        return current - timedelta(days=7 * rule.count), current - timedelta(days=1)
    current = today.replace(day=1)
    if rule.partial_period:
        return add_months(current, -(rule.count - 1)), yesterday
    return add_months(current, -rule.count), current - timedelta(days=1)


def expected_days(start: date, end: date, *, only_weekdays: bool) -> int:
    """Calendar days from `start` to `end` inclusive (Monday to Friday only if asked)."""
    if end < start:
        return 0
    total = (end - start).days + 1
    if not only_weekdays:
        return total
    weeks, rest = divmod(total, 7)
    extra = sum(1 for i in range(rest) if (start + timedelta(days=i)).weekday() < 5)
    return weeks * 5 + extra


def weekend_days(start: date, end: date) -> list[date]:
    """The Saturdays and Sundays from `start` to `end` inclusive."""
    first = start - timedelta(days=(start.weekday() - 5) % 7)  # the Saturday on or before
    days: list[date] = []
    while first <= end:
        days += [d for d in (first, first + timedelta(days=1)) if start <= d <= end]
        first += timedelta(days=7)
    return days


def _on_weekdays(start: date, end: date) -> ColumnElement[bool]:
    """Records on a weekday of the window, as "not one of the window's weekend dates": a
    comparison of the stored date with a few constants, where the day of the week computed per
    row (``extract(isodow ...)``, a numeric on PostgreSQL) cost ~10% of the scan of 2M rows."""
    weekend = weekend_days(start, end)
    return col(AttendanceRecord.day).not_in(weekend) if weekend else true()


async def attendance(ctx: EvalContext, rule: AttendanceRule) -> list[Candidate]:
    """The members whose attendance in the rule's window matches it (see the module docstring)."""
    today = local_today(ctx.now, ctx.settings.timezone)
    start, end = attendance_window(rule, today)
    expected = expected_days(start, end, only_weekdays=rule.only_weekdays)
    if expected == 0:
        return []
    allowed = (rule.deviation or 0) if rule.match == "partial" else 0
    counted: ColumnElement[bool] = col(AttendanceRecord.present).is_(True)
    if rule.only_weekdays:
        counted = and_(counted, _on_weekdays(start, end))
    member_id = col(AttendanceRecord.member_id)
    day = col(AttendanceRecord.day)
    inactive = select(col(Member.id)).where(col(Member.active).is_(False))
    in_window = [
        col(AttendanceRecord.dataset) == rule.dataset,
        day >= start,
        day <= end,
        member_id.not_in(inactive),  # a few inactive members, not a join with everyone
    ]
    needed = expected - allowed
    if needed > 0:
        # Passing needs at least one present day, and so a record: count only the present
        # (expected) days and let the database keep the members with enough of them.
        statement = (
            select(member_id, func.count())
            .where(*in_window, counted)
            .group_by(member_id)
            .having(func.count() >= needed)
            .order_by(member_id)
        )
    else:
        # Everyone with a record passes, even with no present day: count over all records.
        statement = (
            select(member_id, func.sum(case((counted, 1), else_=0)))
            .where(*in_window)
            .group_by(member_id)
            .order_by(member_id)
        )
    async with ctx.db.read() as session:
        rows = (await session.execute(statement)).all()
    key = f"attendance:{start.isoformat()}:{end.isoformat()}"
    chosen: list[Candidate] = []
    for row in rows:
        present = int(row[1] or 0)
        missed = expected - present
        if missed <= allowed:
            chosen.append(
                Candidate(
                    member_id=int(row[0]),
                    key=key,
                    args={
                        "present_days": present,
                        "expected_days": expected,
                        "missed_days": missed,
                        "window_start": start.isoformat(),
                        "window_end": end.isoformat(),
                    },
                )
            )
    return chosen


async def upsert_attendance(db: Database, dataset: str, rows: list[tuple[int, date, bool]]) -> int:
    """Insert or update `(member_id, day, present)` records of `dataset` in one transaction."""
    if not rows:
        return 0
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    values = [{"dataset": dataset, "member_id": m, "day": d, "present": p} for m, d, p in rows]
    async with db.write() as session:
        for chunk in range(0, len(values), 500):
            statement = insert(AttendanceRecord).values(values[chunk : chunk + 500])
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=["dataset", "member_id", "day"],
                    set_={"present": statement.excluded.present},
                )
            )
    return len(values)


async def known_members(
    db: Database, emails: set[str], ids: set[int]
) -> tuple[dict[str, int], set[int]]:
    """The member ids of the given (normalised) emails, and which of the given ids exist."""
    by_email: dict[str, int] = {}
    existing: set[int] = set()
    async with db.read() as session:
        email_list = sorted(emails)
        for chunk in range(0, len(email_list), 500):
            part = email_list[chunk : chunk + 500]
            found = await session.execute(
                select(col(Member.id), col(Member.email)).where(col(Member.email).in_(part))
            )
            by_email.update({str(row[1]): row[0] for row in found if row[0] is not None})
        id_list = sorted(ids)
        for chunk in range(0, len(id_list), 500):
            part_ids = id_list[chunk : chunk + 500]
            found = await session.execute(
                select(col(Member.id)).where(col(Member.id).in_(part_ids))
            )
            existing.update(row[0] for row in found if row[0] is not None)
    return by_email, existing

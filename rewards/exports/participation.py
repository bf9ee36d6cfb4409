"""`participation`: per department and month, how many people gave and received kudos.

Bonusly's "participation by department": for each department (the member's current one; "" for
members without) and each calendar month in `TIMEZONE`, the active members of the department
today, the members who gave at least one kudos, who received at least one, the kudos they gave
(messages, one per kudos whatever its number of receivers) and received (one per receiver).

Months are bucketed in SQL with one CASE over the month boundaries of the window computed here
in the organisation's zone, the same on SQLite and PostgreSQL; the result is a handful of rows
per department, so it is read whole.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, literal, select
from sqlmodel import col

from rewards.clock import as_utc
from rewards.errors import InvalidInput
from rewards.exports.window import Window, local_midnight
from rewards.store.db import Database
from rewards.store.models import Kudos, KudosReceiver, Member

# More months than this would make the CASE unwieldy; an export of more is refused.
MAX_MONTHS = 240


def _months(first: date, last: date) -> list[date]:
    months, day = [], first.replace(day=1)
    while day <= last:
        months.append(day)
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return months


async def _span(db: Database, window: Window) -> tuple[date, date] | None:
    """The window's first and last local day; an open end is where the kudos start or stop."""
    first, last = window.first, window.last
    if first is None or last is None:
        async with db.read() as session:
            low, high = (
                await session.execute(
                    select(func.min(col(Kudos.created_at)), func.max(col(Kudos.created_at))).where(
                        *window.where(col(Kudos.created_at))
                    )
                )
            ).one()
        if low is None or high is None:
            return None
        zone = ZoneInfo(window.timezone)
        first = first or as_utc(low).astimezone(zone).date()
        last = last or as_utc(high).astimezone(zone).date()
    return first, last


def _bucket(column: Any, months: list[date], timezone: str) -> Any:
    whens = []
    for start in months:
        following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        whens.append(
            (
                (column >= local_midnight(start, timezone))
                & (column < local_midnight(following, timezone)),
                literal(f"{start:%Y-%m}"),
            )
        )
    return case(*whens, else_=literal(""))


async def participation_rows(db: Database, window: Window) -> list[tuple[Any, ...]]:
    span = await _span(db, window)
    if span is None:
        return []
    months = _months(*span)
    if len(months) > MAX_MONTHS:
        raise InvalidInput(f"Participation covers at most {MAX_MONTHS} months; give --from/--to.")
    department = func.coalesce(col(Member.department), "")
    given_month = _bucket(col(Kudos.created_at), months, window.timezone).label("month")
    given = (
        select(
            department.label("department"),
            given_month,
            func.count(func.distinct(col(Kudos.giver_id))),
            func.count(col(Kudos.id)),
        )
        .join(Member, col(Member.id) == col(Kudos.giver_id))
        .where(*window.where(col(Kudos.created_at)))
        .group_by(department, given_month)
    )
    received_month = _bucket(col(KudosReceiver.created_at), months, window.timezone).label("month")
    received = (
        select(
            department.label("department"),
            received_month,
            func.count(func.distinct(col(KudosReceiver.member_id))),
            func.count(),
        )
        .join(Member, col(Member.id) == col(KudosReceiver.member_id))
        .where(*window.where(col(KudosReceiver.created_at)))
        .group_by(department, received_month)
    )
    headcount = (
        select(department, func.count()).where(col(Member.active).is_(True)).group_by(department)
    )
    table: dict[tuple[str, str], list[int]] = {}
    async with db.read() as session:
        for dept, month, people, kudos in (await session.execute(given)).all():
            if month:
                table.setdefault((dept, month), [0, 0, 0, 0])[0:2] = [people, kudos]
        for dept, month, people, kudos in (await session.execute(received)).all():
            if month:
                cells = table.setdefault((dept, month), [0, 0, 0, 0])
                cells[2], cells[3] = people, kudos
        members = {dept: int(n) for dept, n in (await session.execute(headcount)).all()}
    return [
        (dept, month, members.get(dept, 0), givers, receivers, kudos_given, kudos_received)
        for (dept, month), (givers, kudos_given, receivers, kudos_received) in sorted(table.items())
    ]

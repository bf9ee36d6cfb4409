"""The giving allowance: how many kudos a person may give per day, week or month.

The unit is one kudos to one person: kudos to three people use three (as HeyTaco counts tacos),
so "2 of 5 left today" means two more people can be thanked whatever `KUDOS_POINTS` is worth.
`KUDOS_ALLOWANCE` is the limit (unset: unlimited), `KUDOS_ALLOWANCE_PERIOD` the period, which
starts at midnight in the giver's own time zone (their member record's, else `TIMEZONE`; weeks
start on Monday); what is not used is lost when the next period starts. Per-role overrides
(`KUDOS_ALLOWANCE_OVERRIDES`: `job_code:MANAGER=unlimited, group:interns=3`) are tried in the
order written and the first that matches the giver wins.

What a giver used lives in one row per giver (`kudos_allowance`: the period's key and the count).
Spending is one conditional upsert in the kudos' own transaction: it adds the cost only while
the total stays within the limit and returns the new total, or no row when it would not. The
conflicting row is locked until the transaction ends (PostgreSQL's ON CONFLICT DO UPDATE; SQLite
has one writer at a time), so concurrent kudos from one giver can never spend more than allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, case, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from rewards.catalog.permissions import Subject
from rewards.clock import local_now
from rewards.errors import NotAllowed
from rewards.settings import Settings
from rewards.store.models import KudosAllowance

TABLE = KudosAllowance.__table__  # type: ignore[attr-defined]
# How a period reads in a sentence ("3 of 5 left today").
PERIOD_WORDS = {"day": "today", "week": "this week", "month": "this month"}


class AllowanceSpent(NotAllowed):
    """A kudos the giver's allowance cannot pay for; the sentence says what is left and when
    it resets."""

    code = "allowance-spent"


@dataclass(frozen=True)
class Period:
    """The giver's current allowance period: its key (stored with what was used) and when the
    next one starts."""

    kind: str  # day | week | month
    key: str  # e.g. "day:2026-12-07", in the giver's zone
    resets_at: datetime  # UTC


@dataclass(frozen=True)
class AllowanceLeft:
    """What a giver may still give this period."""

    limit: int
    used: int
    period: Period

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)

    def describe(self, now: datetime) -> str:
        """ "3 of 5 today, resets in 4 h" (after "allowance left:" on cards)."""
        word = PERIOD_WORDS[self.period.kind]
        return f"{self.left} of {self.limit} {word}, resets in {until(self.period.resets_at, now)}"


def until(moment: datetime, now: datetime) -> str:
    """A short human span: "25 min", "4 h", "3 days"."""
    minutes = max(1, math.ceil((moment - now).total_seconds() / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours = max(1, round(minutes / 60))
    if hours < 48:
        return f"{hours} h"
    return f"{round(hours / 24)} days"


def current_period(kind: str, tz_name: str | None, fallback: str, now: datetime) -> Period:
    """The period containing `now` in the giver's zone (`tz_name`, else `fallback`)."""
    local = local_now(now, tz_name, fallback)
    day = local.date()
    if kind == "day":
        start, following = day, day + timedelta(days=1)
    elif kind == "week":
        start = day - timedelta(days=day.weekday())
        following = start + timedelta(days=7)
    else:
        start = day.replace(day=1)
        following = (start + timedelta(days=32)).replace(day=1)
    resets = datetime(following.year, following.month, following.day, tzinfo=local.tzinfo)
    return Period(kind, f"{kind}:{start.isoformat()}", resets.astimezone(UTC))


@cache
def _rules(overrides: tuple[str, ...]) -> tuple[tuple[str, str, int | None], ...]:
    """The overrides as (kind, value case-folded, limit); `Settings` wrote them canonically."""
    rules = []
    for rule in overrides:
        who, _, limit = rule.rpartition("=")
        kind, _, value = who.partition(":")
        rules.append((kind, value.casefold(), None if limit == "unlimited" else int(limit)))
    return tuple(rules)


def _matches(kind: str, value: str, subject: Subject) -> bool:
    if kind == "job_code":
        return (subject.job_code or "").casefold() == value
    if kind == "department":
        return (subject.department or "").casefold() == value
    return value in {group.casefold() for group in subject.groups}


def limit_for(settings: Settings, subject: Subject) -> int | None:
    """The giver's allowance per period: the first override that matches them, else
    `KUDOS_ALLOWANCE`; None is unlimited."""
    for kind, value, limit in _rules(settings.kudos_allowance_overrides):
        if _matches(kind, value, subject):
            return limit
    return settings.kudos_allowance


@cache
def _spend_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO UPDATE … WHERE total <= limit RETURNING used, built once per
    dialect (the syntax is the same on SQLite and PostgreSQL; the builders differ)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(TABLE).values(
        giver_id=bindparam("giver_id"), period=bindparam("period"), used=bindparam("cost")
    )
    new = statement.excluded
    total = case((TABLE.c.period == new.period, TABLE.c.used + new.used), else_=new.used)
    return statement.on_conflict_do_update(
        index_elements=[TABLE.c.giver_id],
        set_={"period": new.period, "used": total},
        where=total <= bindparam("limit"),
    ).returning(TABLE.c.used)


async def spend(
    session: AsyncSession, giver_id: int, period: Period, cost: int, limit: int
) -> AllowanceLeft | None:
    """Use `cost` of the giver's allowance in the caller's transaction: what is left after it,
    or None (nothing written) when what is left does not cover it. One statement."""
    if cost > limit:  # the first kudos of a period inserts without a check: refuse it here
        return None
    used = (
        await session.execute(
            _spend_statement(session.get_bind().dialect.name),
            {"giver_id": giver_id, "period": period.key, "cost": cost, "limit": limit},
        )
    ).scalar_one_or_none()
    return None if used is None else AllowanceLeft(limit, int(used), period)


async def used_in(session: AsyncSession, giver_id: int, period: Period) -> int:
    """What the giver used in `period` (0 once a new period has started)."""
    row = (
        await session.execute(
            select(TABLE.c.period, TABLE.c.used).where(TABLE.c.giver_id == giver_id)
        )
    ).first()
    return int(row.used) if row is not None and row.period == period.key else 0


def refusal(left: AllowanceLeft, cost: int, now: datetime) -> AllowanceSpent:
    """The polite no: what is left of how much, and when it resets."""
    word = PERIOD_WORDS[left.period.kind]
    span = until(left.period.resets_at, now)
    if left.limit == 0:
        return AllowanceSpent("Your role has no kudos allowance, so you can't give kudos.")
    head = f"Kudos to {cost} people use {cost} of your allowance. " if cost > 1 else ""
    return AllowanceSpent(
        f"{head}You have {left.left} of {left.limit} kudos left {word}; it resets in {span}."
    )


async def allowance_left(
    session: AsyncSession, settings: Settings, subject: Subject, tz_name: str | None, now: datetime
) -> AllowanceLeft | None:
    """What a member may still give this period (None: unlimited), for `/me` and the form."""
    limit = limit_for(settings, subject)
    if limit is None:
        return None
    period = current_period(settings.kudos_allowance_period, tz_name, settings.timezone, now)
    return AllowanceLeft(limit, await used_in(session, subject.id, period), period)

"""AchievementRule: call a registered achievement function for every active member and compare its
result with the rule's threshold.

Functions keep the seed's shape, ``async def f(user, env, conn, **params)``:

- `user` is a `MemberInfo` (``id``, and the seed's ``user_id`` alias, email, name, zone...);
- `env` is a `MemberEnv`: ``today`` in the member's own zone, and the reward's period
  ``start_date`` / ``end_date`` (half-open, UTC; see `reward_period`);
- `conn` is a `SqlConnection`: ``fetchval`` / ``fetchrow`` / ``fetch`` run the seed's ``$1, $2``
  placeholder SQL on our database, SQLite or PostgreSQL, as bound parameters (never by string
  formatting, so a value can never change the statement).

A function registered with a batch form (`rewards.functions.registry`) is called ONCE for the
whole population, which is what lets the sweep judge 100,000 members; any other function is called
per member, at most `PER_MEMBER_CONCURRENCY` at a time so a slow function cannot exhaust the
connection pool.

Candidate key: ``achievement:{period label}`` (the reward's timeframe bucket in the organisation's
zone, else the month), so a repeatable achievement is earned at most once per period however often
the sweep runs. args: ``value`` (what the function returned) and ``threshold``.
"""

from __future__ import annotations

import asyncio
import operator
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.catalog.rules import AchievementRule
from rewards.clock import as_utc, local_now, local_today, timeframe_bucket, zone
from rewards.functions.registry import FunctionKind, FunctionRegistry
from rewards.rules.attendance import add_months
from rewards.rules.base import Candidate, EvalContext
from rewards.store.db import Database
from rewards.store.models import Member

PER_MEMBER_CONCURRENCY = 8
# Above this many ids `active_members` reads the active population and filters in Python.
IN_LIST_LIMIT = 1000

COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
    "eq": operator.eq,
    "ne": operator.ne,
}

_PLACEHOLDER = re.compile(r"\$(\d+)")


# --- the reward's period ----------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A reward's current period in the organisation's zone: instants (UTC, half-open) for
    functions that compare timestamps, local dates (``first_day`` <= d < ``end_day``) for data
    sets keyed by day, and the label its candidates' keys use."""

    start: datetime
    end: datetime
    first_day: date
    end_day: date
    label: str


def _midnight(day: date, tz_name: str) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone(tz_name)).astimezone(UTC)


def reward_period(timeframe: str | None, now: datetime, tz_name: str) -> Period:
    """The period of a reward with `timeframe` (None: the calendar month) containing `now`."""
    kind = timeframe or "monthly"
    label = timeframe_bucket(kind, now, None, tz_name)
    local = local_now(now, tz_name)
    day = local.date()
    if kind == "hourly":
        start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        end = start + timedelta(hours=1)
        return Period(start, end, day, day + timedelta(days=1), label)
    if kind == "daily":
        first, after = day, day + timedelta(days=1)
    elif kind == "weekly":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    elif kind == "biweekly":
        year, week, _ = day.isocalendar()
        first = date.fromisocalendar(year, week - (week - 1) % 2, 1)
        after = first + timedelta(days=14)
    elif kind == "quarterly":
        first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        after = add_months(first, 3)
    elif kind == "yearly":
        first, after = date(day.year, 1, 1), date(day.year + 1, 1, 1)
    else:
        first = day.replace(day=1)
        after = add_months(first, 1)
    return Period(_midnight(first, tz_name), _midnight(after, tz_name), first, after, label)


# --- what functions receive -------------------------------------------------------------------


@dataclass(frozen=True)
class MemberInfo:
    """The `user` a function receives. ``user_id`` is the seed's name for ``id``."""

    id: int
    email: str | None
    display_name: str
    timezone: str | None
    job_code: str | None
    department: str | None

    @property
    def user_id(self) -> int:
        return self.id


@dataclass(frozen=True)
class MemberEnv:
    """The `env` of one call: the member's local today and the reward's period."""

    today: date
    start_date: datetime
    end_date: datetime


@dataclass(frozen=True)
class BatchEnv:
    """The `env` of a batch call: every member's own today, and the reward's period."""

    todays: dict[int, date]
    start_date: datetime
    end_date: datetime

    def today_for(self, member_id: int) -> date:
        return self.todays[member_id]


@dataclass(frozen=True)
class PopulationEnv:
    """The `env` of a passing form: today in any zone, and the reward's period."""

    now: datetime
    org_timezone: str
    start_date: datetime
    end_date: datetime

    def today_in(self, zone_name: str | None) -> date:
        return local_today(self.now, zone_name, self.org_timezone)


class SqlConnection:
    """The seed's asyncpg-style connection over our `Database`.

    ``$n`` placeholders become bound parameters; on SQLite dates and datetimes are passed as the
    text SQLAlchemy stores them as, so comparisons with stored columns behave as on PostgreSQL.
    Each call uses its own short read transaction, so concurrent per-member calls are safe;
    given a `session`, every call runs on it instead (one transaction for a few members' calls
    made one after another, as the event hooks' workflow evaluation does).
    """

    def __init__(self, db: Database, session: AsyncSession | None = None) -> None:
        self.db = db
        self.session = session

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        if self.session is not None:
            yield self.session
            return
        async with self.db.read() as session:
            yield session

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def _bind(self, value: object) -> object:
        if self.db.dialect != "sqlite":
            return value
        if isinstance(value, datetime):
            return as_utc(value).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        if isinstance(value, date):
            return value.isoformat()
        return value

    def _statement(self, sql: str, args: Sequence[object]) -> tuple[Any, dict[str, object]]:
        params = {f"p{i}": self._bind(value) for i, value in enumerate(args, start=1)}
        return text(_PLACEHOLDER.sub(lambda m: f":p{m.group(1)}", sql)), params

    async def fetch(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        statement, params = self._statement(sql, args)
        async with self._reading() as session:
            return [tuple(row) for row in (await session.execute(statement, params)).all()]

    async def fetchrow(self, sql: str, *args: object) -> tuple[Any, ...] | None:
        statement, params = self._statement(sql, args)
        async with self._reading() as session:
            row = (await session.execute(statement, params)).first()
        return tuple(row) if row is not None else None

    async def fetchval(self, sql: str, *args: object) -> object:
        row = await self.fetchrow(sql, *args)
        return row[0] if row else None


# --- evaluation -------------------------------------------------------------------------------


# The columns of a `MemberInfo`, in its fields' order (also read by the workflows' batch).
MEMBER_INFO_COLUMNS = (
    col(Member.id),
    col(Member.email),
    col(Member.display_name),
    col(Member.timezone),
    col(Member.job_code),
    col(Member.department),
)


async def active_members(db: Database, within: set[int] | None = None) -> list[MemberInfo]:
    """Active members by id (only those in `within`, when given: filtered in SQL, so asking
    about one member reads one row, never the population)."""
    query = (
        select(*MEMBER_INFO_COLUMNS).where(col(Member.active).is_(True)).order_by(col(Member.id))
    )
    small = within is not None and len(within) <= IN_LIST_LIMIT
    if within is not None and small:
        if not within:
            return []
        query = query.where(col(Member.id).in_(sorted(within)))
    async with db.read() as session:
        # On the session's connection: plain rows, without the ORM's loading layer (100,000
        # members are loaded for a population-wide rule).
        rows = (await (await session.connection()).execute(query)).all()
    members = [MemberInfo(int(r[0] or 0), r[1], str(r[2]), r[3], r[4], r[5]) for r in rows]
    if within is None or small:
        return members
    # A sweep's AND-ed set can be most of the population: one pass, filtered here, rather than
    # an IN list past SQLite's bound-parameter limit.
    return [m for m in members if m.id in within]


def passes(value: object, rule: AchievementRule) -> bool:
    """`value` compared with the rule's threshold; None (no data) counts as 0."""
    number = 0 if value is None else value
    if isinstance(number, bool):
        number = int(number)
    return bool(COMPARE[rule.operator](number, rule.threshold))


async def achievements(
    ctx: EvalContext,
    rule: AchievementRule,
    registry: FunctionRegistry,
    period: Period,
    *,
    within: set[int] | None = None,
) -> list[Candidate]:
    """Active members (in `within`, when given) whose function value passes the threshold."""
    entry = registry.get(rule.function_path, FunctionKind.ACHIEVEMENT)
    conn = SqlConnection(ctx.db)
    org = ctx.settings.timezone
    if within is None and entry.passing is not None:
        # The whole population, asked "who passes" in one query: no member loaded to be asked.
        found = await entry.passing(
            PopulationEnv(ctx.now, org, period.start, period.end),
            conn,
            operator=rule.operator,
            threshold=rule.threshold,
            **dict(rule.function_params),
        )
        if found is not None:
            return [
                Candidate(
                    member_id=member_id,
                    key=f"achievement:{period.label}",
                    args={"value": value, "threshold": rule.threshold},
                )
                for member_id, value in sorted(found.items())
                if passes(value, rule)
            ]
    members = await active_members(ctx.db, within)
    by_zone: dict[str | None, date] = {}  # a handful of zones among 100,000 members
    todays = {}
    for m in members:
        if m.timezone not in by_zone:
            by_zone[m.timezone] = local_today(ctx.now, m.timezone, org)
        todays[m.id] = by_zone[m.timezone]
    params = dict(rule.function_params)
    values: dict[int, object]
    if entry.batch is not None:
        batch_env = BatchEnv(todays, period.start, period.end)
        values = dict(await entry.batch(members, batch_env, conn, **params))
    else:
        # A few workers share one iterator over the members: bounded connections, and when a
        # function fails (its table does not exist, say) the TaskGroup cancels the other workers
        # and waits for them, so no session is left open behind the error.
        values = {}
        queue = iter(members)

        async def worker() -> None:
            for member in queue:
                env = MemberEnv(todays[member.id], period.start, period.end)
                values[member.id] = await entry.func(member, env, conn, **params)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(PER_MEMBER_CONCURRENCY, len(members))):
                    group.create_task(worker())
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None  # the function's own error, as a sentence
    return [
        Candidate(
            member_id=m.id,
            key=f"achievement:{period.label}",
            args={"value": values.get(m.id), "threshold": rule.threshold},
        )
        for m in members
        if passes(values.get(m.id), rule)
    ]

"""Recompute every leaderboard counter from the facts, in one transaction.

Used by `rewards leaderboard rebuild`, by start-up when the counters were never built (a database
migrated from before them) or were bucketed in another zone, and by the benchmark after its bulk
load. PostgreSQL buckets and sums in SQL (`AT TIME ZONE`, `date_trunc`): one INSERT ... SELECT
per family of dims (everything, categories, tags). SQLite cannot convert to a named zone: there
the facts are streamed as plain tuples, summed per local day in Python and written with bulk
inserts. Both must agree with what the writers add (`counters`);
tests/test_leaderboard_counters.py checks it on both databases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, insert, literal, null, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from rewards.clock import SystemClock, as_utc, zone
from rewards.leaderboards.counters import (
    BADGES,
    COUNTER,
    EVERYTHING,
    KUDOS_GIVEN,
    KUDOS_RECEIVED,
    METRICS,
    POINTS,
    Deltas,
    category_dim,
    tag_dim,
)
from rewards.store.db import Database
from rewards.store.models import (
    Award,
    Kudos,
    KudosReceiver,
    KudosTagLink,
    LeaderboardCounterState,
    LedgerEntry,
    Reward,
)

LEDGER = SQLModel.metadata.tables[LedgerEntry.__tablename__]
AWARD = SQLModel.metadata.tables[Award.__tablename__]
REWARD = SQLModel.metadata.tables[Reward.__tablename__]
KUDOS = SQLModel.metadata.tables[Kudos.__tablename__]
RECEIVER = SQLModel.metadata.tables[KudosReceiver.__tablename__]
TAG_LINK = SQLModel.metadata.tables[KudosTagLink.__tablename__]
STATE = SQLModel.metadata.tables[LeaderboardCounterState.__tablename__]
BATCH = 10_000


def _fact_queries() -> list[tuple[str, Any, Any]]:
    """(metric, dim maker, query) with query columns (member_id, value, time, dim key): every
    fact under every dim it counts in, matching what the writers add."""
    ledger_award = LEDGER.join(AWARD, AWARD.c.id == LEDGER.c.award_id).join(
        REWARD, REWARD.c.id == AWARD.c.reward_id
    )
    ledger_tag = LEDGER.join(TAG_LINK, TAG_LINK.c.kudos_id == LEDGER.c.kudos_id)
    live_award = AWARD.join(REWARD, REWARD.c.id == AWARD.c.reward_id)
    # Revoked kudos count neither as received nor as given (their points are reversed in the
    # ledger, which the points facts read as they are).
    received = RECEIVER.join(KUDOS, KUDOS.c.id == RECEIVER.c.kudos_id)
    receiver_tag = received.join(TAG_LINK, TAG_LINK.c.kudos_id == RECEIVER.c.kudos_id)
    giver_tag = KUDOS.join(TAG_LINK, TAG_LINK.c.kudos_id == KUDOS.c.id)
    standing = KUDOS.c.revoked_at.is_(None)
    one = literal(1)
    return [
        (
            POINTS,
            _everything,
            select(LEDGER.c.member_id, LEDGER.c.points, LEDGER.c.created_at, null()),
        ),
        (
            POINTS,
            _category,
            select(LEDGER.c.member_id, LEDGER.c.points, LEDGER.c.created_at, REWARD.c.category_id)
            .select_from(ledger_award)
            .where(REWARD.c.category_id.is_not(None)),
        ),
        (
            POINTS,
            _tag,
            select(
                LEDGER.c.member_id, LEDGER.c.points, LEDGER.c.created_at, TAG_LINK.c.tag
            ).select_from(ledger_tag),
        ),
        (
            BADGES,
            _optional_category,
            select(AWARD.c.member_id, one, AWARD.c.awarded_at, REWARD.c.category_id)
            .select_from(live_award)
            .where(AWARD.c.revoked_at.is_(None)),
        ),
        (
            KUDOS_RECEIVED,
            _everything,
            select(RECEIVER.c.member_id, one, RECEIVER.c.created_at, null())
            .select_from(received)
            .where(standing),
        ),
        (
            KUDOS_RECEIVED,
            _tag,
            select(RECEIVER.c.member_id, one, RECEIVER.c.created_at, TAG_LINK.c.tag)
            .select_from(receiver_tag)
            .where(standing),
        ),
        (
            KUDOS_GIVEN,
            _everything,
            select(KUDOS.c.giver_id, one, KUDOS.c.created_at, null()).where(standing),
        ),
        (
            KUDOS_GIVEN,
            _tag,
            select(KUDOS.c.giver_id, one, KUDOS.c.created_at, TAG_LINK.c.tag)
            .select_from(giver_tag)
            .where(standing),
        ),
    ]


async def _stream(session: AsyncSession, query: Any) -> AsyncIterator[list[Any]]:
    result = await session.stream(query.execution_options(yield_per=BATCH))
    async for partition in result.partitions(BATCH):
        yield list(partition)


def _everything(_: Any) -> tuple[str, ...]:
    return (EVERYTHING,)


def _category(category_id: int) -> tuple[str, ...]:
    return (category_dim(category_id),)


def _optional_category(category_id: int | None) -> tuple[str, ...]:
    """Badges: one query counts each award overall and, when it has one, in its category."""
    return (EVERYTHING,) if category_id is None else (EVERYTHING, category_dim(category_id))


def _tag(tag: str) -> tuple[str, ...]:
    return (tag_dim(tag),)


async def compute(session: AsyncSession, tz_name: str) -> Deltas:
    """Every counter's value, from the facts."""
    deltas = Deltas(tz_name)
    tz = zone(tz_name)
    days: dict[datetime, date] = {}
    for metric, dims_of, query in _fact_queries():
        async for rows in _stream(session, query):
            for member_id, value, at, raw_dim in rows:
                day = days.get(at)
                if day is None:
                    day = days[at] = as_utc(at).astimezone(tz).date()
                    if len(days) > 100_000:
                        days.clear()
                deltas.add_day(metric, member_id, day, value, dims_of(raw_dim))
    return deltas


async def rebuild_in(session: AsyncSession, tz_name: str, now: datetime) -> int:
    """Replace every counter inside the caller's transaction; returns the number of rows.

    On PostgreSQL the counters are locked first (writers' upserts wait, readers do not): a
    write committed after the facts were read would otherwise add to a counter the rebuild then
    replaces. On SQLite the write transaction already excludes every other writer.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("LOCK TABLE leaderboard_counter IN EXCLUSIVE MODE"))
        await session.execute(delete(COUNTER))
        count = await _rebuild_in_postgresql(session, tz_name)
    else:
        deltas = await compute(session, tz_name)
        await session.execute(delete(COUNTER))
        count = await _insert_sqlite(session, deltas)
    await session.execute(delete(STATE))
    await session.execute(insert(STATE).values(id=1, timezone=tz_name, rebuilt_at=now))
    return count


# PostgreSQL: the same facts as `_fact_queries`, as (member_id, value, at, dim) in SQL, by the
# dims they count in (everything, a category, a tag): the three families write disjoint keys.
_PG_FACTS = (
    (
        (POINTS, "SELECT member_id, points, created_at, '' FROM ledger_entry"),
        (BADGES, "SELECT member_id, 1, awarded_at, '' FROM award WHERE revoked_at IS NULL"),
        (
            KUDOS_RECEIVED,
            "SELECT r.member_id, 1, r.created_at, '' FROM kudos_receiver r "
            "JOIN kudos k ON k.id = r.kudos_id WHERE k.revoked_at IS NULL",
        ),
        (KUDOS_GIVEN, "SELECT giver_id, 1, created_at, '' FROM kudos WHERE revoked_at IS NULL"),
    ),
    (
        (
            POINTS,
            "SELECT l.member_id, l.points, l.created_at, 'c' || r.category_id "
            "FROM ledger_entry l JOIN award a ON a.id = l.award_id "
            "JOIN reward r ON r.id = a.reward_id WHERE r.category_id IS NOT NULL",
        ),
        (
            BADGES,
            "SELECT a.member_id, 1, a.awarded_at, 'c' || r.category_id FROM award a "
            "JOIN reward r ON r.id = a.reward_id "
            "WHERE a.revoked_at IS NULL AND r.category_id IS NOT NULL",
        ),
    ),
    (
        (
            POINTS,
            "SELECT l.member_id, l.points, l.created_at, 't:' || t.tag FROM ledger_entry l "
            "JOIN kudos_tag_link t ON t.kudos_id = l.kudos_id",
        ),
        (
            KUDOS_RECEIVED,
            "SELECT r.member_id, 1, r.created_at, 't:' || t.tag FROM kudos_receiver r "
            "JOIN kudos k ON k.id = r.kudos_id "
            "JOIN kudos_tag_link t ON t.kudos_id = r.kudos_id WHERE k.revoked_at IS NULL",
        ),
        (
            KUDOS_GIVEN,
            "SELECT k.giver_id, 1, k.created_at, 't:' || t.tag FROM kudos k "
            "JOIN kudos_tag_link t ON t.kudos_id = k.id WHERE k.revoked_at IS NULL",
        ),
    ),
)
# `AT TIME ZONE` gives the local wall time of a timestamptz; date_trunc's week starts on Monday,
# as ISO weeks (and `periods.starts_of_day`) do. Every kind of fact becomes a row with its value
# in its metric's column (0 in the others); one statement per family of dims buckets and sums
# them, since the metrics of a member, period and dim share one counter row.
_PG_INSERT = """
INSERT INTO leaderboard_counter
    (period, period_start, dim, member_id, points, badges, kudos, kudos_given)
SELECT p.period, p.period_start, f.dim, f.member_id,
    sum(f.points), sum(f.badges), sum(f.kudos), sum(f.kudos_given)
FROM ({facts}) AS f(member_id, points, badges, kudos, kudos_given, at, dim)
CROSS JOIN LATERAL (VALUES
    ('week', date_trunc('week', f.at AT TIME ZONE :tz)::date),
    ('month', date_trunc('month', f.at AT TIME ZONE :tz)::date),
    ('quarter', date_trunc('quarter', f.at AT TIME ZONE :tz)::date),
    ('year', date_trunc('year', f.at AT TIME ZONE :tz)::date),
    ('all', DATE '1970-01-01')
) AS p(period, period_start)
GROUP BY p.period, p.period_start, f.dim, f.member_id
HAVING sum(f.points) <> 0 OR sum(f.badges) <> 0 OR sum(f.kudos) <> 0 OR sum(f.kudos_given) <> 0
"""


_PG_FACT = (
    "SELECT f.member_id, {values}, f.at, f.dim::varchar "
    "FROM ({facts}) AS f(member_id, value, at, dim)"
)


def _pg_facts(family: tuple[tuple[str, str], ...]) -> str:
    """One family of `_PG_FACTS` as a UNION ALL of (member_id, points, badges, kudos,
    kudos_given, at, dim)."""
    parts = []
    for metric, facts in family:
        values = ", ".join("f.value::bigint" if name == metric else "0::bigint" for name in METRICS)
        parts.append(_PG_FACT.format(values=values, facts=facts))
    return " UNION ALL ".join(parts)


async def _rebuild_in_postgresql(session: AsyncSession, tz_name: str) -> int:
    """One INSERT ... SELECT per family of dims, bucketed and summed in the database: no rows
    cross the wire (tens of millions of counters after a bulk load), and each aggregate holds
    one family's keys only."""
    await session.execute(text("SET LOCAL work_mem = '256MB'"))
    count = 0
    for family in _PG_FACTS:
        statement = text(_PG_INSERT.format(facts=_pg_facts(family)))
        result = await session.execute(statement, {"tz": tz_name})
        count += int(result.rowcount)  # type: ignore[attr-defined]
    return count


_SQLITE_INSERT = (
    "INSERT INTO leaderboard_counter "
    "(period, period_start, dim, member_id, points, badges, kudos, kudos_given) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


async def _insert_sqlite(session: AsyncSession, deltas: Deltas) -> int:
    """Plain tuples through the driver's executemany: SQLAlchemy's per-row parameter handling
    would cost more than SQLite's own work for millions of rows."""
    connection = await session.connection()
    records = [
        (period, start.isoformat(), dim, member, *changes)
        for (period, start, dim, member), changes in deltas.values.items()
        if any(changes)
    ]
    for first in range(0, len(records), BATCH):
        await connection.exec_driver_sql(_SQLITE_INSERT, records[first : first + BATCH])
    return len(records)


async def rebuild(db: Database, tz_name: str, now: datetime | None = None) -> int:
    """Recompute every counter in one transaction (writers wait, readers see the old ones)."""
    async with db.write() as session:
        return await rebuild_in(session, tz_name, now or SystemClock().now())


async def ensure_built(db: Database, tz_name: str) -> bool:
    """Rebuild if the counters were never built or were bucketed in another zone; True if so."""
    async with db.read() as session:
        built = (await session.execute(select(STATE.c.timezone))).scalar_one_or_none()
    if built == tz_name:
        return False
    await rebuild(db, tz_name)
    return True

"""Recompute every leaderboard counter from the facts, in one transaction.

Used by `rewards leaderboard rebuild`, by start-up when the counters were never built (a database
migrated from before them) or were bucketed in another zone, and by the benchmark after its bulk
load. The facts are streamed as plain tuples and summed per local day in Python (SQLite cannot
convert to a named zone), then written with bulk inserts.
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
    receiver_tag = RECEIVER.join(TAG_LINK, TAG_LINK.c.kudos_id == RECEIVER.c.kudos_id)
    giver_tag = KUDOS.join(TAG_LINK, TAG_LINK.c.kudos_id == KUDOS.c.id)
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
            select(RECEIVER.c.member_id, one, RECEIVER.c.created_at, null()),
        ),
        (
            KUDOS_RECEIVED,
            _tag,
            select(RECEIVER.c.member_id, one, RECEIVER.c.created_at, TAG_LINK.c.tag).select_from(
                receiver_tag
            ),
        ),
        (KUDOS_GIVEN, _everything, select(KUDOS.c.giver_id, one, KUDOS.c.created_at, null())),
        (
            KUDOS_GIVEN,
            _tag,
            select(KUDOS.c.giver_id, one, KUDOS.c.created_at, TAG_LINK.c.tag).select_from(
                giver_tag
            ),
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
    deltas = await compute(session, tz_name)
    await session.execute(delete(COUNTER))
    rows = deltas.rows()
    for first in range(0, len(rows), BATCH):
        await session.execute(insert(COUNTER), rows[first : first + BATCH])
    await session.execute(delete(STATE))
    await session.execute(insert(STATE).values(id=1, timezone=tz_name, rebuilt_at=now))
    return len(rows)


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

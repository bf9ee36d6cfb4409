"""Counter writes as a unit's last statements (`rewards.store.db.write_last`).

A leaderboard counter row is shared by every write about its member. A unit that upserted it
early and ran on (the event hooks' batch of 200 hooks) held every concurrent kudos of that
member until its commit. The upsert is now queued to the unit's end, read back first by a
reader of the counters in the same unit, and dropped with a savepoint block that fails.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from rewards.economy import balance
from rewards.leaderboards import counters
from rewards.leaderboards.counters import COUNTER, EVERYTHING, POINTS, Deltas
from rewards.store.db import Database
from tests.factories import add_member

AT = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


def _points(member_id: int, value: int) -> Deltas:
    deltas = Deltas("UTC")
    deltas.add(POINTS, member_id, AT, value, (EVERYTHING,))
    return deltas


async def _count(database: Database, member_id: int, value: int) -> None:
    """A write block counting `value` points for the member (in the running unit, if any)."""
    async with database.write() as session:
        await counters.apply(session, _points(member_id, value))


async def _all_time(database: Database, member_id: int) -> int:
    async with database.read() as session:
        return await balance.earned(session, member_id)


@pytest.mark.postgresql_only
async def test_a_units_counter_rows_are_locked_only_for_its_commit(database: Database) -> None:
    member_id = await add_member(database, "Shared Row")
    other_writer_done = asyncio.Event()

    async def concurrent_kudos() -> None:
        # Another turn (a task of its own: not inside the unit) upserting the same counter rows,
        # refusing to wait more than a fifth of a second for a lock.
        async with database.write() as session:
            await session.execute(text("SET LOCAL lock_timeout = '200ms'"))
            await counters.apply(session, _points(member_id, 5))
        other_writer_done.set()

    async with database.unit():
        await _count(database, member_id, 10)
        # The unit runs on (a hook batch's workflows, its other awards) while another turn
        # writes the same member's counters: it must not wait for this unit.
        await asyncio.wait_for(asyncio.create_task(concurrent_kudos()), 5)
        assert other_writer_done.is_set()
    assert await _all_time(database, member_id) == 15


async def test_a_reader_of_the_counters_sees_what_its_unit_queued(database: Database) -> None:
    member_id = await add_member(database, "Own Writes")
    async with database.unit():
        await _count(database, member_id, 40)
        assert await _all_time(database, member_id) == 40  # `earned` sends the queued upsert
        await _count(database, member_id, 2)
    assert await _all_time(database, member_id) == 42


async def test_a_failed_savepoint_block_drops_the_counters_it_queued(database: Database) -> None:
    member_id = await add_member(database, "Undone Block")
    async with database.unit():
        await _count(database, member_id, 7)
        with pytest.raises(RuntimeError):
            async with database.write() as session:
                await counters.apply(session, _points(member_id, 1000))
                raise RuntimeError("the block failed after counting")
    assert await _all_time(database, member_id) == 7
    async with database.read() as session:
        rows = (await session.execute(select(COUNTER.c.points))).scalars().all()
    assert 1000 not in rows and all(points == 7 for points in rows)


async def test_outside_a_unit_the_counters_are_written_at_once(database: Database) -> None:
    member_id = await add_member(database, "No Unit")
    async with database.write() as session:
        await counters.apply(session, _points(member_id, 3))
        assert await balance.earned(session, member_id) == 3

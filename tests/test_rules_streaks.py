"""The login streak counters (`member_streak`) kept by `record_activity`, on both databases."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from rewards.rules.activity import rebuild_streaks, record_activity
from rewards.store.db import Database
from rewards.store.models import MemberStreak
from tests.factories import add_member

START = date(2026, 9, 1)


async def _streaks(db: Database) -> dict[int, tuple[date, date]]:
    async with db.read() as session:
        rows = (await session.execute(select(MemberStreak))).scalars().all()
    return {row.member_id: (row.first_day, row.last_day) for row in rows}


def _latest_run(days: set[date]) -> tuple[date, date]:
    """The reference: the last run of consecutive days."""
    last = max(days)
    first = last
    while first - timedelta(days=1) in days:
        first -= timedelta(days=1)
    return first, last


async def test_streaks_follow_activity_recorded_in_any_order(database: Database) -> None:
    rng = random.Random(14)
    members = [await add_member(database, f"m{i}") for i in range(6)]
    recorded: dict[int, set[date]] = {}
    for member_id in members:
        days = {START + timedelta(days=d) for d in range(40) if rng.random() < 0.7}
        order = sorted(days)
        if member_id % 2:  # half of them late: out of order, backfilled, duplicated
            rng.shuffle(order)
            order += order[:3]
        for day in order:
            moment = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=10)
            await record_activity(database, member_id, moment, None)
        recorded[member_id] = days

    incremental = await _streaks(database)
    assert incremental == {m: _latest_run(days) for m, days in recorded.items()}
    assert await rebuild_streaks(database) == len(members)
    assert await _streaks(database) == incremental


async def test_a_late_day_before_the_run_joins_it_to_the_days_before(database: Database) -> None:
    member = await add_member(database, "ana")

    async def active(offset: int) -> None:
        moment = datetime.combine(START + timedelta(days=offset), datetime.min.time(), UTC)
        await record_activity(database, member, moment + timedelta(hours=9), None)

    for offset in (0, 1, 2, 5, 6):
        await active(offset)
    assert await _streaks(database) == {
        member: (START + timedelta(days=5), START + timedelta(days=6))
    }
    await active(4)
    assert await _streaks(database) == {
        member: (START + timedelta(days=4), START + timedelta(days=6))
    }
    await active(3)  # bridges 0-2 to 4-6
    assert await _streaks(database) == {member: (START, START + timedelta(days=6))}

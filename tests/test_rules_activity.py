"""Daily member activity: one row per member per local day, and active days per member."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlmodel import col

from rewards.rules.activity import active_days, record_activity
from rewards.store.db import Database
from rewards.store.models import MemberActivity
from tests.factories import add_member

# 15:00 UTC is midnight in Tokyo (UTC+9) and 07:00 in Los Angeles (UTC-8 in November).
BEFORE = datetime(2026, 11, 18, 14, 59, tzinfo=UTC)
MIDNIGHT_TOKYO = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 18, 15, 30, tzinfo=UTC)


async def _days(db: Database, member_id: int) -> list[date]:
    async with db.read() as session:
        found = await session.execute(
            select(col(MemberActivity.day))
            .where(col(MemberActivity.member_id) == member_id)
            .order_by(col(MemberActivity.day))
        )
        return [row[0] for row in found]


async def test_once_per_local_day_across_utc_midnight_of_tokyo(database: Database) -> None:
    tokyo = await add_member(database, "Tokyo Member", timezone="Asia/Tokyo")
    los_angeles = await add_member(database, "LA Member", timezone="America/Los_Angeles")

    assert await record_activity(database, tokyo, BEFORE, "Asia/Tokyo") is True
    assert await record_activity(database, tokyo, MIDNIGHT_TOKYO, "Asia/Tokyo") is True
    assert await record_activity(database, tokyo, LATER, "Asia/Tokyo") is False
    assert await _days(database, tokyo) == [date(2026, 11, 18), date(2026, 11, 19)]

    tz = "America/Los_Angeles"
    assert await record_activity(database, los_angeles, BEFORE, tz) is True
    assert await record_activity(database, los_angeles, MIDNIGHT_TOKYO, tz) is False
    assert await record_activity(database, los_angeles, LATER, tz) is False
    assert await _days(database, los_angeles) == [date(2026, 11, 18)]

    assert await active_days(database, date(2026, 11, 1), date(2026, 11, 30)) == {
        tokyo: 2,
        los_angeles: 1,
    }
    assert await active_days(database, date(2026, 11, 19), date(2026, 11, 19)) == {tokyo: 1}
    assert await active_days(database, date(2026, 12, 1), date(2026, 12, 31)) == {}


async def test_unset_zone_means_utc(database: Database) -> None:
    member = await add_member(database, "No Zone")
    assert await record_activity(database, member, LATER, None) is True
    assert await _days(database, member) == [date(2026, 11, 18)]


async def test_concurrent_calls_record_one_row(database: Database) -> None:
    member = await add_member(database, "Busy Member")
    results = await asyncio.gather(
        *(record_activity(database, member, LATER, "UTC") for _ in range(8))
    )
    assert sorted(results) == [False] * 7 + [True]
    async with database.read() as session:
        count = (
            await session.execute(
                select(func.count()).where(col(MemberActivity.member_id) == member)
            )
        ).scalar_one()
    assert count == 1

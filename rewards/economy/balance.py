"""A member's spendable balance: points earned minus points spent in the shop.

Earned is the ledger's sum, read from the leaderboards' all-time counter of the member (one row
by primary key, kept with every ledger write, so reading it never scans the ledger); spent is the
member's `member_wallet` row. Leaderboards count earned only: spending never lowers a rank.

The wallet row is also the member's lock. Everything that checks the balance and then changes it
(a redemption, a refund, a negative grant) calls `lock` first in its transaction: PostgreSQL
holds the row (``SELECT ... FOR UPDATE``) until the commit, so a second redemption of the same
member waits and then sees the first one's debit; SQLite writers are serialised by
``BEGIN IMMEDIATE`` (`rewards.store.db`) already.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.economy.shop.model import Balance
from rewards.leaderboards.counters import EVERYTHING
from rewards.leaderboards.periods import ALL, ALL_TIME
from rewards.store.db import write_now
from rewards.store.models import LeaderboardCounter, MemberWallet


async def earned(session: AsyncSession, member_id: int) -> int:
    """Every point the member was ever credited (awards, kudos, adjustments, less reversals)."""
    await write_now(session)  # what this unit credited, queued for its end
    value = await session.scalar(
        select(col(LeaderboardCounter.points)).where(
            col(LeaderboardCounter.period) == ALL,
            col(LeaderboardCounter.period_start) == ALL_TIME,
            col(LeaderboardCounter.dim) == EVERYTHING,
            col(LeaderboardCounter.member_id) == member_id,
        )
    )
    return int(value or 0)


async def read(session: AsyncSession, member_id: int) -> Balance:
    """Earned, spent and spendable: two primary-key reads in one statement."""
    earned_q = (
        select(col(LeaderboardCounter.points))
        .where(
            col(LeaderboardCounter.period) == ALL,
            col(LeaderboardCounter.period_start) == ALL_TIME,
            col(LeaderboardCounter.dim) == EVERYTHING,
            col(LeaderboardCounter.member_id) == member_id,
        )
        .scalar_subquery()
    )
    spent_q = (
        select(col(MemberWallet.spent))
        .where(col(MemberWallet.member_id) == member_id)
        .scalar_subquery()
    )
    await write_now(session)  # what this unit credited, queued for its end
    row = (await session.execute(select(earned_q, spent_q))).one()
    got, spent = int(row[0] or 0), int(row[1] or 0)
    return Balance(earned=got, spent=spent, spendable=got - spent)


async def lock(session: AsyncSession, member_id: int, now: datetime) -> Balance:
    """Create the member's wallet row if needed, lock it until the transaction ends, and return
    the balance as it stands under the lock (earned is read after the lock, so it includes
    every credit committed before)."""
    values = {"member_id": member_id, "spent": 0, "updated_at": now}
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(pg_insert(MemberWallet).values(values).on_conflict_do_nothing())
    else:
        await session.execute(sqlite_insert(MemberWallet).values(values).on_conflict_do_nothing())
    spent = await session.scalar(
        select(col(MemberWallet.spent))
        .where(col(MemberWallet.member_id) == member_id)
        .with_for_update()
    )
    got = await earned(session, member_id)
    return Balance(earned=got, spent=int(spent or 0), spendable=got - int(spent or 0))


async def add_spent(session: AsyncSession, member_id: int, amount: int, now: datetime) -> None:
    """Debit (`amount` > 0) or refund (< 0) the member's wallet; `lock` must have run first."""
    await session.execute(
        update(MemberWallet)
        .where(col(MemberWallet.member_id) == member_id)
        .values(spent=col(MemberWallet.spent) + amount, updated_at=now)
    )

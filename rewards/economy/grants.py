"""Admin grants and corrections: a ledger entry of kind "adjustment".

The entry is written like every other ledger write: with its leaderboard counter deltas in the
same transaction (`rewards.leaderboards.counters`), so boards, `/me` and the spendable balance
count it at once and `rewards leaderboard rebuild` (which sums the ledger) gives the same totals.

A negative grant corrects a mistake; it may take back points not yet spent, never more: the
member's spendable balance (earned minus spent in the shop) cannot go below zero through a
grant. The wallet row is locked first, as a redemption does, so a correction and a redemption
of the same member cannot both spend the same points.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from rewards.clock import as_utc
from rewards.economy import balance
from rewards.economy.redemptions import clean_text
from rewards.economy.shop.model import Balance
from rewards.errors import InvalidInput, NotAvailable
from rewards.leaderboards.counters import EVERYTHING, POINTS, Deltas, apply
from rewards.services._subjects import load_person
from rewards.settings import Settings
from rewards.store.models import LedgerEntry

ADJUSTMENT = "adjustment"
MAX_GRANT = 1_000_000
MAX_REASON = 500


@dataclass(frozen=True)
class Grant:
    entry_id: int
    member_id: int
    member_name: str
    points: int
    reason: str
    created_at: datetime
    balance: Balance


def _points(n: int) -> str:
    return f"{n} point{'s' if abs(n) != 1 else ''}"


async def grant(
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    *,
    member_id: int,
    points: int,
    reason: str,
) -> Grant:
    """Credit (or, negative, take back) `points` with `reason`, shown in the member's history."""
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise InvalidInput("Grant a whole number of points other than 0.")
    if abs(points) > MAX_GRANT:
        raise InvalidInput(f"Grant at most {MAX_GRANT:,} points at a time.")
    why = clean_text(reason, "reason", MAX_REASON, required=True)
    assert why is not None
    person = await load_person(session, member_id)
    wallet = await balance.lock(session, member_id, now)
    if wallet.spendable + points < 0:
        raise NotAvailable(
            f"{person.display_name} has {_points(max(wallet.spendable, 0))} to spend; taking "
            f"{_points(-points)} would leave less than nothing (points already spent in the "
            "shop cannot be taken back)."
        )
    entry = LedgerEntry(
        member_id=member_id, points=points, kind=ADJUSTMENT, note=why, created_at=now
    )
    session.add(entry)
    await session.flush()
    assert entry.id is not None
    deltas = Deltas(settings.timezone)
    deltas.add(POINTS, member_id, now, points, (EVERYTHING,))
    await apply(session, deltas)
    after = Balance(
        earned=wallet.earned + points, spent=wallet.spent, spendable=wallet.spendable + points
    )
    return Grant(entry.id, member_id, person.display_name, points, why, as_utc(now), after)

"""A member's giving lock (HeyTaco's "lock"): an admin pauses a member's giving while a case is
looked at. A locked member still receives kudos, badges and votes, but gives no kudos, gives no
badges, nominates nobody and does not vote.

The lock is a column of the member (`giving_locked_at`), read with the member look-up every
giving path already makes, so checking it costs the kudos path no statement. Locking and
unlocking are conditional updates: of two admins clicking at once, one changes the row and the
other is told it was already done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.clock import as_utc
from rewards.errors import NotAllowed, NotAvailable, UnknownMember
from rewards.store.models import Member

MAX_REASON = 500

LOCKED_SENTENCE = (
    "An admin has paused your giving: you can still receive kudos and badges, but for now you "
    "can't give kudos, give badges, nominate or vote. Ask an admin if you think this is a "
    "mistake."
)


class GivingLocked(NotAllowed):
    """The member's giving is locked by an admin (`/lock`)."""

    code = "giving-locked"


@dataclass(frozen=True)
class LockState:
    member_id: int
    name: str
    email: str
    locked_at: datetime | None
    reason: str | None


async def _state(session: AsyncSession, member_id: int) -> LockState:
    row = (
        await session.execute(
            select(
                col(Member.display_name),
                col(Member.email),
                col(Member.giving_locked_at),
                col(Member.giving_lock_reason),
            ).where(col(Member.id) == member_id)
        )
    ).first()
    if row is None:
        raise UnknownMember(f"I don't know a member with id {member_id}.")
    name, email, at, reason = row
    return LockState(member_id, name, email, as_utc(at) if at else None, reason)


async def lock(
    session: AsyncSession, member_id: int, reason: str | None, now: datetime
) -> LockState:
    """Lock the member's giving; `NotAvailable` (nothing written) when it already is."""
    done = await session.execute(
        update(Member)
        .where(col(Member.id) == member_id, col(Member.giving_locked_at).is_(None))
        .values(giving_locked_at=now, giving_lock_reason=reason)
    )
    state = await _state(session, member_id)
    if done.rowcount == 0:  # type: ignore[attr-defined]
        since = f" since {state.locked_at:%-d %b %Y %H:%M} UTC" if state.locked_at else ""
        raise NotAvailable(f"{state.name}'s giving is already locked{since}.")
    return state


async def unlock(session: AsyncSession, member_id: int) -> LockState:
    """Unlock the member's giving; `NotAvailable` (nothing written) when it is not locked."""
    before = await _state(session, member_id)
    done = await session.execute(
        update(Member)
        .where(col(Member.id) == member_id, col(Member.giving_locked_at).is_not(None))
        .values(giving_locked_at=None, giving_lock_reason=None)
    )
    if done.rowcount == 0:  # type: ignore[attr-defined]
        raise NotAvailable(f"{before.name}'s giving is not locked.")
    return before


def check_can_give(locked: bool) -> None:
    """Refuse a locked giver, before anything is written."""
    if locked:
        raise GivingLocked(LOCKED_SENTENCE)

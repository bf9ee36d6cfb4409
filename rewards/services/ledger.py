"""A member's points: the balance is the sum of the append-only ledger; history explains it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import col

from rewards.clock import as_utc
from rewards.errors import InvalidInput, UnknownMember
from rewards.store.db import Database
from rewards.store.models import ApiKey, Award, Kudos, KudosReceiver, LedgerEntry, Member, Reward

MAX_PAGE = 100


@dataclass(frozen=True)
class LedgerLine:
    id: int
    kind: str
    points: int
    created_at: datetime
    description: str
    award_id: int | None
    kudos_id: int | None
    # The REST API key that made this line (an award's or kudos' sender, a reversal's revoker)
    # and, on an award's lines, the key that revoked it; None for the chat and the system.
    via_api_key: str | None = None
    revoked_by_key: str | None = None


@dataclass(frozen=True)
class MemberSummary:
    member_id: int
    display_name: str
    balance: int
    badges: int
    kudos_received: int
    kudos_given: int


async def balance(db: Database, member_id: int) -> int:
    async with db.read() as session:
        if await session.get(Member, member_id) is None:
            raise UnknownMember(f"I don't know a member with id {member_id}.")
        total = await session.scalar(
            select(func.coalesce(func.sum(col(LedgerEntry.points)), 0)).where(
                col(LedgerEntry.member_id) == member_id
            )
        )
        return int(total or 0)


async def summary(db: Database, member_id: int) -> MemberSummary:
    """Balance and counts for `/me`, in one round trip of scalar sub-queries."""
    async with db.read() as session:
        member = await session.get(Member, member_id)
        if member is None:
            raise UnknownMember(f"I don't know a member with id {member_id}.")
        points = select(func.coalesce(func.sum(col(LedgerEntry.points)), 0)).where(
            col(LedgerEntry.member_id) == member_id
        )
        badges = (
            select(func.count())
            .select_from(Award)
            .where(col(Award.member_id) == member_id, col(Award.revoked_at).is_(None))
        )
        received = (
            select(func.count())
            .select_from(KudosReceiver)
            .where(col(KudosReceiver.member_id) == member_id)
        )
        given = select(func.count()).select_from(Kudos).where(col(Kudos.giver_id) == member_id)
        row = (
            await session.execute(
                select(
                    points.scalar_subquery(),
                    badges.scalar_subquery(),
                    received.scalar_subquery(),
                    given.scalar_subquery(),
                )
            )
        ).one()
        return MemberSummary(member_id, member.display_name, *(int(v) for v in row))


async def history(
    db: Database, member_id: int, *, limit: int = 20, before_id: int | None = None
) -> list[LedgerLine]:
    """Newest first; page with `before_id` (the smallest id of the previous page)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"Ask for between 1 and {MAX_PAGE} entries.")
    giver = Member.__table__.alias("giver")  # type: ignore[attr-defined]
    keys = ApiKey.__table__  # type: ignore[attr-defined]
    award_key, revoke_key, kudos_key = keys.alias("ak"), keys.alias("rk"), keys.alias("kk")
    query = (
        select(
            LedgerEntry,
            col(Reward.name),
            giver.c.display_name,
            award_key.c.name,
            revoke_key.c.name,
            kudos_key.c.name,
        )
        .outerjoin(Award, col(Award.id) == col(LedgerEntry.award_id))
        .outerjoin(Reward, col(Reward.id) == col(Award.reward_id))
        .outerjoin(Kudos, col(Kudos.id) == col(LedgerEntry.kudos_id))
        .outerjoin(giver, giver.c.id == col(Kudos.giver_id))
        .outerjoin(award_key, award_key.c.id == col(Award.api_key_id))
        .outerjoin(revoke_key, revoke_key.c.id == col(Award.revoked_by_key_id))
        .outerjoin(kudos_key, kudos_key.c.id == col(Kudos.api_key_id))
        .where(col(LedgerEntry.member_id) == member_id)
        .order_by(col(LedgerEntry.id).desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(col(LedgerEntry.id) < before_id)
    async with db.read() as session:
        if await session.get(Member, member_id) is None:
            raise UnknownMember(f"I don't know a member with id {member_id}.")
        lines = []
        rows = await session.execute(query)
        for entry, reward_name, kudos_giver, awarded_via, revoked_via, kudos_via in rows:
            via = {"award": awarded_via, "reversal": revoked_via, "kudos": kudos_via}
            if entry.kind == "award":
                text = f"Received {reward_name}"
            elif entry.kind == "reversal" and entry.kudos_id is not None:
                text = f"Kudos from {kudos_giver} revoked" + (
                    f": {entry.note}" if entry.note and entry.note != "kudos revoked" else ""
                )
            elif entry.kind == "reversal":
                text = f"{reward_name} revoked" + (
                    f": {entry.note}" if entry.note and entry.note != "revoked" else ""
                )
            elif entry.kind == "kudos":
                text = f"Kudos from {kudos_giver}"
            else:
                text = entry.note or "Adjustment"
            lines.append(
                LedgerLine(
                    entry.id,
                    entry.kind,
                    entry.points,
                    as_utc(entry.created_at),
                    text,
                    entry.award_id,
                    entry.kudos_id,
                    via_api_key=via.get(entry.kind),
                    revoked_by_key=revoked_via if entry.award_id is not None else None,
                )
            )
        return lines

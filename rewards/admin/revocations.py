"""Revoking kudos: the points go back through reversal entries in the ledger; nothing is deleted.

The kudos keeps its row (with who revoked it, when and why) and its receivers, so history and
the "kudos received" counts stay as they were; only the points are reversed, at the moment of
the revocation, in the same periods and tag views as the leaderboard counters count them (the
counters' rebuild sums every ledger line of a kudos under its tags, reversals included). The
revocation is a conditional update: of two admins revoking at once, one reverses and the other
is told it was already done. (Awards are revoked by `AwardService.revoke`, which does the same
for an award.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.clock import as_utc
from rewards.errors import NotAvailable, NotFound
from rewards.leaderboards import counters
from rewards.store.models import Kudos, KudosReceiver, KudosTagLink, LedgerEntry, Member

MAX_REASON = 500


@dataclass(frozen=True)
class KudosRevocation:
    kudos_id: int
    giver_id: int
    giver_name: str
    receivers: tuple[tuple[int, str], ...]
    message: str
    points: dict[int, int]  # the points taken back from each receiver
    reason: str | None
    revoked_at: datetime

    @property
    def receiver_names(self) -> str:
        return ", ".join(name for _, name in self.receivers)


async def names_of(session: AsyncSession, ids: list[int]) -> dict[int, str]:
    """Display names of these members, in the caller's transaction."""
    rows = await session.execute(
        select(col(Member.id), col(Member.display_name)).where(col(Member.id).in_(ids))
    )
    return {int(i or 0): str(n) for i, n in rows.all()}


def _quote(message: str) -> str:
    return message if len(message) <= 80 else message[:79] + "…"


async def revoke_kudos(
    session: AsyncSession,
    tz_name: str,
    kudos_id: int,
    *,
    by: int | None,
    reason: str | None,
    now: datetime,
) -> KudosRevocation:
    kudos = await session.get(Kudos, kudos_id)
    if kudos is None:
        raise NotFound(f"There are no kudos with id {kudos_id}.")
    if kudos.revoked_at is not None:
        raise NotAvailable(
            f"Kudos {kudos_id} were already revoked on {as_utc(kudos.revoked_at):%-d %b %Y %H:%M}"
            " UTC."
        )
    done = await session.execute(
        update(Kudos)
        .where(col(Kudos.id) == kudos_id, col(Kudos.revoked_at).is_(None))
        .values(revoked_at=now, revoked_by_id=by, revoke_reason=reason)
    )
    if done.rowcount == 0:  # type: ignore[attr-defined]
        raise NotAvailable(f"Kudos {kudos_id} were already revoked.")
    receivers = [
        int(m)
        for m in await session.scalars(
            select(col(KudosReceiver.member_id))
            .where(col(KudosReceiver.kudos_id) == kudos_id)
            .order_by(col(KudosReceiver.member_id))
        )
    ]
    points = {
        int(member_id): int(total)
        for member_id, total in await session.execute(
            select(col(LedgerEntry.member_id), func.sum(col(LedgerEntry.points)))
            .where(col(LedgerEntry.kudos_id) == kudos_id)
            .group_by(col(LedgerEntry.member_id))
        )
        if total
    }
    tags = list(
        await session.scalars(
            select(col(KudosTagLink.tag)).where(col(KudosTagLink.kudos_id) == kudos_id)
        )
    )
    if points:
        await session.execute(
            insert(LedgerEntry),
            [
                {
                    "member_id": member_id,
                    "points": -total,
                    "kind": "reversal",
                    "kudos_id": kudos_id,
                    "note": reason or "kudos revoked",
                    "created_at": now,
                }
                for member_id, total in sorted(points.items())
            ],
        )
    deltas = counters.Deltas(tz_name)
    dims = (counters.EVERYTHING, *(counters.tag_dim(t) for t in tags))
    for member_id, total in points.items():
        deltas.add(counters.POINTS, member_id, now, -total, dims)
    # Nor does it count as given or received any more: taken off the period it was given in,
    # where a rebuild (which leaves revoked kudos out) would have counted it.
    given_at = as_utc(kudos.created_at)
    deltas.add(counters.KUDOS_GIVEN, kudos.giver_id, given_at, -1, dims)
    for member_id in receivers:
        deltas.add(counters.KUDOS_RECEIVED, member_id, given_at, -1, dims)
    await counters.apply(session, deltas)
    names = await names_of(session, [kudos.giver_id, *receivers])
    return KudosRevocation(
        kudos_id=kudos_id,
        giver_id=kudos.giver_id,
        giver_name=names.get(kudos.giver_id, f"member {kudos.giver_id}"),
        receivers=tuple((m, names.get(m, f"member {m}")) for m in receivers),
        message=_quote(kudos.message),
        points=points,
        reason=reason,
        revoked_at=as_utc(now),
    )

"""A member's own data, as one JSON document (`/me data`, `rewards members data`, the API).

Everything stored about the member: the profile and its groups, the chat accounts joined to it,
the awards they received, the kudos they gave and received (with the other people's names, as
the chat showed them, never their emails), nominations made and received, votes cast, the days
they were active, the points ledger, their redemptions and what they spent, their use of the
giving allowance and their workflow progress. Each part is a query by the member's own id,
indexed for everything that grows with the organisation (kudos, awards, the ledger, activity);
votes and nominations made have no index by member and are read from their own tables, which
hold one row per vote or nomination.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import aliased
from sqlmodel import col

from rewards.errors import UnknownMember
from rewards.exports.formats import plain
from rewards.store.db import Database
from rewards.store.models import (
    Award,
    Kudos,
    KudosAllowance,
    KudosReceiver,
    KudosTagLink,
    LedgerEntry,
    Member,
    MemberActivity,
    MemberGroup,
    MemberWallet,
    Nomination,
    NominationVote,
    PlatformAccount,
    Redemption,
    Reward,
    ShopItemRecord,
    WorkflowEnrollment,
)

FORMAT = "nav-rewards member data 1"


def _record(row: Any, *, without: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: plain(v) for k, v in row.model_dump().items() if k not in without}


def _rows(result: Any) -> list[dict[str, Any]]:
    return [{k: plain(v) for k, v in row._mapping.items()} for row in result]


async def member_data(db: Database, member_id: int, *, now: datetime) -> dict[str, Any]:
    """The member's data document; `UnknownMember` when there is no such member."""
    other = aliased(Member)
    async with db.read() as session:
        member = await session.get(Member, member_id)
        if member is None:
            raise UnknownMember(f"There is no member {member_id}.")
        mine = member_id
        groups = (
            await session.scalars(
                select(col(MemberGroup.name)).where(col(MemberGroup.member_id) == mine)
            )
        ).all()
        accounts = (
            await session.scalars(
                select(PlatformAccount).where(col(PlatformAccount.member_id) == mine)
            )
        ).all()
        awards: Any = await session.execute(
            select(
                col(Award.id),
                col(Award.awarded_at),
                col(Award.reward_id),
                col(Reward.name).label("reward_name"),
                col(Award.points),
                col(Award.source),
                col(Award.message),
                col(other.display_name).label("giver_name"),
                col(Award.revoked_at),
                col(Award.revoke_reason),
            )
            .join(Reward, col(Reward.id) == col(Award.reward_id))
            .outerjoin(other, col(other.id) == col(Award.giver_id))
            .where(col(Award.member_id) == mine)
            .order_by(col(Award.id))
        )
        received: Any = await session.execute(
            select(
                col(Kudos.id),
                col(Kudos.created_at),
                col(other.display_name).label("giver_name"),
                col(Kudos.message),
                col(Kudos.visibility),
            )
            .join(KudosReceiver, col(KudosReceiver.kudos_id) == col(Kudos.id))
            .join(other, col(other.id) == col(Kudos.giver_id))
            .where(col(KudosReceiver.member_id) == mine)
            .order_by(col(Kudos.id))
        )
        given: Any = await session.execute(
            select(
                col(Kudos.id),
                col(Kudos.created_at),
                col(other.display_name).label("receiver_name"),
                col(Kudos.message),
                col(Kudos.visibility),
            )
            .join(KudosReceiver, col(KudosReceiver.kudos_id) == col(Kudos.id))
            .join(other, col(other.id) == col(KudosReceiver.member_id))
            .where(col(Kudos.giver_id) == mine)
            .order_by(col(Kudos.id), col(KudosReceiver.member_id))
        )
        tags: Any = await session.execute(
            select(col(KudosTagLink.kudos_id), col(KudosTagLink.tag))
            .join(Kudos, col(Kudos.id) == col(KudosTagLink.kudos_id))
            .where(col(Kudos.giver_id) == mine)
        )
        nominated: Any = await session.execute(
            select(
                col(Nomination.id),
                col(Nomination.created_at),
                col(Nomination.campaign_id),
                col(other.display_name).label("nominee_name"),
                col(Nomination.reason),
            )
            .join(other, col(other.id) == col(Nomination.nominee_id))
            .where(col(Nomination.nominator_id) == mine)
            .order_by(col(Nomination.id))
        )
        nominations_received: Any = await session.execute(
            select(
                col(Nomination.id),
                col(Nomination.created_at),
                col(Nomination.campaign_id),
                col(other.display_name).label("nominator_name"),
                col(Nomination.reason),
            )
            .join(other, col(other.id) == col(Nomination.nominator_id))
            .where(col(Nomination.nominee_id) == mine)
            .order_by(col(Nomination.id))
        )
        votes: Any = await session.execute(
            select(
                col(NominationVote.campaign_id),
                col(NominationVote.cast_at),
                col(other.display_name).label("voted_for"),
            )
            .join(other, col(other.id) == col(NominationVote.nominee_id))
            .where(col(NominationVote.voter_id) == mine)
            .order_by(col(NominationVote.id))
        )
        days = (
            await session.scalars(
                select(col(MemberActivity.day))
                .where(col(MemberActivity.member_id) == mine)
                .order_by(col(MemberActivity.day))
            )
        ).all()
        ledger: Any = await session.execute(
            select(
                col(LedgerEntry.id),
                col(LedgerEntry.created_at),
                col(LedgerEntry.kind),
                col(LedgerEntry.points),
                col(LedgerEntry.award_id),
                col(LedgerEntry.kudos_id),
                col(LedgerEntry.note),
            )
            .where(col(LedgerEntry.member_id) == mine)
            .order_by(col(LedgerEntry.id))
        )
        redemptions: Any = await session.execute(
            select(
                col(Redemption.id),
                col(Redemption.requested_at),
                col(Redemption.item_id),
                col(ShopItemRecord.name).label("item_name"),
                col(Redemption.cost),
                col(Redemption.note),
                col(Redemption.state),
                col(Redemption.decided_by),
                col(Redemption.decided_at),
                col(Redemption.reason),
                col(Redemption.fulfilled_at),
            )
            .join(ShopItemRecord, col(ShopItemRecord.id) == col(Redemption.item_id))
            .where(col(Redemption.member_id) == mine)
            .order_by(col(Redemption.id))
        )
        wallet = await session.get(MemberWallet, mine)
        allowance = await session.get(KudosAllowance, mine)
        workflows = (
            await session.scalars(
                select(WorkflowEnrollment)
                .where(col(WorkflowEnrollment.member_id) == mine)
                .order_by(col(WorkflowEnrollment.id))
            )
        ).all()
        tag_rows = tags.all()
        given_rows = _rows(given)
    by_kudos: dict[int, list[str]] = {}
    for kudos_id, tag in tag_rows:
        by_kudos.setdefault(kudos_id, []).append(tag)
    for row in given_rows:
        row["tags"] = sorted(by_kudos.get(row["id"], []))
    return {
        "format": FORMAT,
        "generated_at": plain(now),
        "profile": _record(member) | {"groups": sorted(groups)},
        "accounts": [_record(a, without=("member_id",)) for a in accounts],
        "awards": _rows(awards),
        "kudos_received": _rows(received),
        "kudos_given": given_rows,
        "nominations_made": _rows(nominated),
        "nominations_received": _rows(nominations_received),
        "votes": _rows(votes),
        "activity_days": [plain(day) for day in days],
        "ledger": _rows(ledger),
        "redemptions": _rows(redemptions),
        "spent_in_shop": wallet.spent if wallet else 0,
        "allowance_use": (
            {"period": allowance.period, "used": allowance.used} if allowance else None
        ),
        "workflows": [_record(w, without=("member_id",)) for w in workflows],
    }


def as_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=2).encode()

"""Small read models for `/me`: a member's recent awards and their rank on the points board.

Kept apart from the ledger and leaderboard services because they answer one screen's questions,
each with one indexed query, rather than extending those services' general APIs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import SQLModel

from rewards.clock import as_utc, period_start
from rewards.privacy.preferences import SHOWN, shown_on_leaderboards
from rewards.services.awards import AwardView
from rewards.store.db import Database
from rewards.store.models import ApiKey, Award, LedgerEntry, Member, Reward

AWARD = SQLModel.metadata.tables[Award.__tablename__]
REWARD = SQLModel.metadata.tables[Reward.__tablename__]
MEMBER = SQLModel.metadata.tables[Member.__tablename__]
LEDGER = SQLModel.metadata.tables[LedgerEntry.__tablename__]
API_KEY = SQLModel.metadata.tables[ApiKey.__tablename__]
MAX_RECENT = 50


async def recent_awards(db: Database, member_id: int, limit: int = 5) -> list[AwardView]:
    """The member's latest awards that still stand (revoked ones left out), newest first."""
    limit = max(1, min(limit, MAX_RECENT))
    return await _awards(db, member_id, limit, time_order=True)


async def member_awards(
    db: Database, member_id: int, *, limit: int = 50, before_id: int | None = None
) -> list[AwardView]:
    """The member's standing awards by id, newest first, a page at a time (the REST API): pass
    the smallest id of the previous page as `before_id` for the next."""
    return await _awards(db, member_id, max(1, limit), time_order=False, before_id=before_id)


async def _awards(
    db: Database,
    member_id: int,
    limit: int,
    *,
    time_order: bool,
    before_id: int | None = None,
) -> list[AwardView]:
    receiver = MEMBER.alias("receiver")
    giver = MEMBER.alias("giver")
    query = (
        select(
            AWARD.c.id,
            AWARD.c.reward_id,
            REWARD.c.name,
            AWARD.c.member_id,
            receiver.c.display_name,
            AWARD.c.giver_id,
            giver.c.display_name,
            AWARD.c.points,
            AWARD.c.message,
            AWARD.c.source,
            AWARD.c.awarded_at,
            API_KEY.c.name,
        )
        .join(REWARD, REWARD.c.id == AWARD.c.reward_id)
        .join(receiver, receiver.c.id == AWARD.c.member_id)
        .outerjoin(giver, giver.c.id == AWARD.c.giver_id)
        .outerjoin(API_KEY, API_KEY.c.id == AWARD.c.api_key_id)
        .where(AWARD.c.member_id == member_id, AWARD.c.revoked_at.is_(None))
        .order_by(
            *(
                (AWARD.c.awarded_at.desc(), AWARD.c.id.desc())
                if time_order
                else (AWARD.c.id.desc(),)
            )
        )
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(AWARD.c.id < before_id)
    async with db.read() as session:
        rows = (await session.execute(query)).all()
    return [
        AwardView(
            id=row[0],
            reward_id=row[1],
            reward_name=row[2],
            member_id=row[3],
            member_name=row[4],
            giver_id=row[5],
            giver_name=row[6],
            points=row[7],
            message=row[8],
            source=row[9],
            awarded_at=as_utc(row[10]),
            via_api_key=row[11],
        )
        for row in rows
    ]


async def points_rank(
    db: Database,
    member_id: int,
    now: datetime,
    timezone: str,
    period: str = "month",
    *,
    leaderboard_default: str = SHOWN,
) -> int | None:
    """The member's rank on the points leaderboard of `period` (ties share a rank), or None when
    they are not on it: no points in the period, opted out, or inactive.

    Same rules as `LeaderboardService.leaderboard`, but computed for one member, so the answer is
    right however far down the board they are.
    """
    since = period_start(period, now, timezone)
    conditions: list[Any] = []
    if since is not None:
        conditions.append(LEDGER.c.created_at >= since)
    totals = (
        select(LEDGER.c.member_id.label("member_id"), func.sum(LEDGER.c.points).label("total"))
        .where(*conditions)
        .group_by(LEDGER.c.member_id)
        .having(func.sum(LEDGER.c.points) > 0)
        .subquery()
    )
    ranked = select(totals.c.member_id, totals.c.total).join(
        MEMBER,
        (MEMBER.c.id == totals.c.member_id) & shown_on_leaderboards(MEMBER, leaderboard_default),
    )
    async with db.read() as session:
        mine = (await session.execute(ranked.where(totals.c.member_id == member_id))).first()
        if mine is None:
            return None
        ahead = await session.scalar(
            select(func.count()).select_from(ranked.where(totals.c.total > mine.total).subquery())
        )
    return int(ahead or 0) + 1

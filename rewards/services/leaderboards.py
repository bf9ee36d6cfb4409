"""Leaderboards and tag trends: each one indexed, grouped query, never a loop over members.

Windows are calendar periods in the organisation's time zone (`TIMEZONE`): the ISO week from
Monday, the month, the quarter, the year, or all time. Members who opted out of leaderboards and
inactive members are left off. Ties share a rank (1, 2, 2, 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.sql import Select
from sqlmodel import col

from rewards.clock import Clock, SystemClock, period_start
from rewards.errors import InvalidInput
from rewards.services.kudos import normalise_tag
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import (
    Award,
    Kudos,
    KudosReceiver,
    KudosTag,
    KudosTagLink,
    LedgerEntry,
    Member,
    MemberGroup,
    Reward,
    RewardCategory,
)

MAX_LIMIT = 100


class Metric(StrEnum):
    POINTS = "points"
    BADGES = "badges"
    KUDOS_RECEIVED = "kudos"
    KUDOS_GIVEN = "kudos_given"


class Period(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    ALL = "all"


# The covering indexes a window query scans (see rewards/store/models.py). Short windows read a
# time range of the time-first index; long ones read the member-first index in order, which
# groups without a sort. SQLite is told which (it has no statistics to choose by); PostgreSQL
# chooses well on its own.
TIME_INDEX = {
    Metric.POINTS: "ix_ledger_time_member_points",
    Metric.BADGES: "ix_award_time_member",
    Metric.KUDOS_RECEIVED: "ix_kudos_receiver_time_member",
    Metric.KUDOS_GIVEN: "ix_kudos_time_giver",
}
MEMBER_INDEX = {
    Metric.POINTS: "ix_ledger_member_time_points",
    Metric.BADGES: "ix_award_member_time_revoked",
    Metric.KUDOS_RECEIVED: "ix_kudos_receiver_member_time",
    Metric.KUDOS_GIVEN: "ix_kudos_giver_time",
}
SHORT_PERIODS = frozenset({Period.WEEK, Period.MONTH})


@dataclass(frozen=True)
class LeaderboardFilter:
    department: str | None = None
    group: str | None = None
    category: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    member_id: int
    display_name: str
    department: str | None
    value: int


@dataclass(frozen=True)
class Leaderboard:
    metric: Metric
    period: Period
    since: datetime | None
    filters: LeaderboardFilter
    rows: tuple[LeaderboardRow, ...]


@dataclass(frozen=True)
class TagTrend:
    tag: str
    label: str
    count: int


class LeaderboardService:
    def __init__(self, db: Database, settings: Settings, clock: Clock | None = None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock or SystemClock()

    def _query(
        self, metric: Metric, period: Period, since: datetime | None, filters: LeaderboardFilter
    ) -> Select[Any]:
        """Per-member totals for the window: only the fact table (and tag or category joins).

        Members are joined after grouping, once per ranked member rather than once per row.
        """
        member_id: Any
        value: Any
        driving: Any
        kudos_id: Any
        if metric is Metric.POINTS:
            value = func.sum(col(LedgerEntry.points))
            member_id = col(LedgerEntry.member_id)
            driving = LedgerEntry
            query = select(member_id, value.label("value")).select_from(LedgerEntry)
            time_col = col(LedgerEntry.created_at)
            if filters.category:
                query = query.join(Award, col(Award.id) == col(LedgerEntry.award_id))
            if filters.tag:
                query = query.join(
                    KudosTagLink,
                    and_(
                        col(KudosTagLink.kudos_id) == col(LedgerEntry.kudos_id),
                        col(KudosTagLink.tag) == normalise_tag(filters.tag),
                    ),
                )
        elif metric is Metric.BADGES:
            if filters.tag:
                raise InvalidInput("A tag filter applies to points and kudos, not to badges.")
            value = func.count()
            member_id = col(Award.member_id)
            driving = Award
            query = (
                select(member_id, value.label("value"))
                .select_from(Award)
                .where(col(Award.revoked_at).is_(None))
            )
            time_col = col(Award.awarded_at)
        else:
            if filters.category:
                raise InvalidInput("A category filter applies to points and badges, not to kudos.")
            if metric is Metric.KUDOS_RECEIVED:
                value = func.count()
                member_id = col(KudosReceiver.member_id)
                driving = KudosReceiver
                query = select(member_id, value.label("value")).select_from(KudosReceiver)
                time_col = col(KudosReceiver.created_at)
                kudos_id = col(KudosReceiver.kudos_id)
            else:
                value = func.count()
                member_id = col(Kudos.giver_id)
                driving = Kudos
                query = select(member_id, value.label("value")).select_from(Kudos)
                time_col = col(Kudos.created_at)
                kudos_id = col(Kudos.id)
            if filters.tag:
                query = query.join(
                    KudosTagLink,
                    and_(
                        col(KudosTagLink.kudos_id) == kudos_id,
                        col(KudosTagLink.tag) == normalise_tag(filters.tag),
                    ),
                )
        if filters.category:
            query = query.join(Reward, col(Reward.id) == col(Award.reward_id)).join(
                RewardCategory,
                and_(
                    col(RewardCategory.id) == col(Reward.category_id),
                    func.lower(col(RewardCategory.name)) == filters.category.lower(),
                ),
            )
        if since is not None:
            query = query.where(time_col >= since)
        if filters.tag and since is not None:
            # Tag links carry their kudos' time: let the (tag, created_at) index drive.
            query = query.where(col(KudosTagLink.created_at) >= since)
        elif not filters.tag:
            index = TIME_INDEX if period in SHORT_PERIODS else MEMBER_INDEX
            query = query.with_hint(driving, f"INDEXED BY {index[metric]}", "sqlite")
        return query.group_by(member_id).having(value > 0)

    async def leaderboard(
        self,
        metric: Metric | str = Metric.POINTS,
        period: Period | str = Period.MONTH,
        filters: LeaderboardFilter | None = None,
        *,
        limit: int = 10,
        now: datetime | None = None,
    ) -> Leaderboard:
        """The top `limit` members for `metric` in the calendar `period` containing `now`."""
        try:
            metric = Metric(metric)
        except ValueError:
            raise InvalidInput(
                f"Leaderboards rank by {', '.join(m.value for m in Metric)}."
            ) from None
        try:
            period = Period(period)
        except ValueError:
            raise InvalidInput(
                f"Leaderboard periods are {', '.join(p.value for p in Period)}."
            ) from None
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"A leaderboard shows between 1 and {MAX_LIMIT} people.")
        filters = filters or LeaderboardFilter()
        since = period_start(period.value, now or self.clock.now(), self.settings.timezone)
        inner = self._query(metric, period, since, filters).subquery()
        query = (
            select(
                inner.c[0].label("member_id"),
                inner.c.value,
                col(Member.display_name),
                col(Member.department),
            )
            .join(Member, col(Member.id) == inner.c[0])
            .where(col(Member.active).is_(True), col(Member.leaderboard_opt_out).is_(False))
            .order_by(inner.c.value.desc(), col(Member.display_name), col(Member.id))
            .limit(limit)
        )
        if filters.department:
            query = query.where(func.lower(col(Member.department)) == filters.department.lower())
        if filters.group:
            query = query.where(
                exists().where(
                    col(MemberGroup.member_id) == inner.c[0],
                    func.lower(col(MemberGroup.name)) == filters.group.lower(),
                )
            )
        async with self.db.read() as session:
            result = (await session.execute(query)).all()
        rows: list[LeaderboardRow] = []
        for position, (member, value, name, department) in enumerate(result, start=1):
            rank = rows[-1].rank if rows and rows[-1].value == int(value) else position
            rows.append(LeaderboardRow(rank, member, name, department, int(value)))
        return Leaderboard(metric, period, since, filters, tuple(rows))

    async def tag_trends(
        self, period: Period | str = Period.MONTH, *, limit: int = 10, now: datetime | None = None
    ) -> list[TagTrend]:
        """The most used kudos tags in the period, most used first."""
        period = Period(period)
        since = period_start(period.value, now or self.clock.now(), self.settings.timezone)
        count = func.count().label("uses")
        query = (
            select(col(KudosTagLink.tag), col(KudosTag.label), count)
            .join(KudosTag, col(KudosTag.name) == col(KudosTagLink.tag))
            .group_by(col(KudosTagLink.tag), col(KudosTag.label))
            .order_by(count.desc(), col(KudosTagLink.tag))
            .limit(max(1, min(limit, MAX_LIMIT)))
        )
        if since is not None:
            query = query.where(col(KudosTagLink.created_at) >= since)
        async with self.db.read() as session:
            return [TagTrend(tag, label, int(n)) for tag, label, n in await session.execute(query)]

"""Leaderboards and tag trends: each one indexed query, never a loop over members.

Leaderboards read the counters of `rewards.leaderboards` (kept with every write): the top of one
index range, whatever the size of the ledger. Windows are calendar periods in the organisation's
time zone (`TIMEZONE`): the ISO week from Monday, the month, the quarter, the year, or all time.
Members hidden from leaderboards (their own choice, the import's flag or LEADERBOARD_DEFAULT:
`rewards.privacy`) and inactive members are left off. Ties share a rank
(1, 2, 2, 4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import exists, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select
from sqlmodel import col

from rewards.clock import Clock, SystemClock, period_start
from rewards.errors import InvalidInput
from rewards.leaderboards import counters
from rewards.leaderboards.counters import COUNTER
from rewards.leaderboards.periods import start_of
from rewards.privacy.preferences import MEMBER, SHOWN, shown_on_leaderboards
from rewards.services.kudos import normalise_tag
from rewards.settings import Settings
from rewards.store.db import Database, write_now
from rewards.store.models import KudosTag, KudosTagLink, Member, MemberGroup, RewardCategory

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

    async def _dim(
        self, session: AsyncSession, metric: Metric, filters: LeaderboardFilter
    ) -> str | None:
        """The counter narrowing for the filters; None when nothing can match."""
        if filters.tag and metric is Metric.BADGES:
            raise InvalidInput("A tag filter applies to points and kudos, not to badges.")
        if filters.category and metric in (Metric.KUDOS_RECEIVED, Metric.KUDOS_GIVEN):
            raise InvalidInput("A category filter applies to points and badges, not to kudos.")
        if filters.category and filters.tag:
            # Points come from either an award (a category) or kudos (tags), never both.
            return None
        if filters.tag:
            return counters.tag_dim(normalise_tag(filters.tag))
        if filters.category:
            category = (
                await session.execute(
                    select(col(RewardCategory.id)).where(
                        func.lower(col(RewardCategory.name)) == filters.category.lower()
                    )
                )
            ).scalar_one_or_none()
            return None if category is None else counters.category_dim(category)
        return counters.EVERYTHING

    @staticmethod
    def _top(
        metric: Metric,
        period: Period,
        key: date,
        dim: str,
        filters: LeaderboardFilter,
        limit: int,
        dialect: str = "sqlite",
        leaderboard_default: str = SHOWN,
    ) -> Select[Any]:
        """The top of one counter range, read down the metric's ranking index by value (partial,
        `> 0`: the same condition is here), with each candidate's member row (active, not hidden
        by their own choice or the defaults (`rewards.privacy`), the department and group
        filters). The visibility test is on the member row the join reads anyway, so hidden
        members cost nothing beyond being skipped."""
        counter = COUNTER
        value = counter.c[metric.value]
        query = (
            select(
                counter.c.member_id,
                value,
                col(Member.display_name),
                col(Member.department),
            )
            .join(Member, col(Member.id) == counter.c.member_id)
            .where(
                counter.c.period == period.value,
                counter.c.period_start == key,
                counter.c.dim == dim,
                # A literal, not a bound value: the partial index's condition must be provable
                # when the statement is planned (SQLite, or a generic PostgreSQL plan).
                value > literal_column("0"),
                shown_on_leaderboards(MEMBER, leaderboard_default),
            )
            .order_by(value.desc(), col(Member.display_name), col(Member.id))
            .limit(limit)
        )
        if filters.department and dialect == "postgresql":
            # ILIKE without wildcards is the same case-insensitive match, but PostgreSQL
            # estimates it from the column's statistics (lower() it guesses at 0.5%), so a big
            # department is read down the ranking index instead of member by member.
            pattern = re.sub(r"([\\%_])", r"\\\1", filters.department)
            query = query.where(col(Member.department).ilike(pattern, escape="\\"))
        elif filters.department:
            query = query.where(func.lower(col(Member.department)) == filters.department.lower())
        if filters.group:
            query = query.where(
                exists().where(
                    col(MemberGroup.member_id) == counter.c.member_id,
                    func.lower(col(MemberGroup.name)) == filters.group.lower(),
                )
            )
        return query

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
        instant = now or self.clock.now()
        since = period_start(period.value, instant, self.settings.timezone)
        key = start_of(period.value, instant, self.settings.timezone)
        async with self.db.read() as session:
            await write_now(session)  # counters this unit changed, queued for its end
            dim = await self._dim(session, metric, filters)
            if dim is None:
                return Leaderboard(metric, period, since, filters, ())
            result = (
                await session.execute(
                    self._top(
                        metric,
                        period,
                        key,
                        dim,
                        filters,
                        limit,
                        self.db.dialect,
                        self.settings.leaderboard_default,
                    )
                )
            ).all()
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

    async def knows_department(self, name: str) -> bool:
        """Whether any member's department is `name` (case-insensitively). Asked only when a
        department board came back empty, to tell a misspelt word ("banana") from a real
        department with no activity yet: the indexed exact match first, then one row of the
        case-insensitive one."""
        async with self.db.read() as session:
            exact: Select[Any] = (
                select(literal_column("1")).where(col(Member.department) == name).limit(1)
            )
            if await session.scalar(exact) is not None:
                return True
            folded: Select[Any] = (
                select(literal_column("1"))
                .where(func.lower(col(Member.department)) == name.lower())
                .limit(1)
            )
            return await session.scalar(folded) is not None

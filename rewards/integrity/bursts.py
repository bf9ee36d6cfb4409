"""Bursts: a giver's day far above their usual rate, and hours of a campaign's vote timeline far
above its usual hour.

Kudos: one statement finds the giver-days of the window with at least `burst_min` kudos (few);
a second reads those givers' daily counts, and a day is a burst when it is at least
`burst_factor` times the giver's usual day, the median of their other active days.

Votes: one statement buckets the votes of the open campaigns by hour (UTC); an hour is a burst
when it has at least `vote_burst_min` votes and `vote_burst_factor` times the campaign's median
hour with votes (the other hours). For each burst, one more statement names the candidate most
of its votes went to: the report is for admins, who may see the tallies of an open campaign;
nobody else sees them before the close.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import median

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.integrity.model import Thresholds
from rewards.integrity.sql import DAY, HOUR, bucket, parse_bucket
from rewards.store.models import Kudos, NominationVote


@dataclass(frozen=True)
class DayCount:
    giver: int
    day: date
    count: int
    usual: float


def _usual(counts: list[int], without: int) -> float:
    """The median of the other days' counts (`without` is the day judged), 1 with none."""
    others = list(counts)
    others.remove(without)
    return float(median(others)) if others else 1.0


async def giver_bursts(
    session: AsyncSession, since: datetime, until: datetime, limits: Thresholds, dialect: str
) -> list[DayCount]:
    """Giver-days far above the giver's usual day, busiest first."""
    day = bucket(col(Kudos.created_at), dialect, DAY)
    in_window = (col(Kudos.created_at) >= since, col(Kudos.created_at) < until)
    busy = (
        await session.execute(
            select(col(Kudos.giver_id), day.label("day"), func.count().label("n"))
            .where(*in_window)
            .group_by(col(Kudos.giver_id), day)
            .having(func.count() >= limits.burst_min)
        )
    ).all()
    if not busy:
        return []
    givers = sorted({int(g) for g, _, _ in busy})
    daily: dict[int, list[int]] = {}
    for giver, _, n in await session.execute(
        select(col(Kudos.giver_id), day, func.count())
        .where(*in_window, col(Kudos.giver_id).in_(givers))
        .group_by(col(Kudos.giver_id), day)
    ):
        daily.setdefault(int(giver), []).append(int(n))
    found = []
    for giver, when, n in busy:
        usual = _usual(daily[int(giver)], int(n))
        if n >= limits.burst_factor * max(usual, 1.0):
            found.append(DayCount(int(giver), parse_bucket(str(when)).date(), int(n), usual))
    return sorted(found, key=lambda d: (-d.count, d.giver, d.day))


@dataclass(frozen=True)
class HourCount:
    campaign_id: int
    start: datetime
    votes: int
    voters: int
    burst: bool
    usual: float
    top_nominee: int | None = None
    top_votes: int = 0


async def vote_timelines(
    session: AsyncSession, campaign_ids: list[int], limits: Thresholds, dialect: str
) -> dict[int, list[HourCount]]:
    """Each campaign's hours with votes, oldest first, bursts flagged and explained."""
    if not campaign_ids:
        return {}
    hour = bucket(col(NominationVote.cast_at), dialect, HOUR)
    rows = (
        await session.execute(
            select(
                col(NominationVote.campaign_id),
                hour.label("hour"),
                func.count(),
                func.count(func.distinct(col(NominationVote.voter_id))),
            )
            .where(col(NominationVote.campaign_id).in_(campaign_ids))
            .group_by(col(NominationVote.campaign_id), hour)
        )
    ).all()
    counts: dict[int, list[tuple[str, int, int]]] = {}
    for campaign, text, votes, voters in rows:
        counts.setdefault(int(campaign), []).append((str(text), int(votes), int(voters)))
    timelines: dict[int, list[HourCount]] = {}
    for campaign, hours in counts.items():
        all_votes = [votes for _, votes, _ in hours]
        line = []
        for text, votes, voters in sorted(hours):
            usual = _usual(all_votes, votes)
            burst = votes >= limits.vote_burst_min and votes >= limits.vote_burst_factor * usual
            start = parse_bucket(text)
            top, top_votes = None, 0
            if burst:
                top, top_votes = await _top_nominee(session, campaign, start)
            line.append(HourCount(campaign, start, votes, voters, burst, usual, top, top_votes))
        timelines[campaign] = line
    return timelines


async def _top_nominee(
    session: AsyncSession, campaign_id: int, start: datetime
) -> tuple[int | None, int]:
    """The candidate most of the hour's votes went to, and how many."""
    votes = func.count().label("votes")
    row = (
        await session.execute(
            select(col(NominationVote.nominee_id), votes)
            .where(
                col(NominationVote.campaign_id) == campaign_id,
                col(NominationVote.cast_at) >= start,
                col(NominationVote.cast_at) < start + timedelta(hours=1),
            )
            .group_by(col(NominationVote.nominee_id))
            .order_by(votes.desc(), col(NominationVote.nominee_id))
            .limit(1)
        )
    ).first()
    return (int(row[0]), int(row[1])) if row else (None, 0)

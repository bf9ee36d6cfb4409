"""`build_report`: rings, giver bursts and the open campaigns' vote timelines over a window, with
names, in one read transaction."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlmodel import col

from rewards.errors import InvalidInput
from rewards.integrity.bursts import giver_bursts, vote_timelines
from rewards.integrity.model import (
    CampaignTimeline,
    GiverBurst,
    IntegrityReport,
    Ring,
    RingMember,
    Thresholds,
    VoteBucket,
)
from rewards.integrity.rings import Flow, find_rings, share_of
from rewards.store.db import Database
from rewards.store.models import Member, NominationCampaign, Reward

DEFAULT_DAYS = 90
OPEN = ("nominating", "voting")


def window_of(
    start: date | None, end: date | None, now: datetime, *, days: int = DEFAULT_DAYS
) -> tuple[datetime, datetime]:
    """[since, until) in UTC: from the start of `start` to the end of `end` (both inclusive),
    by default the `days` days up to now."""
    until = (
        datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC) if end is not None else now
    )
    since = (
        datetime.combine(start, time(), tzinfo=UTC)
        if start is not None
        else until - timedelta(days=days)
    )
    if since >= until:
        raise InvalidInput("The window is empty: --from must come before --to.")
    return since, until


async def build_report(
    db: Database,
    since: datetime,
    until: datetime,
    *,
    thresholds: Thresholds | None = None,
) -> IntegrityReport:
    """The integrity report of [since, until) and of the campaigns open now."""
    limits = thresholds or Thresholds()
    async with db.read() as session:
        rings = await find_rings(session, since, until, limits)
        bursts = await giver_bursts(session, since, until, limits, db.dialect)
        campaigns = (
            await session.execute(
                select(
                    col(NominationCampaign.id),
                    col(Reward.name),
                    col(NominationCampaign.status),
                )
                .join(Reward, col(Reward.id) == col(NominationCampaign.reward_id))
                .where(col(NominationCampaign.status).in_(OPEN))
                .order_by(col(NominationCampaign.id))
            )
        ).all()
        timelines = await vote_timelines(
            session, [int(c or 0) for c, _, _ in campaigns], limits, db.dialect
        )
        wanted = {m for ring in rings for m in ring.members} | {b.giver for b in bursts}
        wanted |= {h.top_nominee for line in timelines.values() for h in line if h.top_nominee}
        names = (
            {
                int(i or 0): str(n)
                for i, n in (
                    await session.execute(
                        select(col(Member.id), col(Member.display_name)).where(
                            col(Member.id).in_(sorted(wanted))
                        )
                    )
                ).all()
            }
            if wanted
            else {}
        )

    def name(member_id: int) -> str:
        return names.get(member_id, f"member #{member_id}")

    return IntegrityReport(
        since=since,
        until=until,
        rings=tuple(
            Ring(
                tuple(
                    RingMember(
                        member_id=m,
                        name=name(m),
                        received_points=ring.received.get(m, Flow()).points,
                        from_ring_points=ring.from_ring[m].points,
                        from_ring_kudos=ring.from_ring[m].gifts,
                        given_share=share_of(ring.to_ring[m], ring.given.get(m, Flow())),
                    )
                    for m in ring.members
                )
            )
            for ring in rings
        ),
        bursts=tuple(GiverBurst(b.giver, name(b.giver), b.day, b.count, b.usual) for b in bursts),
        campaigns=tuple(
            CampaignTimeline(
                int(campaign or 0),
                str(reward),
                str(status),
                tuple(
                    VoteBucket(
                        h.start,
                        h.votes,
                        h.voters,
                        h.burst,
                        h.usual,
                        name(h.top_nominee) if h.top_nominee else None,
                        h.top_votes,
                    )
                    for h in timelines.get(int(campaign or 0), [])
                ),
            )
            for campaign, reward, status in campaigns
        ),
        thresholds=limits,
    )

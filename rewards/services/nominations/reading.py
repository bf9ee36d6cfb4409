"""Reading campaigns: their views, the candidates with every reason, a voter's own votes and
the counts; never who is ahead before the close."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from rewards.clock import as_utc
from rewards.services.nominations.base import NominationBase, names_of
from rewards.services.nominations.views import (
    OPEN_PHASES,
    CampaignStats,
    CampaignView,
    CandidateView,
)
from rewards.services.nominations.voting import votes_of
from rewards.store.models import Nomination, NominationCampaign, NominationVote


class ReadingMixin(NominationBase):
    async def get(self, campaign_id: int) -> CampaignView:
        async with self.db.read() as session:
            return await self._view(session, await self._campaign(session, campaign_id))

    async def open_campaigns(self, *, phase: str | None = None) -> list[CampaignView]:
        """Campaigns still nominating or voting (or only those in `phase`), oldest first."""
        phases = (phase,) if phase else OPEN_PHASES
        async with self.db.read() as session:
            rows = (
                await session.scalars(
                    select(NominationCampaign)
                    .where(col(NominationCampaign.status).in_(phases))
                    .order_by(col(NominationCampaign.id))
                )
            ).all()
            return [await self._view(session, row) for row in rows]

    async def candidates(self, campaign_id: int) -> list[CandidateView]:
        """Everyone nominated, with every reason, in order of first nomination; no tallies."""
        async with self.db.read() as session:
            await self._campaign(session, campaign_id)
            rows = (
                await session.scalars(
                    select(Nomination)
                    .where(col(Nomination.campaign_id) == campaign_id)
                    .order_by(col(Nomination.created_at), col(Nomination.id))
                )
            ).all()
            names = await names_of(session, {r.nominee_id for r in rows})
        grouped: dict[int, list[Nomination]] = {}
        for row in rows:
            grouped.setdefault(row.nominee_id, []).append(row)
        return [
            CandidateView(
                member_id=nominee,
                name=names.get(nominee, f"#{nominee}"),
                reasons=tuple(n.reason for n in found),
                first_nominated_at=as_utc(found[0].created_at),
            )
            for nominee, found in grouped.items()
        ]

    async def my_votes(self, campaign_id: int, voter: int) -> tuple[int, ...]:
        async with self.db.read() as session:
            await self._campaign(session, campaign_id)
            return await votes_of(session, campaign_id, voter)

    async def names(self, ids: Any) -> dict[int, str]:
        """Display names of members by id (for lists of winners and tallies)."""
        wanted = sorted({int(i) for i in ids})
        if not wanted:
            return {}
        async with self.db.read() as session:
            return await names_of(session, wanted)

    async def stats(self, campaign_id: int) -> CampaignStats:
        async with self.db.read() as session:
            await self._campaign(session, campaign_id)
            nominations, candidates = (
                await session.execute(
                    select(
                        func.count(col(Nomination.id)),
                        func.count(func.distinct(col(Nomination.nominee_id))),
                    ).where(col(Nomination.campaign_id) == campaign_id)
                )
            ).one()
            voters = await session.scalar(
                select(func.count(func.distinct(col(NominationVote.voter_id)))).where(
                    col(NominationVote.campaign_id) == campaign_id
                )
            )
        return CampaignStats(
            candidates=int(candidates), nominations=int(nominations), voters=int(voters or 0)
        )

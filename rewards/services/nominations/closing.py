"""Closing and cancelling a campaign.

The close writes the tally, the tie rule's decision (`rewards.services.nominations.tally`) and
the outcome first; the winners then get the badge through the award service with the idempotency
key ``campaign:<id>:<member>``, so closing twice (or a crash and a re-close) awards once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from rewards.catalog.loader import RewardDefinition
from rewards.clock import as_utc
from rewards.errors import AlreadyAwarded, InvalidInput, RewardsError
from rewards.services import outbox
from rewards.services.announcements import AnnouncedItem
from rewards.services.awards import AwardSource
from rewards.services.nominations.base import names_of, plural
from rewards.services.nominations.reading import ReadingMixin
from rewards.services.nominations.tally import decide, tally
from rewards.services.nominations.views import (
    CANCELLED,
    CLOSED,
    MAX_REASON,
    NOMINATING,
    VOTING,
    CampaignView,
)
from rewards.store.models import NominationCampaign


class ClosingMixin(ReadingMixin):
    async def close(
        self, campaign_id: int, *, by: int | None, now: datetime | None = None
    ) -> CampaignView:
        """Close a voting campaign: tally, break ties, record the outcome, award the winners.
        A closed campaign is returned as it is (its awards finished if a crash interrupted
        them; never awarded twice)."""
        now = as_utc(now or self.clock.now())
        if by is not None:
            await self._require_admin(by, "close")
        async with self.db.write() as session:
            row = await self._campaign(session, campaign_id, lock="update")
            definition = await self._definition_in(session, row.reward_id)
            name = definition.reward
            if row.status == CANCELLED:
                raise InvalidInput(f"The campaign for {name} was cancelled; it can't be closed.")
            if row.status == NOMINATING:
                raise InvalidInput(
                    f"The campaign for {name} is still taking nominations; it can be closed "
                    "once voting has started (or cancelled now)."
                )
            closing = row.status == VOTING
            if closing:
                config = self._config(definition)
                tallies, first = await tally(session, campaign_id)
                winners, tie = decide(config, tallies, first)
                row.status = CLOSED
                row.closed_at = now
                row.closed_by = by
                row.outcome = {
                    "tallies": {str(m): n for m, n in sorted(tallies.items())},
                    "winners": winners,
                    "tie": tie,
                    "awards": {},
                    "awards_done": not winners,
                }
                session.add(row)
                await session.flush()
                self._stage_closed(session, row, definition, now)
        view = await self._finish_awards(campaign_id, definition, now)
        if closing:
            await self._announce_winners(view, definition, now)
        return view

    async def _finish_awards(
        self, campaign_id: int, definition: RewardDefinition, now: datetime
    ) -> CampaignView:
        """Award the recorded winners not awarded yet (idempotent per campaign and winner)."""
        async with self.db.read() as session:
            row = await self._campaign(session, campaign_id)
        outcome = dict(row.outcome or {})
        if outcome.get("awards_done", True):
            return await self.get(campaign_id)
        tallies = outcome.get("tallies") or {}
        awards: dict[str, Any] = dict(outcome.get("awards") or {})
        for winner in outcome.get("winners") or ():
            if str(winner) in awards:
                continue
            try:
                view = await self.awards.award(
                    definition.reward_id,
                    int(winner),
                    source=AwardSource.NOMINATION,
                    args={"campaign_id": campaign_id, "votes": int(tallies.get(str(winner), 0))},
                    idempotency_key=f"campaign:{campaign_id}:{winner}",
                )
                awards[str(winner)] = {"award_id": view.id, "message": view.message}
            except AlreadyAwarded:
                awards[str(winner)] = {"award_id": None, "note": "already awarded"}
            except RewardsError as refused:
                awards[str(winner)] = {"award_id": None, "error": str(refused)}
        async with self.db.write() as session:
            row = await self._campaign(session, campaign_id, lock="update")
            recorded = dict((row.outcome or {}).get("awards") or {})
            # A concurrent close may have recorded the award ids first: keep them.
            awards.update({k: v for k, v in recorded.items() if v.get("award_id")})
            row.outcome = {**dict(row.outcome or {}), "awards": awards, "awards_done": True}
            session.add(row)
            await session.flush()
            return await self._view(session, row)

    async def _announce_winners(
        self, view: CampaignView, definition: RewardDefinition, now: datetime
    ) -> None:
        async with self.db.read() as session:
            names = await names_of(session, view.winners)
        tallies = view.tallies or {}
        items = [
            AnnouncedItem(
                member_id=winner,
                name=names.get(winner, f"#{winner}"),
                text=(view.outcome.get("awards", {}).get(str(winner), {}).get("message"))
                or f"Voted {definition.reward} with {plural(tallies.get(winner, 0), 'vote')}.",
                points=definition.points,
            )
            for winner in view.winners
        ]
        await self._announce(
            view.id,
            definition,
            kind="nomination_winners",
            suffix="winners",
            title=f"{definition.reward}: the winner"
            + ("s are" if len(items) > 1 else " is" if items else "s")
            + ("" if items else ": nobody, no votes were cast"),
            items=items,
            now=now,
            payload={
                "tallies": {str(m): n for m, n in tallies.items()},
                "winners": list(view.winners),
                "tie": view.outcome.get("tie"),
            },
        )

    async def cancel(self, campaign_id: int, *, by: int | None, reason: str = "") -> CampaignView:
        now = self.clock.now()
        if by is not None:
            await self._require_admin(by, "cancel")
        reason = (reason or "").strip()[:MAX_REASON]
        async with self.db.write() as session:
            row = await self._campaign(session, campaign_id, lock="update")
            definition = await self._definition_in(session, row.reward_id)
            if row.status == CANCELLED:
                return await self._view(session, row)
            if row.status == CLOSED:
                raise InvalidInput(
                    f"The campaign for {definition.reward} is already closed; "
                    "it can't be cancelled."
                )
            self._mark_cancelled(row, now, by, reason or "Cancelled by an admin.")
            session.add(row)
            await session.flush()
            self._stage_closed(session, row, definition, now)
            view = await self._view(session, row)
        await self._announce_cancelled(row, definition, now)
        return view

    def _stage_closed(
        self,
        session: AsyncSession,
        row: NominationCampaign,
        definition: RewardDefinition,
        now: datetime,
    ) -> None:
        """`nomination.closed` in the closing transaction: status closed (with winners and
        tallies) or cancelled (with the reason)."""
        outcome = dict(row.outcome or {})
        outbox.stage(
            session,
            self.settings,
            outbox.NOMINATION_CLOSED,
            {
                "campaign_id": row.id,
                "reward_id": row.reward_id,
                "reward": definition.reward,
                "status": row.status,
                "closed_by": row.closed_by,
                "winners": list(outcome.get("winners") or []),
                "tallies": outcome.get("tallies") or {},
                "reason": outcome.get("cancelled"),
            },
            at=now,
        )

    @staticmethod
    def _mark_cancelled(
        row: NominationCampaign, now: datetime, by: int | None, reason: str
    ) -> None:
        row.status = CANCELLED
        row.closed_at = now
        row.closed_by = by
        row.outcome = {**dict(row.outcome or {}), "cancelled": reason}

    async def _announce_cancelled(
        self, row: NominationCampaign, definition: RewardDefinition, now: datetime
    ) -> None:
        assert row.id is not None
        await self._announce(
            row.id,
            definition,
            kind="nomination_cancelled",
            suffix="cancelled",
            title=f"The {definition.reward} campaign was cancelled",
            items=[],
            now=now,
            payload={"reason": (row.outcome or {}).get("cancelled", "")},
        )

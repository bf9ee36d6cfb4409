"""Moving campaigns through their phases on time.

A campaign's phase times are stored (`opened_at` plus the configured durations), so `advance(now)`,
called every minute by the scheduler on every process, moves it on: nominating -> voting (or
cancelled with fewer than `min_nominations`), voting -> closed. Every phase change is a
conditional update under a row lock, so two processes never both make it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from rewards.clock import as_utc
from rewards.errors import InvalidInput
from rewards.services.nominations.closing import ClosingMixin
from rewards.services.nominations.views import CLOSED, NOMINATING, VOTING, CampaignView
from rewards.store.models import Nomination, NominationCampaign

# How long after its close `advance` keeps finishing a campaign's awards (a crash between the
# close and the awards).
_AWARD_RETRY_WINDOW = timedelta(days=2)


class PhasesMixin(ClosingMixin):
    async def start_voting(
        self, campaign_id: int, *, by: int | None, now: datetime | None = None
    ) -> CampaignView:
        """An admin's "voting now": nominations close at once and voting starts, for the
        reward's full `voting_duration_days` from now (the planned end would otherwise come early
        for the voters). Too few nominations cancel the campaign, as on its date. A campaign
        already past nominating is refused with a sentence and left as it is."""
        now = as_utc(now or self.clock.now())
        if by is not None:
            await self._require_admin(by, "start voting in")
        view = await self._start_voting(campaign_id, now, early=True)
        if view is None:
            current = await self.get(campaign_id)
            raise InvalidInput(
                f"The campaign for {current.reward_name} is {current.status}, not taking "
                "nominations: voting can't be started."
                if current.status != VOTING
                else f"Voting for {current.reward_name} has already started."
            )
        return view

    async def _start_voting(
        self, campaign_id: int, now: datetime, *, early: bool = False
    ) -> CampaignView | None:
        """nominating -> voting, or cancelled with too few nominations; None when another
        process moved it first. `early`: an admin's start before the date, which moves the
        phase times to now."""
        async with self.db.write() as session:
            row = await self._campaign(session, campaign_id, lock="update")
            if row.status != NOMINATING:
                return None
            definition = await self._definition_in(session, row.reward_id)
            config = self._config(definition)
            if early:
                row.nominations_close_at = now
                row.voting_close_at = now + timedelta(days=config.voting_duration_days)
            count = int(
                await session.scalar(
                    select(func.count(col(Nomination.id))).where(
                        col(Nomination.campaign_id) == campaign_id
                    )
                )
                or 0
            )
            cancelled = count < config.min_nominations
            if cancelled:
                self._mark_cancelled(
                    row,
                    now,
                    None,
                    f"Too few nominations: {count}, at least {config.min_nominations} needed.",
                )
            else:
                row.status = VOTING
            session.add(row)
            await session.flush()
            if cancelled:
                self._stage_closed(session, row, definition, now)
            view = await self._view(session, row)
        if cancelled:
            await self._announce_cancelled(row, definition, now)
        else:
            candidates = await self.candidates(campaign_id)
            await self._announce(
                campaign_id,
                definition,
                kind="nomination_voting",
                suffix="voting",
                title=f"Voting is open: {definition.reward}",
                items=[],
                now=now,
                payload={
                    "voting_close_at": view.voting_close_at.isoformat(),
                    "max_votes_per_user": config.max_votes_per_user,
                    "candidates": [
                        {"member_id": c.member_id, "name": c.name, "reasons": list(c.reasons)}
                        for c in candidates
                    ],
                },
            )
        return view

    async def _due(self, status: str, deadline: Any, now: datetime) -> list[int]:
        """Ids of the campaigns in `status` whose `deadline` column has passed, oldest first."""
        query = (
            select(col(NominationCampaign.id))
            .where(col(NominationCampaign.status) == status, deadline <= now)
            .order_by(col(NominationCampaign.id))
        )
        async with self.db.read() as session:
            return [int(found) for found in (await session.scalars(query)).all() if found]

    async def advance(self, now: datetime) -> list[CampaignView]:
        """Move every due campaign on: nominating -> voting (or cancelled), voting -> closed.
        Idempotent, and safe with several processes (each change is made once, under a lock)."""
        now = as_utc(now)
        changed: list[CampaignView] = []
        due_voting = await self._due(NOMINATING, col(NominationCampaign.nominations_close_at), now)
        for campaign_id in due_voting:
            view = await self._start_voting(campaign_id, now)
            if view is not None:
                changed.append(view)
        due_close = await self._due(VOTING, col(NominationCampaign.voting_close_at), now)
        async with self.db.read() as session:
            unfinished = [
                row
                for row in (
                    await session.scalars(
                        select(NominationCampaign).where(
                            col(NominationCampaign.status) == CLOSED,
                            col(NominationCampaign.closed_at) >= now - _AWARD_RETRY_WINDOW,
                        )
                    )
                ).all()
                if not (row.outcome or {}).get("awards_done", True)
            ]
        for found in due_close:
            campaign_id = found
            before = await self.get(campaign_id)
            if before.status != VOTING:
                continue
            changed.append(await self.close(campaign_id, by=None, now=now))
        for row in unfinished:
            assert row.id is not None
            if row.id in due_close:
                continue
            await self._finish_awards(row.id, await self._definition(row.reward_id), now)
        return changed

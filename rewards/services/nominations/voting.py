"""Votes: cast while voting, by eligible voters, for candidates only.

Nominees never vote for themselves unless the reward's `allow_self_vote` says they may (a
campaign's winner once carried his own vote), and a member whose giving an admin locked does not
vote at all.

A voter's votes live in slots ``0 .. max_votes_per_user - 1`` and the database keeps (campaign,
voter, slot) unique, so concurrent clicks can never exceed the limit: a vote takes a free slot
with INSERT ... ON CONFLICT DO NOTHING, and when every slot is taken it replaces the voter's
oldest vote (changing a vote). Tallies are never shown before the close; a voter sees only their
own votes.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.admin.locks import LOCKED_SENTENCE, GivingLocked
from rewards.catalog.loader import RewardDefinition
from rewards.catalog.nomination import NominationConfig
from rewards.clock import local_today
from rewards.errors import InvalidInput, NotAllowed, NotAvailable, UnknownMember
from rewards.services.nominations.base import NominationBase
from rewards.services.nominations.eligibility import load_members, matches
from rewards.services.nominations.views import NOMINATING, VOTING, VoteResult
from rewards.services.sql import insert_ignoring_duplicates
from rewards.store.models import Nomination, NominationCampaign, NominationVote

_VOTE_ATTEMPTS = 50


async def votes_of(session: AsyncSession, campaign_id: int, voter: int) -> tuple[int, ...]:
    """The voter's votes in the campaign, oldest first."""
    found = await session.scalars(
        select(col(NominationVote.nominee_id))
        .where(
            col(NominationVote.campaign_id) == campaign_id,
            col(NominationVote.voter_id) == voter,
        )
        .order_by(col(NominationVote.cast_at), col(NominationVote.id))
    )
    return tuple(int(v) for v in found)


class VotingMixin(NominationBase):
    async def _check_voter(
        self, session: AsyncSession, row: NominationCampaign, voter: int, now: datetime
    ) -> tuple[RewardDefinition, NominationConfig]:
        definition = await self._definition_in(session, row.reward_id)
        config = self._config(definition)
        if row.status != VOTING:
            when = "is not open yet" if row.status == NOMINATING else "is closed"
            raise NotAvailable(f"Voting for {definition.reward} {when}.")
        people = await load_members(session, [voter])
        if voter not in people:
            raise UnknownMember(f"I don't know a member with id {voter}.")
        if people[voter].giving_locked:
            raise GivingLocked(LOCKED_SENTENCE)
        today = local_today(now, None, self.settings.timezone)
        if not matches(config.eligible_voters, people[voter], today):
            raise NotAllowed(
                f"Only people with {config.eligible_voters.describe()} can vote for "
                f"{definition.reward}."
            )
        return definition, config

    async def vote(self, campaign_id: int, voter: int, nominee: int) -> VoteResult:
        """Vote for a candidate. With every slot taken, the voter's oldest vote moves to this
        candidate; a second vote for the same candidate changes nothing."""
        for _ in range(_VOTE_ATTEMPTS):
            try:
                result = await self._try_vote(campaign_id, voter, nominee)
            except IntegrityError:
                result = None  # a concurrent click took the slot or the candidate: look again
            if result is not None:
                return result
            await asyncio.sleep(0)
        raise NotAvailable("Too many votes at once; please try again.")

    async def _try_vote(self, campaign_id: int, voter: int, nominee: int) -> VoteResult | None:
        now = self.clock.now()
        async with self.db.write() as session:
            # A shared lock: votes run side by side, but not across the close.
            row = await self._campaign(session, campaign_id, lock="share")
            definition, config = await self._check_voter(session, row, voter, now)
            is_candidate = await session.scalar(
                select(col(Nomination.id))
                .where(
                    col(Nomination.campaign_id) == campaign_id,
                    col(Nomination.nominee_id) == nominee,
                )
                .limit(1)
            )
            if is_candidate is None:
                raise InvalidInput(f"That person is not a candidate for {definition.reward}.")
            if nominee == voter and not config.allow_self_vote:
                raise NotAllowed(
                    f"You can't vote for yourself for {definition.reward}; pick another candidate."
                )
            votes = (
                await session.scalars(
                    select(NominationVote)
                    .where(
                        col(NominationVote.campaign_id) == campaign_id,
                        col(NominationVote.voter_id) == voter,
                    )
                    .order_by(col(NominationVote.cast_at), col(NominationVote.id))
                )
            ).all()
            current = tuple(v.nominee_id for v in votes)
            if nominee in current:
                return VoteResult(changed=False, previous=None, votes=current)
            used = {v.slot for v in votes}
            free = [s for s in range(config.max_votes_per_user) if s not in used]
            if free:
                await insert_ignoring_duplicates(
                    session,
                    NominationVote.__table__,  # type: ignore[attr-defined]
                    [
                        {
                            "campaign_id": campaign_id,
                            "voter_id": voter,
                            "slot": free[0],
                            "nominee_id": nominee,
                            "cast_at": now,
                        }
                    ],
                )
                after = await votes_of(session, campaign_id, voter)
                if nominee not in after:
                    return None  # the slot was taken meanwhile
                return VoteResult(changed=True, previous=None, votes=after)
            oldest_id, previous = votes[0].id, votes[0].nominee_id
            result = await session.execute(
                update(NominationVote)
                .where(
                    col(NominationVote.id) == oldest_id,
                    col(NominationVote.nominee_id) == previous,
                )
                .values(nominee_id=nominee, cast_at=now)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                return None  # changed meanwhile
            after = await votes_of(session, campaign_id, voter)
            return VoteResult(changed=True, previous=previous, votes=after)

    async def unvote(self, campaign_id: int, voter: int, nominee: int) -> None:
        now = self.clock.now()
        async with self.db.write() as session:
            row = await self._campaign(session, campaign_id, lock="share")
            await self._check_voter(session, row, voter, now)
            await session.execute(
                delete(NominationVote).where(
                    col(NominationVote.campaign_id) == campaign_id,
                    col(NominationVote.voter_id) == voter,
                    col(NominationVote.nominee_id) == nominee,
                )
            )

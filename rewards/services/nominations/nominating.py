"""Opening a campaign and taking nominations.

A campaign opens from the reward's job (the system, `by=None`, under the job's run key, so two
replicas open one campaign) or by an admin.

Nominations are taken while nominating, by eligible nominators, of eligible nominees, with a
reason (1..1000 characters); self-nomination only when allowed; at most
`max_nominations_per_user` per nominator per campaign (checked under a lock on the campaign row).
A person nominated by several people is one candidate with several reasons.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from rewards.admin.locks import LOCKED_SENTENCE, GivingLocked
from rewards.catalog.model import RewardKind
from rewards.clock import as_utc, local_today
from rewards.errors import InvalidInput, NotAllowed, NotAvailable, UnknownMember
from rewards.services import outbox
from rewards.services.nominations.base import NominationBase, plural
from rewards.services.nominations.eligibility import load_members, matches
from rewards.services.nominations.views import (
    MAX_REASON,
    NOMINATING,
    OPEN_PHASES,
    CampaignView,
    NominationView,
)
from rewards.store.models import Nomination, NominationCampaign, Reward


class NominatingMixin(NominationBase):
    async def open(
        self,
        reward_id: int,
        *,
        by: int | None,
        key: str | None = None,
        now: datetime | None = None,
    ) -> CampaignView:
        """Open a campaign of a Nomination Badge. `by=None` is the system (the reward's job);
        a member must be an admin. The same `key` twice returns the campaign already opened."""
        now = as_utc(now or self.clock.now())
        if by is not None:
            await self._require_admin(by, "open")
        definition = await self._definition(reward_id)
        if definition.kind is not RewardKind.NOMINATION:
            raise InvalidInput(
                f"{definition.reward} is a {definition.kind.value}, not a Nomination Badge: "
                "it has no nomination campaigns."
            )
        if not definition.enabled:
            raise NotAvailable(f"{definition.reward} is switched off.")
        config = self._config(definition)
        key = (key or f"admin:{reward_id}:{now.isoformat()}")[:300]
        try:
            async with self.db.write() as session:
                # The reward row lock makes "one open campaign per reward" hold between two
                # admins (or an admin and the job) opening at the same moment; the key is looked
                # up after it, so a replica waiting for the lock finds the campaign just opened.
                await session.execute(
                    select(col(Reward.id)).where(col(Reward.id) == reward_id).with_for_update()
                )
                existing = await session.scalar(
                    select(NominationCampaign).where(col(NominationCampaign.key) == key)
                )
                if existing is not None:
                    return await self._view(session, existing)
                running = await session.scalar(
                    select(NominationCampaign).where(
                        col(NominationCampaign.reward_id) == reward_id,
                        col(NominationCampaign.status).in_(OPEN_PHASES),
                    )
                )
                if running is not None:
                    raise InvalidInput(
                        f"{definition.reward} already has a campaign open (#{running.id}, "
                        f"{running.status}); close or cancel it first."
                    )
                nominations_close = now + timedelta(days=config.nomination_duration_days)
                row = NominationCampaign(
                    key=key,
                    reward_id=reward_id,
                    status=NOMINATING,
                    opened_by=by,
                    opened_at=now,
                    nominations_close_at=nominations_close,
                    voting_close_at=nominations_close + timedelta(days=config.voting_duration_days),
                )
                session.add(row)
                await session.flush()
                view = await self._view(session, row)
                outbox.stage(
                    session,
                    self.settings,
                    outbox.NOMINATION_OPENED,
                    {
                        "campaign_id": view.id,
                        "reward_id": reward_id,
                        "reward": definition.reward,
                        "opened_by": by,
                        "nominations_close_at": view.nominations_close_at.isoformat(),
                        "voting_close_at": view.voting_close_at.isoformat(),
                    },
                    at=now,
                )
        except IntegrityError:
            # The same key committed by another process first: that campaign is this one.
            async with self.db.read() as session:
                existing = await session.scalar(
                    select(NominationCampaign).where(col(NominationCampaign.key) == key)
                )
                if existing is None:
                    raise
                return await self._view(session, existing)
        await self._announce(
            view.id,
            definition,
            kind="nomination_open",
            suffix="open",
            title=f"Nominations are open: {definition.reward}",
            items=[],
            now=now,
            payload={
                "nominations_close_at": view.nominations_close_at.isoformat(),
                "voting_close_at": view.voting_close_at.isoformat(),
                "max_nominations_per_user": config.max_nominations_per_user,
            },
        )
        return view

    # ---- nominating -------------------------------------------------------------------------

    async def nominate(
        self, campaign_id: int, nominator: int, nominee: int, reason: str
    ) -> NominationView:
        reason = (reason or "").strip()
        now = self.clock.now()
        async with self.db.write() as session:
            # The row lock serialises nominations of one campaign with each other (the per-user
            # limit) and with the phase change.
            row = await self._campaign(session, campaign_id, lock="update")
            definition = await self._definition_in(session, row.reward_id)
            config = self._config(definition)
            name = definition.reward
            if row.status != NOMINATING:
                raise NotAvailable(f"Nominations for {name} are closed.")
            people = await load_members(session, [nominator, nominee])
            if nominator not in people:
                raise UnknownMember(f"I don't know a member with id {nominator}.")
            if nominee not in people:
                raise UnknownMember(f"I don't know a member with id {nominee}.")
            who, whom = people[nominator], people[nominee]
            today = local_today(now, None, self.settings.timezone)
            if who.giving_locked:
                raise GivingLocked(LOCKED_SENTENCE)
            if nominator == nominee and not config.allow_self_nomination:
                raise NotAllowed(f"You can't nominate yourself for {name}.")
            if not matches(config.eligible_nominators, who, today):
                raise NotAllowed(
                    f"Only people with {config.eligible_nominators.describe()} can nominate "
                    f"for {name}."
                )
            if not whom.active:
                raise NotAllowed(f"{whom.name} is not an active member.")
            if not matches(config.eligible_nominees, whom, today):
                raise NotAllowed(
                    f"{whom.name} can't be nominated for {name}: it is for people with "
                    f"{config.eligible_nominees.describe()}."
                )
            if not reason:
                raise InvalidInput(f"Say why you nominate {whom.name}.")
            if len(reason) > MAX_REASON:
                raise InvalidInput(
                    f"The reason is too long ({len(reason)} characters; at most {MAX_REASON})."
                )
            mine = (
                await session.scalars(
                    select(Nomination).where(
                        col(Nomination.campaign_id) == campaign_id,
                        col(Nomination.nominator_id) == nominator,
                    )
                )
            ).all()
            if any(n.nominee_id == nominee for n in mine):
                raise InvalidInput(f"You already nominated {whom.name} for {name}.")
            if len(mine) >= config.max_nominations_per_user:
                raise NotAllowed(
                    f"You have already made {plural(len(mine), 'nomination')} for {name}, "
                    "the most allowed."
                )
            entry = Nomination(
                campaign_id=campaign_id,
                nominator_id=nominator,
                nominee_id=nominee,
                reason=reason,
                created_at=now,
            )
            session.add(entry)
            await session.flush()
            assert entry.id is not None
            return NominationView(
                id=entry.id,
                campaign_id=campaign_id,
                nominator_id=nominator,
                nominee_id=nominee,
                nominee_name=whom.name,
                reason=reason,
                created=as_utc(now),
            )

"""What every part of `NominationService` stands on: the database, the settings, the clock and
the award service; a campaign's row (under the lock the caller asks for), its reward's definition
and `nomination_config`, and its view; the admin check; and the campaign's announcements.

`rewards.services.nominations.service` assembles the service from its parts over this base.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.catalog.loader import RewardDefinition, definition_from_json
from rewards.catalog.nomination import NominationConfig
from rewards.clock import Clock, SystemClock, as_utc
from rewards.errors import NotAllowed, NotFound, UnknownMember, UnknownReward
from rewards.services._subjects import load_people
from rewards.services.admins import is_admin
from rewards.services.announcements import AnnouncedItem, announce
from rewards.services.awards import AwardService
from rewards.services.catalog import get_definition
from rewards.services.nominations.views import CLOSED, CampaignView
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Member, NominationCampaign, Reward


async def names_of(session: AsyncSession, ids: Any) -> dict[int, str]:
    """Display names of the members with these ids, read in the caller's transaction."""
    rows = await session.scalars(select(Member).where(col(Member.id).in_(list(ids))))
    return {row.id: row.display_name for row in rows if row.id is not None}


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class NominationBase:
    """The state and the helpers shared by the parts of `NominationService`."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock | None = None,
        awards: AwardService | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock or SystemClock()
        self.awards = awards or AwardService(db, settings, self.clock)

    async def _definition(self, reward_id: int) -> RewardDefinition:
        return await get_definition(self.db, reward_id)

    @staticmethod
    async def _definition_in(session: AsyncSession, reward_id: int) -> RewardDefinition:
        """The reward's definition read in the caller's transaction (never a second connection
        while a write holds one: a hundred concurrent votes would empty the pool)."""
        stored = await session.scalar(
            select(col(Reward.definition)).where(col(Reward.id) == reward_id)
        )
        if stored is None:
            raise UnknownReward(f"There is no reward with id {reward_id}.")
        return definition_from_json(stored)

    @staticmethod
    def _config(definition: RewardDefinition) -> NominationConfig:
        return definition.nomination_config or NominationConfig()

    async def _require_admin(self, by: int, what: str) -> None:
        async with self.db.read() as session:
            people = await load_people(session, [by])
        if by not in people:
            raise UnknownMember(f"I don't know a member with id {by}.")
        if not is_admin(self.settings, people[by].subject):
            raise NotAllowed(f"Only an admin can {what} a nomination campaign.")

    async def _campaign(
        self, session: AsyncSession, campaign_id: int, *, lock: str | None = None
    ) -> NominationCampaign:
        query = select(NominationCampaign).where(col(NominationCampaign.id) == campaign_id)
        if lock == "update":
            query = query.with_for_update()
        elif lock == "share":
            query = query.with_for_update(read=True)
        row = (await session.execute(query)).scalars().first()
        if row is None:
            raise NotFound(f"There is no nomination campaign {campaign_id}.")
        return row

    async def _view(self, session: AsyncSession, row: NominationCampaign) -> CampaignView:
        reward = await session.get(Reward, row.reward_id)
        definition = reward.definition if reward is not None else {}
        config = NominationConfig.model_validate(definition.get("nomination_config") or {})
        outcome = dict(row.outcome or {})
        tallies = None
        if row.status == CLOSED:
            tallies = {int(k): int(v) for k, v in (outcome.get("tallies") or {}).items()}
        assert row.id is not None
        return CampaignView(
            id=row.id,
            reward_id=row.reward_id,
            reward_name=reward.name if reward is not None else f"reward #{row.reward_id}",
            status=row.status,
            opened_at=as_utc(row.opened_at),
            nominations_close_at=as_utc(row.nominations_close_at),
            voting_close_at=as_utc(row.voting_close_at),
            closed_at=as_utc(row.closed_at) if row.closed_at else None,
            max_votes_per_user=config.max_votes_per_user,
            max_nominations_per_user=config.max_nominations_per_user,
            winners=tuple(int(w) for w in outcome.get("winners") or ()),
            tallies=tallies,
            messages=tuple(dict(m) for m in row.messages or ()),
            outcome=outcome,
        )

    async def _announce(
        self,
        campaign_id: int,
        definition: RewardDefinition,
        *,
        kind: str,
        suffix: str,
        title: str,
        items: list[AnnouncedItem],
        now: datetime,
        payload: dict[str, Any],
    ) -> None:
        await announce(
            self.db,
            self.settings,
            key=f"nomination:{campaign_id}:{suffix}",
            kind=kind,
            title=title,
            items=items,
            now=now,
            reward_id=definition.reward_id,
            spec=definition.announce,
            payload={"campaign_id": campaign_id, **payload},
            allow_empty=True,
        )

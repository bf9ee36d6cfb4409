"""Nomination campaigns: a Nomination Badge's nominating, voting and closing, by the rules of its
`nomination_config`.

A campaign opens from the reward's job (the system, `by=None`, under the job's run key, so two
replicas open one campaign) or by an admin. Its phase times are stored (`opened_at` plus the
configured durations), so `advance(now)`, called every minute by the scheduler on every process,
moves it on: nominating -> voting (or cancelled with fewer than `min_nominations`), voting ->
closed. Every phase change is a conditional update under a row lock, so two processes never both
make it.

- Nominations: while nominating, by eligible nominators, of eligible nominees, with a reason
  (1..1000 characters); self-nomination only when allowed; at most `max_nominations_per_user`
  per nominator per campaign (checked under a lock on the campaign row). A person nominated by
  several people is one candidate with several reasons.
- Votes: while voting, by eligible voters, for candidates only. A voter's votes live in slots
  ``0 .. max_votes_per_user - 1`` and the database keeps (campaign, voter, slot) unique, so
  concurrent clicks can never exceed the limit: a vote takes a free slot with INSERT ... ON
  CONFLICT DO NOTHING, and when every slot is taken it replaces the voter's oldest vote (changing
  a vote). Tallies are never shown before the close; a voter sees only their own votes.
- Close: the tally, the tie rule (`earliest_nomination`, `co_winners` or `random_draw`, whose
  seed and the sha256 of the tied ids are recorded so `replay` can verify the draw) and the
  outcome are written first; the winners then get the badge through the award service with the
  idempotency key ``campaign:<id>:<member>``, so closing twice (or a crash and a re-close) awards
  once.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.catalog.loader import RewardDefinition, definition_from_json
from rewards.catalog.model import RewardKind
from rewards.catalog.nomination import NominationConfig
from rewards.catalog.rules import MemberCriteria
from rewards.clock import Clock, SystemClock, as_utc, local_today
from rewards.errors import (
    AlreadyAwarded,
    InvalidInput,
    NotAllowed,
    NotAvailable,
    NotFound,
    RewardsError,
    UnknownMember,
    UnknownReward,
)
from rewards.rules.lottery import eligible_hash, replay
from rewards.services import outbox
from rewards.services._subjects import load_people
from rewards.services.admins import is_admin
from rewards.services.announcements import AnnouncedItem, announce
from rewards.services.awards import AwardService, AwardSource
from rewards.services.catalog import get_definition
from rewards.services.sql import insert_ignoring_duplicates
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import (
    Member,
    MemberGroup,
    Nomination,
    NominationCampaign,
    NominationVote,
    Reward,
)

NOMINATING, VOTING, CLOSED, CANCELLED = "nominating", "voting", "closed", "cancelled"
OPEN_PHASES = (NOMINATING, VOTING)
MAX_REASON = 1000
# How long after its close `advance` keeps finishing a campaign's awards (a crash between the
# close and the awards).
_AWARD_RETRY_WINDOW = timedelta(days=2)
_VOTE_ATTEMPTS = 50


@dataclass(frozen=True)
class CampaignView:
    id: int
    reward_id: int
    reward_name: str
    status: str
    opened_at: datetime
    nominations_close_at: datetime
    voting_close_at: datetime
    closed_at: datetime | None
    max_votes_per_user: int
    max_nominations_per_user: int
    winners: tuple[int, ...] = ()
    tallies: dict[int, int] | None = None  # only once closed
    messages: tuple[dict[str, Any], ...] = ()
    outcome: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NominationView:
    id: int
    campaign_id: int
    nominator_id: int
    nominee_id: int
    nominee_name: str
    reason: str
    created: datetime


@dataclass(frozen=True)
class CandidateView:
    member_id: int
    name: str
    reasons: tuple[str, ...]
    first_nominated_at: datetime


@dataclass(frozen=True)
class VoteResult:
    changed: bool
    previous: int | None  # the nominee whose vote was replaced, if any
    votes: tuple[int, ...]  # the voter's votes after this one, oldest first


@dataclass(frozen=True)
class CampaignStats:
    """Counts for `rewards nominations status`: never who is ahead."""

    candidates: int
    nominations: int
    voters: int


@dataclass(frozen=True)
class _Member:
    id: int
    name: str
    active: bool
    job_code: str | None
    department: str | None
    groups: frozenset[str]
    hire_date: date | None


def _matches(criteria: MemberCriteria, who: _Member, today: date) -> bool:
    """Whether an active member is in the population `criteria` describes (empty: everyone)."""
    if not who.active:
        return False
    if criteria.job_codes and (who.job_code or "").casefold() not in {
        j.casefold() for j in criteria.job_codes
    }:
        return False
    if criteria.departments and (who.department or "").casefold() not in {
        d.casefold() for d in criteria.departments
    }:
        return False
    if criteria.groups and not {g.casefold() for g in who.groups} & {
        g.casefold() for g in criteria.groups
    }:
        return False
    if criteria.min_tenure_days:
        latest = today - timedelta(days=criteria.min_tenure_days)
        if who.hire_date is None or who.hire_date > latest:
            return False
    return True


async def _names(session: AsyncSession, ids: Any) -> dict[int, str]:
    rows = await session.scalars(select(Member).where(col(Member.id).in_(list(ids))))
    return {row.id: row.display_name for row in rows if row.id is not None}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class NominationService:
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

    # ---- helpers ----------------------------------------------------------------------------

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

    async def _members(self, session: AsyncSession, ids: list[int]) -> dict[int, _Member]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = (
            (await session.execute(select(Member).where(col(Member.id).in_(wanted))))
            .scalars()
            .all()
        )
        groups: dict[int, set[str]] = {}
        for member_id, name in await session.execute(
            select(col(MemberGroup.member_id), col(MemberGroup.name)).where(
                col(MemberGroup.member_id).in_(wanted)
            )
        ):
            groups.setdefault(member_id, set()).add(name)
        found = {}
        for row in rows:
            assert row.id is not None
            found[row.id] = _Member(
                id=row.id,
                name=row.display_name,
                active=row.active,
                job_code=row.job_code,
                department=row.department,
                groups=frozenset(groups.get(row.id, ())),
                hire_date=row.hire_date,
            )
        return found

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

    # ---- reading ----------------------------------------------------------------------------

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
            names = await _names(session, {r.nominee_id for r in rows})
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
            return await self._votes_of(session, campaign_id, voter)

    async def names(self, ids: Any) -> dict[int, str]:
        """Display names of members by id (for lists of winners and tallies)."""
        wanted = sorted({int(i) for i in ids})
        if not wanted:
            return {}
        async with self.db.read() as session:
            return await _names(session, wanted)

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

    @staticmethod
    async def _votes_of(session: AsyncSession, campaign_id: int, voter: int) -> tuple[int, ...]:
        found = await session.scalars(
            select(col(NominationVote.nominee_id))
            .where(
                col(NominationVote.campaign_id) == campaign_id,
                col(NominationVote.voter_id) == voter,
            )
            .order_by(col(NominationVote.cast_at), col(NominationVote.id))
        )
        return tuple(int(v) for v in found)

    # ---- opening ----------------------------------------------------------------------------

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
            people = await self._members(session, [nominator, nominee])
            if nominator not in people:
                raise UnknownMember(f"I don't know a member with id {nominator}.")
            if nominee not in people:
                raise UnknownMember(f"I don't know a member with id {nominee}.")
            who, whom = people[nominator], people[nominee]
            today = local_today(now, None, self.settings.timezone)
            if nominator == nominee and not config.allow_self_nomination:
                raise NotAllowed(f"You can't nominate yourself for {name}.")
            if not _matches(config.eligible_nominators, who, today):
                raise NotAllowed(
                    f"Only people with {config.eligible_nominators.describe()} can nominate "
                    f"for {name}."
                )
            if not whom.active:
                raise NotAllowed(f"{whom.name} is not an active member.")
            if not _matches(config.eligible_nominees, whom, today):
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
                    f"You have already made {_plural(len(mine), 'nomination')} for {name}, "
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

    # ---- voting -----------------------------------------------------------------------------

    async def _check_voter(
        self, session: AsyncSession, row: NominationCampaign, voter: int, now: datetime
    ) -> tuple[RewardDefinition, NominationConfig]:
        definition = await self._definition_in(session, row.reward_id)
        config = self._config(definition)
        if row.status != VOTING:
            when = "is not open yet" if row.status == NOMINATING else "is closed"
            raise NotAvailable(f"Voting for {definition.reward} {when}.")
        people = await self._members(session, [voter])
        if voter not in people:
            raise UnknownMember(f"I don't know a member with id {voter}.")
        today = local_today(now, None, self.settings.timezone)
        if not _matches(config.eligible_voters, people[voter], today):
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
                after = await self._votes_of(session, campaign_id, voter)
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
            after = await self._votes_of(session, campaign_id, voter)
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

    # ---- closing ----------------------------------------------------------------------------

    async def _tally(
        self, session: AsyncSession, campaign_id: int
    ) -> tuple[dict[int, int], dict[int, tuple[datetime, int]]]:
        tallies: dict[int, int] = {}
        for nominee, count in await session.execute(
            select(col(NominationVote.nominee_id), func.count())
            .where(col(NominationVote.campaign_id) == campaign_id)
            .group_by(col(NominationVote.nominee_id))
        ):
            tallies[int(nominee)] = int(count)
        first: dict[int, tuple[datetime, int]] = {}
        for nominee, created, nomination_id in await session.execute(
            select(col(Nomination.nominee_id), col(Nomination.created_at), col(Nomination.id))
            .where(col(Nomination.campaign_id) == campaign_id)
            .order_by(col(Nomination.created_at), col(Nomination.id))
        ):
            first.setdefault(int(nominee), (as_utc(created), int(nomination_id or 0)))
        return tallies, first

    @staticmethod
    def _decide(
        config: NominationConfig,
        tallies: dict[int, int],
        first: dict[int, tuple[datetime, int]],
    ) -> tuple[list[int], dict[str, Any] | None]:
        counted = {m: n for m, n in tallies.items() if m in first and n > 0}
        if not counted:
            return [], None
        top = max(counted.values())
        tied = sorted(m for m, n in counted.items() if n == top)
        if len(tied) == 1:
            return tied, None
        if config.tie_rule == "co_winners":
            return tied, {"rule": "co_winners", "tied": tied}
        if config.tie_rule == "random_draw":
            seed = secrets.token_hex(16)
            winners = replay(seed, tied, {}, 1)
            return winners, {
                "rule": "random_draw",
                "tied": tied,
                "seed": seed,
                "hash": eligible_hash(tied),
                "method": "rewards.rules.lottery.replay(seed, tied, {}, 1)",
            }
        earliest = min(tied, key=lambda m: first[m])
        return [earliest], {"rule": "earliest_nomination", "tied": tied}

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
                tallies, first = await self._tally(session, campaign_id)
                winners, tie = self._decide(config, tallies, first)
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
            names = await _names(session, view.winners)
        tallies = view.tallies or {}
        items = [
            AnnouncedItem(
                member_id=winner,
                name=names.get(winner, f"#{winner}"),
                text=(view.outcome.get("awards", {}).get(str(winner), {}).get("message"))
                or f"Voted {definition.reward} with {_plural(tallies.get(winner, 0), 'vote')}.",
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

    # ---- phases -----------------------------------------------------------------------------

    async def _start_voting(self, campaign_id: int, now: datetime) -> CampaignView | None:
        """nominating -> voting, or cancelled with too few nominations; None when another
        process moved it first."""
        async with self.db.write() as session:
            row = await self._campaign(session, campaign_id, lock="update")
            if row.status != NOMINATING:
                return None
            definition = await self._definition_in(session, row.reward_id)
            config = self._config(definition)
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

    async def record_message(self, campaign_id: int, message: dict[str, Any]) -> None:
        """Remember a posted card ({platform, chat_id, message_id, tenant, kind}) to update it."""
        async with self.db.write() as session:
            row = await self._campaign(session, campaign_id, lock="update")
            row.messages = [*list(row.messages or ()), dict(message)]
            session.add(row)

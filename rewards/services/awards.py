"""The one award pipeline. Every path that gives a reward (chat, API, scheduler, nominations,
workflows) comes through `AwardService.award`, so permissions, availability, duplicate rules,
messages and the ledger behave the same everywhere.

Duplicates are refused by the database: each award carries an `award_key` with a unique index that
encodes what may not happen twice:

- `multiple: false`            -> ``r{reward}:m{member}:once``
- `timeframe` set              -> ``r{reward}:m{member}:{bucket}`` (bucket in the member's zone)
- an explicit idempotency key  -> ``r{reward}:k:{key}`` (API retries, lottery draws)
- otherwise                    -> a fresh random key (repeatable rewards)

Fifty concurrent identical requests therefore make one award and one ledger entry; the others get
`AlreadyAwarded`. Revoking rewrites the key, so a revoked once-only reward can be earned again.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards import hooks
from rewards.admin.locks import check_can_give
from rewards.catalog.model import RewardCore, RewardKind
from rewards.catalog.permissions import PermissionEntry, allows
from rewards.clock import Clock, SystemClock, as_utc, local_now, timeframe_bucket
from rewards.errors import (
    AlreadyAwarded,
    InvalidInput,
    NotAllowed,
    NotAvailable,
    NotFound,
    SelfAward,
    TemplateRefused,
    UnknownMember,
    UnknownReward,
)
from rewards.inputs import check_text
from rewards.leaderboards import counters
from rewards.observability import Observer
from rewards.services import outbox
from rewards.services._subjects import Person, load_people
from rewards.services.admins import is_admin
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import ApiKey, Award, LedgerEntry, Reward
from rewards.templates import env_variables, in_thread, render

MAX_MESSAGE = 1000


class AwardSource(StrEnum):
    DIALOG = "dialog"
    API = "api"
    RULE = "rule"
    EVENT = "event"
    NOMINATION = "nomination"
    WORKFLOW = "workflow"
    ADMIN = "admin"


PERSON_SOURCES = frozenset({AwardSource.DIALOG, AwardSource.API})

_TIMEFRAME_WORDS = {
    "hourly": "this hour",
    "daily": "today",
    "weekly": "this week",
    "biweekly": "in these two weeks",
    "monthly": "this month",
    "quarterly": "this quarter",
    "yearly": "this year",
}


@dataclass(frozen=True)
class AwardView:
    id: int
    reward_id: int
    reward_name: str
    member_id: int
    member_name: str
    giver_id: int | None
    giver_name: str | None
    points: int
    message: str | None
    source: str
    awarded_at: datetime
    revoked_at: datetime | None = None
    # The names of the REST API keys that gave and revoked it (None: not through the API).
    via_api_key: str | None = None
    revoked_by_key: str | None = None


def reward_core(row: Reward) -> RewardCore:
    """The core fields of a stored reward (its `definition` keeps the whole catalogue entry)."""
    fields = {k: v for k, v in row.definition.items() if k in RewardCore.model_fields}
    return RewardCore.model_validate(fields)


def describe_entries(entries: tuple[PermissionEntry, ...]) -> str:
    """A short phrase for refusals, e.g. "job code MANAGER or DIRECTOR"."""
    phrases = []
    for entry in entries:
        parts = []
        if entry.job_code:
            parts.append("job code " + " or ".join(entry.job_code))
        if entry.department:
            parts.append("department " + " or ".join(entry.department))
        if entry.groups:
            parts.append("group " + " or ".join(entry.groups))
        if entry.members:
            parts.append("named people")
        phrases.append(" in ".join(parts))
    return "; or ".join(p for p in phrases if p) or "nobody"


# The event an award not made by an event sets off (`rewards.services.events.BADGE_AWARDED`).
BADGE_AWARDED_HOOK = "badge.awarded"


class AwardService:
    # True in the `Core`'s evented service: awards stage their ``badge.awarded`` hooks
    # (`rewards.hooks`) in their own transaction.
    stage_hooks = False
    # Told of committed awards, by this service and `award_batch` (the `Core` puts its
    # `signals` here; alone: nobody).
    signals: Observer = Observer()

    def __init__(self, db: Database, settings: Settings, clock: Clock | None = None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock or SystemClock()

    async def _reward(self, session: AsyncSession, reward_id: int) -> tuple[Reward, RewardCore]:
        row = await session.get(Reward, reward_id)
        if row is None:
            raise UnknownReward(f"There is no reward with id {reward_id}.")
        return row, reward_core(row)

    def check_giver(self, reward: RewardCore, giver: Person, receiver: Person | None) -> None:
        """Raise if `giver` may not give `reward` (to `receiver`, when known)."""
        if not reward.reward_type.person_can_give:
            raise NotAllowed(
                f"{reward.reward} is a {reward.reward_type.value}: it is given automatically, "
                "not by people."
            )
        if not allows(reward.assigner, giver.subject):
            raise NotAllowed(
                f"Only people with {describe_entries(reward.assigner)} can give {reward.reward}."
            )
        if receiver is not None and receiver.id == giver.id:
            raise SelfAward(f"You can't give {reward.reward} to yourself.")

    def check_receiver(self, reward: RewardCore, receiver: Person) -> None:
        if not receiver.active:
            raise NotAllowed(f"{receiver.display_name} is not an active member.")
        if not allows(reward.awardee, receiver.subject):
            raise NotAllowed(
                f"{reward.reward} can only go to people with {describe_entries(reward.awardee)}."
            )

    def check_available(self, reward: RewardCore, receiver: Person, now: datetime) -> None:
        if not reward.enabled:
            raise NotAvailable(f"{reward.reward} is switched off.")
        rule = reward.availability_rule
        if rule is not None and not rule.is_available(
            local_now(now, receiver.timezone, self.settings.timezone)
        ):
            raise NotAvailable(f"{reward.reward} is only available {rule.describe()}.")

    def award_key(
        self, reward: RewardCore, receiver: Person, now: datetime, idempotency_key: str | None
    ) -> str:
        if idempotency_key:
            return f"r{reward.reward_id}:k:{idempotency_key}"[:300]
        if not reward.multiple:
            return f"r{reward.reward_id}:m{receiver.id}:once"
        if reward.timeframe is not None:
            bucket = timeframe_bucket(
                reward.timeframe.value, now, receiver.timezone, self.settings.timezone
            )
            return f"r{reward.reward_id}:m{receiver.id}:{bucket}"
        cooldown = reward.cooldown_minutes or self.settings.reward_cooldown_minutes
        if cooldown:
            slot = int(now.timestamp()) // (cooldown * 60)
            return f"r{reward.reward_id}:m{receiver.id}:cd{slot}"
        return f"r{reward.reward_id}:m{receiver.id}:{uuid.uuid4().hex}"

    async def _check_cooldown(
        self, session: AsyncSession, reward: RewardCore, receiver: Person, now: datetime
    ) -> None:
        cooldown = reward.cooldown_minutes or self.settings.reward_cooldown_minutes
        if not (reward.multiple and cooldown):
            return
        last = await session.scalar(
            select(col(Award.awarded_at))
            .where(
                col(Award.reward_id) == reward.reward_id,
                col(Award.member_id) == receiver.id,
                col(Award.revoked_at).is_(None),
            )
            .order_by(col(Award.awarded_at).desc())
            .limit(1)
        )
        if last is not None and as_utc(last) > now - timedelta(minutes=cooldown):
            wait = as_utc(last) + timedelta(minutes=cooldown) - now
            minutes = max(1, math.ceil(wait.total_seconds() / 60))
            raise AlreadyAwarded(
                f"{receiver.display_name} just received {reward.reward}; it can be given again in "
                f"{minutes} minute{'s' if minutes != 1 else ''}."
            )

    def _custom_message(self, message: str | None) -> str | None:
        """The giver's own message, stripped (None: none given, the reward's template applies)."""
        if message is None:
            return None
        message = check_text(message.strip(), "message")
        if len(message) > MAX_MESSAGE:
            raise InvalidInput(
                f"The message is too long ({len(message)} characters; at most {MAX_MESSAGE})."
            )
        return message or None

    def _template_job(
        self,
        reward: RewardCore,
        receiver: Person,
        giver: Person | None,
        now: datetime,
        args: dict[str, Any],
    ) -> Callable[[], str]:
        """The render of `reward`'s message template for this award, to run in a template
        thread (`rewards.templates.in_thread`); refusals name the reward."""
        assert reward.message is not None
        local = local_now(now, receiver.timezone, self.settings.timezone)
        return partial(
            render,
            reward.message,
            user=receiver.template_vars(),
            reward=reward.template_vars(),
            env=env_variables(local, giver.display_name if giver else None),
            args=args,
            label=template_label(reward),
        )

    def _message(
        self,
        reward: RewardCore,
        receiver: Person,
        giver: Person | None,
        now: datetime,
        message: str | None,
        args: dict[str, Any],
    ) -> str | None:
        """The award's message, rendered in this thread (a template thread: `award_batch`)."""
        text = self._custom_message(message)
        if text is None and reward.message:
            return self._template_job(reward, receiver, giver, now, args)()
        return text

    async def _message_off_loop(
        self,
        reward: RewardCore,
        receiver: Person,
        giver: Person | None,
        now: datetime,
        message: str | None,
        args: dict[str, Any],
    ) -> str | None:
        """The award's message; a template renders in a template thread, under its limits, so
        the event loop keeps serving (and this transaction waits at most the time limit)."""
        text = self._custom_message(message)
        if text is None and reward.message:
            job = self._template_job(reward, receiver, giver, now, args)
            try:
                return await in_thread(job, label=template_label(reward))
            except TemplateRefused as refused:
                raise TemplateRefused(f"{refused}.") from None
        return text

    def _duplicate_sentence(self, reward: RewardCore, receiver: Person, key: str) -> str:
        if ":k:" in key:
            return f"This request to give {reward.reward} was already carried out."
        if not reward.multiple:
            return f"{receiver.display_name} already has {reward.reward}."
        if reward.timeframe is not None:
            when = _TIMEFRAME_WORDS.get(reward.timeframe.value, "in this period")
            return f"{receiver.display_name} already received {reward.reward} {when}."
        return f"{receiver.display_name} just received {reward.reward}; try again later."

    async def award(
        self,
        reward_id: int,
        to: int,
        by: int | None = None,
        message: str | None = None,
        *,
        source: AwardSource = AwardSource.DIALOG,
        args: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        api_key_id: int | None = None,
    ) -> AwardView:
        """Give reward `reward_id` to member `to`, from member `by` (None: the system).

        `api_key_id` is the REST API key that asked for it (the audit trail; None elsewhere).

        Raises `UnknownReward`, `UnknownMember`, `NotAllowed`, `SelfAward`, `NotAvailable`,
        `AlreadyAwarded` or `InvalidInput`, each with a sentence for the person who asked.
        """
        now = self.clock.now()
        args = dict(args or {})
        try:
            async with self.db.write() as session:
                row, reward = await self._reward(session, reward_id)
                people = await load_people(session, [to] + ([by] if by is not None else []))
                receiver = _person(people, to)
                giver = _person(people, by) if by is not None else None
                if giver is not None and giver.id == receiver.id:
                    raise SelfAward(f"You can't give {reward.reward} to yourself.")
                if giver is not None:
                    check_can_give(giver.giving_locked)  # an admin's /lock (read with them)
                if giver is not None or source in PERSON_SOURCES:
                    if giver is None:
                        raise InvalidInput(f"Say who is giving {reward.reward}.")
                    self.check_giver(reward, giver, receiver)
                self.check_receiver(reward, receiver)
                self.check_available(reward, receiver, now)
                await self._check_cooldown(session, reward, receiver, now)
                key = self.award_key(reward, receiver, now, idempotency_key)
                text = await self._message_off_loop(reward, receiver, giver, now, message, args)
                award = Award(
                    reward_id=reward.reward_id,
                    member_id=receiver.id,
                    giver_id=giver.id if giver else None,
                    message=text,
                    points=reward.points,
                    source=source.value,
                    award_key=key,
                    context=args,
                    awarded_at=now,
                    api_key_id=api_key_id,
                )
                session.add(award)
                await session.flush()
                assert award.id is not None
                if reward.points:
                    session.add(
                        LedgerEntry(
                            member_id=receiver.id,
                            points=reward.points,
                            kind="award",
                            award_id=award.id,
                            note=reward.reward,
                            created_at=now,
                        )
                    )
                    await session.flush()
                await counters.awarded(session, self.settings.timezone, [(award, row.category_id)])
                outbox.stage(
                    session,
                    self.settings,
                    outbox.BADGE_AWARDED,
                    {
                        "award_id": award.id,
                        "reward_id": reward.reward_id,
                        "reward": row.name,
                        "reward_type": reward.reward_type.value,
                        "member": outbox.member_ref(receiver),
                        "giver": outbox.member_ref(giver),
                        "points": reward.points,
                        "source": source.value,
                        "message": text,
                    },
                    at=now,
                )
                if self.stage_hooks and source is not AwardSource.EVENT:
                    hooks.stage(
                        session,
                        BADGE_AWARDED_HOOK,
                        receiver.id,
                        {
                            "award_id": award.id,
                            "reward_id": reward.reward_id,
                            "source": source.value,
                        },
                        occurrence=f"a{award.id}",
                        at=now,
                    )
                keys = await _key_names(session, [api_key_id])
                view = _view(award, row.name, receiver, giver, keys)
        except IntegrityError as problem:
            if "award_key" not in str(problem.orig):
                raise
            raise AlreadyAwarded(self._duplicate_sentence(reward, receiver, key)) from None
        self.db.after_commit(partial(self.signals.awarded, source.value, 1))
        return view

    async def revoke(
        self,
        award_id: int,
        by: int | None,
        reason: str | None = None,
        *,
        api_key_id: int | None = None,
    ) -> AwardView:
        """Revoke an award: the points go back through a reversal entry; nothing is deleted.

        The giver of the award and administrators may revoke; `by=None` is the system (or, with
        `api_key_id`, the REST API key acting as itself, which the caller has checked is an
        admin key). The key is recorded on the award either way.
        """
        now = self.clock.now()
        reason = (reason or "").strip()[:MAX_MESSAGE] or None
        async with self.db.write() as session:
            award = await session.get(Award, award_id)
            if award is None:
                raise NotFound(f"There is no award with id {award_id}.")
            people = await load_people(
                session, [award.member_id] + [p for p in (by, award.giver_id) if p is not None]
            )
            if by is not None:
                actor = _person(people, by)
                if award.giver_id != by and not is_admin(self.settings, actor.subject):
                    raise NotAllowed(
                        "Only the person who gave this award or an admin can revoke it."
                    )
            result = await session.execute(
                update(Award)
                .where(Award.id == award_id, Award.revoked_at.is_(None))  # type: ignore[arg-type,union-attr]
                .values(
                    revoked_at=now,
                    revoked_by_id=by,
                    revoked_by_key_id=api_key_id,
                    revoke_reason=reason,
                    award_key=f"{award.award_key}#revoked{award_id}"[:300],
                )
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise AlreadyAwarded("This award was already revoked.")
            if award.points:
                session.add(
                    LedgerEntry(
                        member_id=award.member_id,
                        points=-award.points,
                        kind="reversal",
                        award_id=award_id,
                        note=reason or "revoked",
                        created_at=now,
                    )
                )
            reward = await session.get(Reward, award.reward_id)
            category = reward.category_id if reward else None
            await counters.revoked(session, self.settings.timezone, award, category, now)
            outbox.stage(
                session,
                self.settings,
                outbox.AWARD_REVOKED,
                {
                    "award_id": award_id,
                    "reward_id": award.reward_id,
                    "reward": reward.name if reward else "",
                    "member": outbox.member_ref(people[award.member_id]),
                    "revoked_by": outbox.member_ref(people.get(by)) if by is not None else None,
                    "reason": reason,
                    "points": award.points,
                },
                at=now,
            )
            await session.flush()
            await session.refresh(award)
            giver = people.get(award.giver_id) if award.giver_id is not None else None
            keys = await _key_names(session, [award.api_key_id, award.revoked_by_key_id])
            return _view(award, reward.name if reward else "", people[award.member_id], giver, keys)

    async def givable(self, giver_id: int, now: datetime | None = None) -> list[RewardCore]:
        """User Badges this member may give right now (assigner rules, availability, enabled)."""
        now = now or self.clock.now()
        async with self.db.read() as session:
            giver = _person(await load_people(session, [giver_id]), giver_id)
            rows = (
                await session.execute(
                    select(Reward).where(Reward.enabled.is_(True)).order_by(Reward.name)  # type: ignore[attr-defined]
                )
            ).scalars()
            result = []
            for row in rows:
                reward = reward_core(row)
                if reward.reward_type is not RewardKind.USER:
                    continue
                if not allows(reward.assigner, giver.subject):
                    continue
                rule = reward.availability_rule
                if rule is not None and not rule.is_available(
                    local_now(now, giver.timezone, self.settings.timezone)
                ):
                    continue
                result.append(reward)
            return result


def template_label(reward: RewardCore) -> str:
    """How a refused message template is named to people (the sentence then ends in a ".")."""
    return f"The message template of reward {reward.reward_id} ({reward.reward})"


def _person(people: dict[int, Person], member_id: int | None) -> Person:
    if member_id is None or member_id not in people:
        raise UnknownMember(f"I don't know a member with id {member_id}.")
    return people[member_id]


async def _key_names(session: AsyncSession, ids: list[int | None]) -> dict[int, str]:
    """{id: name} of the API keys among `ids` (none asked: no query)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = await session.execute(
        select(col(ApiKey.id), col(ApiKey.name)).where(col(ApiKey.id).in_(wanted))
    )
    return {key_id: name for key_id, name in rows if key_id is not None}


def _view(
    award: Award,
    reward_name: str,
    receiver: Person,
    giver: Person | None,
    keys: dict[int, str] | None = None,
) -> AwardView:
    assert award.id is not None
    keys = keys or {}
    return AwardView(
        id=award.id,
        reward_id=award.reward_id,
        reward_name=reward_name,
        member_id=receiver.id,
        member_name=receiver.display_name,
        giver_id=giver.id if giver else None,
        giver_name=giver.display_name if giver else None,
        points=award.points,
        message=award.message,
        source=award.source,
        awarded_at=as_utc(award.awarded_at),
        revoked_at=as_utc(award.revoked_at) if award.revoked_at else None,
        via_api_key=keys.get(award.api_key_id) if award.api_key_id is not None else None,
        revoked_by_key=(
            keys.get(award.revoked_by_key_id) if award.revoked_by_key_id is not None else None
        ),
    )

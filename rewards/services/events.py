"""Events: what fires Automated Badges.

`EventService.emit(name, member_id)` awards every enabled Automated Badge whose `events` names
the event (``["login"]`` when the catalogue gives none), with source ``event``, so the reward's
`multiple` / `timeframe` / cooldown limits apply as for any award. Events the core emits itself:

- ``login``: a member's first activity of their local day (`activity`, called on every chat turn
  and API request). Activity is recorded on every turn but "login" fires once per day, which is
  how the seed's "Welcome to Navigator" (`multiple: true`, "10 points every time you log in")
  pays once per login-day rather than once per message;
- ``kudos.given`` (the giver) and ``kudos.received`` (each receiver) after a kudos;
- ``badge.awarded`` (the receiver) after any award that did not itself come from an event.

The last rule is the recursion guard: an Automated Badge fired by ``badge.awarded`` is an
event-sourced award, so it emits nothing, and a chain is at most one level deep.

`EventedAwards` and `EventedKudos` are the award and kudos services that stage these events
(`rewards.hooks`) in the same transaction as the kudos or award; the `Core` uses them, so chat,
the REST API and the scheduler all emit without knowing about events. The `Core`'s hook runner
runs them after the commit (after the turn's reply), exactly once, from the queue, so a crash
loses none. A chat turn's ``login`` (`touch`) is staged the same way. An event that fails never
undoes the kudos or award that caused it: those are already committed, and a missing bonus
badge is better than a lost kudos.

Every hook concerns only the member the event names: the listeners are read from the catalogue,
the awards and the workflow evaluation look up that member alone.

Event awards are not announced in channels (a daily login bonus would flood them); the award
itself is what the member sees on `/me`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from rewards import hooks
from rewards.awarding.batch import Wanted, award_batch
from rewards.catalog.loader import RewardDefinition
from rewards.catalog.model import RewardKind
from rewards.clock import Clock, SystemClock, local_today
from rewards.errors import AlreadyAwarded, NotAllowed, NotAvailable, UnknownMember
from rewards.hooks import StagedHook
from rewards.rules.activity import record_activity
from rewards.services.awards import AwardService, AwardSource, AwardView
from rewards.services.catalog import list_definitions
from rewards.services.kudos import KudosService
from rewards.services.members import cached_member
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Member

log = logging.getLogger(__name__)

DEFAULT_EVENTS = ("login",)
LOGIN = "login"
KUDOS_GIVEN = "kudos.given"
KUDOS_RECEIVED = "kudos.received"
BADGE_AWARDED = "badge.awarded"

_SKIPS = (AlreadyAwarded, NotAvailable, NotAllowed, UnknownMember)


def event_names(definition: RewardDefinition) -> tuple[str, ...]:
    """The events an Automated Badge listens to (``login`` when none are given)."""
    return tuple(event.name for event in definition.events) or DEFAULT_EVENTS


class EventService:
    """Emits events; `awards` is set by the `Core` once the award service exists."""

    def __init__(self, db: Database, settings: Settings, clock: Clock | None = None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock or SystemClock()
        self.awards: AwardService = AwardService(db, settings, self.clock)
        # Called with (event name, member id, payload) after every emission: the workflow
        # engine's auto-evaluation (`rewards.services.workflows`). A failing hook is logged,
        # never raised.
        self.hooks: list[Callable[[str, int, dict[str, Any]], Awaitable[None]]] = []
        # A hook's form for many members at once (`emit_many`), keyed by the per-member hook:
        # a sweep's 30,000 ``badge.awarded`` must not read the workflows 30,000 times.
        self.bulk_hooks: dict[
            Callable[[str, int, dict[str, Any]], Awaitable[None]],
            Callable[[str, list[int]], Awaitable[None]],
        ] = {}

    async def listeners(self, name: str) -> list[RewardDefinition]:
        """Enabled Automated Badges fired by event `name`."""
        automated = await list_definitions(self.db, kind=RewardKind.AUTOMATED)
        return [d for d in automated if name in event_names(d)]

    async def emit(
        self,
        name: str,
        member_id: int,
        payload: dict[str, Any] | None = None,
        *,
        now: datetime | None = None,
        occurrence: str | None = None,
    ) -> list[AwardView]:
        """Fire event `name` for `member_id`; returns the awards it made.

        `payload` becomes the awards' template `args`. `occurrence` names this happening of the
        event (``login:2026-11-18``): a repeatable badge without a timeframe is then awarded at
        most once per occurrence even if the event is emitted twice. A reward that refuses
        (already awarded, not available, not for this member) is skipped silently.
        `now` is accepted for callers that know the event's time; awards are stamped by the
        clock.
        """
        made: list[AwardView] = []
        for definition in await self.listeners(name):
            key = None
            if occurrence and definition.multiple and definition.timeframe is None:
                key = f"{name}:{occurrence}:m{member_id}"
            try:
                made.append(
                    await self.awards.award(
                        definition.reward_id,
                        member_id,
                        source=AwardSource.EVENT,
                        args=dict(payload or {}),
                        idempotency_key=key,
                    )
                )
            except _SKIPS:
                continue
        for hook in self.hooks:
            try:
                await hook(name, member_id, dict(payload or {}))
            except Exception:
                log.exception("event %s hook for member %s failed", name, member_id)
        return made

    async def handle(self, hook: StagedHook) -> None:
        """Run one staged event (`rewards.hooks`): `emit` with the occurrence it was staged
        with, so running it twice awards once. Raises when the database fails (the row is then
        retried)."""
        await self.emit(hook.name, hook.member_id, hook.payload, occurrence=hook.occurrence)

    async def emit_many(self, name: str, payloads: dict[int, dict[str, Any]]) -> list[AwardView]:
        """`emit` for many members at once (`payloads`: {member id: payload}): each listening
        Automated Badge is awarded through the batch path (`rewards.awarding.batch`), and each
        hook runs once in its bulk form when it has one, else once per member."""
        made: list[AwardView] = []
        if not payloads:
            return made
        for definition in await self.listeners(name):
            result = await award_batch(
                self.awards,
                definition.reward_id,
                [Wanted(member_id, None, dict(p)) for member_id, p in payloads.items()],
                source=AwardSource.EVENT,
            )
            made += result.awarded
        members = list(payloads)
        for hook in self.hooks:
            bulk = self.bulk_hooks.get(hook)
            calls: list[tuple[Any, Awaitable[None]]] = (
                [(members, bulk(name, members))]
                if bulk is not None
                else [(m, hook(name, m, dict(payloads[m]))) for m in members]
            )
            for who, call in calls:
                try:
                    await call
                except Exception:
                    log.exception("event %s hook for %s failed", name, who)
        return made

    async def emit_many_safely(
        self, name: str, payloads: dict[int, dict[str, Any]]
    ) -> list[AwardView]:
        """`emit_many`, logging instead of raising (the awards it follows are committed)."""
        try:
            return await self.emit_many(name, payloads)
        except Exception:
            log.exception("event %s for %d members failed", name, len(payloads))
            return []

    async def activity(
        self, member_id: int, tz: str | None, *, now: datetime | None = None, defer: bool = False
    ) -> bool:
        """Record the member's activity; on their first of the local day, emit ``login``.

        Returns True when this was that first activity. Never raises for the login awards.
        `defer` (a chat turn) stages the ``login`` event with the activity row instead, for the
        hook runner to run after the reply; without it (the REST API and inbound events, which
        answer with the awards made) it runs here.
        """
        moment = now or self.clock.now()
        zone_name = tz or self.settings.timezone
        day = local_today(moment, zone_name).isoformat()
        if defer:
            return await record_activity(
                self.db,
                member_id,
                moment,
                zone_name,
                on_first=lambda session: hooks.stage(
                    session, LOGIN, member_id, {"day": day}, occurrence=day, at=moment
                ),
            )
        if not await record_activity(self.db, member_id, moment, zone_name):
            return False
        try:
            await self.emit(LOGIN, member_id, {"day": day}, now=moment, occurrence=day)
        except Exception:
            log.exception("login event for member %s failed", member_id)
        return True

    async def touch(self, member_id: int, *, now: datetime | None = None) -> bool:
        """`activity` for a member known only by id (a chat turn): their zone is looked up, and
        the ``login`` event is staged for after the reply.

        An unknown member id records nothing.
        """
        async with self.db.read() as session:
            known = cached_member(session, member_id)  # the turn already read them
            found = (
                (known.timezone,)
                if known is not None
                else (
                    await session.execute(
                        select(col(Member.timezone)).where(col(Member.id) == member_id)
                    )
                ).first()
            )
        if found is None:
            return False
        return await self.activity(member_id, found[0], now=now, defer=True)


class EventedAwards(AwardService):
    """The award service, staging ``badge.awarded`` with every award not made by an event."""

    stage_hooks = True

    def __init__(
        self, db: Database, settings: Settings, clock: Clock | None, *, events: EventService
    ) -> None:
        super().__init__(db, settings, clock)
        self.events = events


class EventedKudos(KudosService):
    """The kudos service, staging ``kudos.given`` and ``kudos.received`` with each kudos."""

    stage_hooks = True

    def __init__(
        self, db: Database, settings: Settings, clock: Clock | None, *, events: EventService
    ) -> None:
        super().__init__(db, settings, clock)
        self.events = events

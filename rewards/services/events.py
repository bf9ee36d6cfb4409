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

Every hook concerns only the members the events name: the listeners are read from the catalogue
(once for a batch of staged events), the awards and the workflow evaluation look up those members
alone, a batch of them together (`handle_many`).

Event awards are not announced in channels (a daily login bonus would flood them); the award
itself is what the member sees on `/me`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

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


class Fired(NamedTuple):
    """One event as the hooks see it: its name, the member it names, its payload."""

    name: str
    member_id: int
    payload: dict[str, Any]


# What runs after the Automated Badges of a set of events: the events, and the enabled
# definitions the emission read once for all of them (the workflow engine takes its workflows
# from them instead of reading the catalogue again).
EventsHook = Callable[[Sequence[Fired], Sequence[RewardDefinition]], Awaitable[None]]


def _award_key(
    name: str, occurrence: str | None, member_id: int, d: RewardDefinition
) -> str | None:
    """A repeatable badge without a timeframe is keyed by the event's occurrence, so the same
    happening awards it once however often it is handled."""
    if occurrence and d.multiple and d.timeframe is None:
        return f"{name}:{occurrence}:m{member_id}"
    return None


def _listening(definitions: Sequence[RewardDefinition], name: str) -> list[RewardDefinition]:
    return [d for d in definitions if d.kind is RewardKind.AUTOMATED and name in event_names(d)]


def _rounds(staged: Sequence[StagedHook]) -> list[list[StagedHook]]:
    """`staged` split so that no member appears twice in a round (a batch award takes each
    member once; two kudos to the same person in one batch are two awards)."""
    rounds: list[list[StagedHook]] = []
    seen: dict[int, int] = {}
    for hook in staged:
        n = seen.get(hook.member_id, 0)
        seen[hook.member_id] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(hook)
    return rounds


class EventService:
    """Emits events; `awards` is set by the `Core` once the award service exists."""

    def __init__(self, db: Database, settings: Settings, clock: Clock | None = None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock or SystemClock()
        self.awards: AwardService = AwardService(db, settings, self.clock)
        # Called after every emission with its events, at once for a batch: the workflow
        # engine's auto-evaluation (`rewards.services.workflows`). A failing hook is logged,
        # never raised.
        self.hooks: list[EventsHook] = []

    async def listeners(self, name: str) -> list[RewardDefinition]:
        """Enabled Automated Badges fired by event `name`."""
        return _listening(await list_definitions(self.db, kind=RewardKind.AUTOMATED), name)

    async def _after(self, fired: Sequence[Fired], definitions: Sequence[RewardDefinition]) -> None:
        for hook in self.hooks:
            try:
                await hook(fired, definitions)
            except Exception:
                log.exception("event hook for %d events failed", len(fired))

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
        definitions = await list_definitions(self.db)  # once: the badges and the workflows
        made: list[AwardView] = []
        for definition in _listening(definitions, name):
            try:
                made.append(
                    await self.awards.award(
                        definition.reward_id,
                        member_id,
                        source=AwardSource.EVENT,
                        args=dict(payload or {}),
                        idempotency_key=_award_key(name, occurrence, member_id, definition),
                    )
                )
            except _SKIPS:
                continue
        await self._after([Fired(name, member_id, dict(payload or {}))], definitions)
        return made

    async def handle(self, hook: StagedHook) -> None:
        """Run one staged event (`rewards.hooks`): see `handle_many`."""
        await self.handle_many([hook])

    async def handle_many(self, staged: Sequence[StagedHook]) -> None:
        """Run a batch of staged events (`rewards.hooks`), each as `emit` with the occurrence it
        was staged with (so running one twice awards once), but together: the catalogue is read
        once, each listening Automated Badge is awarded to the batch's members through the batch
        path (`rewards.awarding.batch`), and the workflows of all the members are evaluated in
        one pass. Raises when the database fails (the runner then retries the hooks one by
        one)."""
        if not staged:
            return
        definitions = await list_definitions(self.db)
        by_name: dict[str, list[StagedHook]] = {}
        for hook in staged:
            by_name.setdefault(hook.name, []).append(hook)
        for name, group in by_name.items():
            for definition in _listening(definitions, name):
                for members in _rounds(group):
                    wanted = [
                        Wanted(
                            h.member_id,
                            _award_key(name, h.occurrence, h.member_id, definition),
                            dict(h.payload),
                        )
                        for h in members
                    ]
                    await award_batch(
                        self.awards, definition.reward_id, wanted, source=AwardSource.EVENT
                    )
        await self._after(
            [Fired(h.name, h.member_id, dict(h.payload)) for h in staged], definitions
        )

    async def emit_many(self, name: str, payloads: dict[int, dict[str, Any]]) -> list[AwardView]:
        """`emit` for many members at once (`payloads`: {member id: payload}): each listening
        Automated Badge is awarded through the batch path (`rewards.awarding.batch`), and the
        hooks run once for all of them."""
        made: list[AwardView] = []
        if not payloads:
            return made
        definitions = await list_definitions(self.db)
        for definition in _listening(definitions, name):
            result = await award_batch(
                self.awards,
                definition.reward_id,
                [Wanted(member_id, None, dict(p)) for member_id, p in payloads.items()],
                source=AwardSource.EVENT,
            )
            made += result.awarded
        await self._after([Fired(name, m, dict(p)) for m, p in payloads.items()], definitions)
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

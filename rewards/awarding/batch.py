"""The batch award path: the same rules as `AwardService.award`, written a thousand at a time.

The daily sweep awards tens of thousands of members (33,498 at 100,000 members). Through the
single award that was one transaction, four look-ups and an ORM flush per award: 460 s. Here the
rules are judged in Python over a few set-based reads, and the writes are multi-row statements:

1. one read transaction: the reward, the candidates' attributes (permissions, zones, template
   variables), the award keys already taken (one bound array each on PostgreSQL, chunks on
   SQLite), and (for a reward with a cooldown) each candidate's last award of it;
2. each candidate is judged exactly as `award` judges a system award: unknown member, inactive or
   not an awardee (`check_receiver`), not available in their zone (`check_available`), cooldown,
   award key already taken (``multiple: false`` -> ``:once``, a timeframe's bucket, the
   idempotency key). A refusal is a skip with the single pipeline's sentence, except a key taken
   before the run ("They already have ..."): the keys are judged first and only the members
   still in are loaded, so a re-run that finds everything awarded loads nobody;
3. per batch of `BATCH_SIZE`, ONE transaction: a multi-row ``INSERT INTO award ... ON CONFLICT
   (award_key) DO NOTHING RETURNING``, then the ledger rows (one ``unnest`` statement on
   PostgreSQL), the leaderboard counters and (event manager on) the ``badge.awarded`` outbox
   rows of exactly the awards that were inserted. A key taken by a
   concurrent writer between the read and the insert is simply not returned, and becomes a skip:
   the unique index stays the only judge of duplicates, as in `award`.

What follows an award (the announcement, ``badge.awarded`` events for Automated Badges and
workflows) is the caller's, as for `award`: `rewards.rules.evaluate` passes `announce_as` so each
batch records its awards as "to announce" (one `AnnouncePending` row, same transaction) and
announces the recorded awards (a crash in between is recovered by the next run), and
`EventService.emit_many` fires the events.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Integer, String, any_, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.catalog.model import RewardCore
from rewards.catalog.permissions import Subject
from rewards.clock import as_utc, timeframe_bucket
from rewards.errors import InvalidInput, NotAllowed, NotAvailable, TemplateRefused, UnknownReward
from rewards.leaderboards import counters
from rewards.services import outbox
from rewards.services._subjects import Person
from rewards.services.awards import (
    PERSON_SOURCES,
    AwardService,
    AwardSource,
    AwardView,
    template_label,
)
from rewards.services.awards import reward_core as core_of
from rewards.store.db import OUTBOX_STAGED
from rewards.store.models import (
    AnnouncePending,
    Award,
    LedgerEntry,
    Member,
    MemberGroup,
    OutboxEvent,
    Reward,
)
from rewards.templates import in_thread

BATCH_SIZE = 1000
"""Awards per write transaction (11 bound values each: well inside both drivers' limits)."""
RENDER_CHUNK = 500
"""Message templates rendered per job in a template thread."""
LOOKUP_CHUNK = 5000
"""Ids per ``IN (...)`` look-up (asyncpg allows 32,767 bound values per statement)."""

AWARD_TABLE = Award.__table__  # type: ignore[attr-defined]
LEDGER_TABLE = LedgerEntry.__table__  # type: ignore[attr-defined]
OUTBOX_TABLE = OutboxEvent.__table__  # type: ignore[attr-defined]
PENDING_TABLE = AnnouncePending.__table__  # type: ignore[attr-defined]


_LEDGER_UNNEST = text(
    "INSERT INTO ledger_entry (member_id, points, kind, award_id, kudos_id, note, created_at) "
    "SELECT m, :points, 'award', a, NULL, :note, :created_at "
    "FROM unnest(CAST(:members AS integer[]), CAST(:awards AS integer[])) AS u(m, a)"
).bindparams(
    bindparam("points", type_=Integer),
    bindparam("note", type_=String),
    bindparam("created_at", type_=LEDGER_TABLE.c.created_at.type),
)


# PostgreSQL: the batch's awards as one statement over four arrays (member, message, key and
# context differ; the rest is the batch's). Its text and plan are the same for any number of
# rows, where a 1,000-row multi-row VALUES has 11,000 bound values for SQLAlchemy to process
# and PostgreSQL to parse and plan, every batch.
_AWARD_UNNEST = text(
    "INSERT INTO award (reward_id, member_id, giver_id, message, points, source, award_key, "
    "context, awarded_at, api_key_id) "
    "SELECT :reward_id, u.member_id, NULL, u.message, :points, :source, u.award_key, "
    "CAST(u.context AS jsonb), :awarded_at, NULL "
    "FROM unnest(CAST(:members AS integer[]), CAST(:messages AS varchar[]), "
    "CAST(:keys AS varchar[]), CAST(:contexts AS text[])) AS u(member_id, message, award_key, "
    "context) "
    "ON CONFLICT (award_key) DO NOTHING RETURNING id, award_key"
).bindparams(
    bindparam("reward_id", type_=Integer),
    bindparam("points", type_=Integer),
    bindparam("source", type_=String),
    bindparam("awarded_at", type_=AWARD_TABLE.c.awarded_at.type),
)


_SQLITE_AWARD_INSERT = (
    sqlite_insert(AWARD_TABLE)
    .on_conflict_do_nothing(index_elements=["award_key"])
    .returning(AWARD_TABLE.c.id, AWARD_TABLE.c.award_key)
)


@dataclass(frozen=True)
class Wanted:
    """One award asked for: the member, the idempotency key (None: the reward's own limits) and
    the message template's `args`."""

    member_id: int
    idempotency_key: str | None = None
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchResult:
    """The awards made, in the order asked, and the members skipped with the reason."""

    awarded: list[AwardView] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)
    """Seconds spent per stage ("award keys", "people", "inserts"), for the sweep's log."""

    def timed(self, stage: str, since: float) -> float:
        """Add the time since `since` to `stage`; returns now (the next stage's start)."""
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + now - since
        return now


@dataclass(frozen=True)
class _Pending:
    wanted: Wanted
    person: Person
    key: str
    message: str | None


def _among(session: AsyncSession, column: Any, values: Sequence[Any], item: Any) -> Any:
    """``column IN values``; on PostgreSQL ``column = ANY(:array)``, one bound array instead of
    thousands of bound values to render and send."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(item)))
    return column.in_(list(values))


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _lookups(session: AsyncSession, items: Sequence[Any]) -> list[Sequence[Any]]:
    """Look-up pages: one on PostgreSQL (one bound array, however long), else `LOOKUP_CHUNK`
    bound values each."""
    if session.get_bind().dialect.name == "postgresql":
        return [items] if items else []
    return _chunks(items, LOOKUP_CHUNK)


async def load_people_many(session: AsyncSession, ids: Sequence[int]) -> dict[int, Person]:
    """`load_people` for thousands of members: plain column tuples (no ORM objects), in chunks."""
    wanted = sorted(set(ids))
    rows: list[Any] = []
    groups: dict[int, set[str]] = {}
    conn = await session.connection()  # plain rows, no ORM loading
    for part in _lookups(session, wanted):
        rows += (
            await conn.execute(
                select(
                    col(Member.id),
                    col(Member.email),
                    col(Member.job_code),
                    col(Member.department),
                    col(Member.display_name),
                    col(Member.timezone),
                    col(Member.active),
                ).where(_among(session, col(Member.id), part, Integer))
            )
        ).all()
        for member_id, name in await conn.execute(
            select(col(MemberGroup.member_id), col(MemberGroup.name)).where(
                _among(session, col(MemberGroup.member_id), part, Integer)
            )
        ):
            groups.setdefault(int(member_id), set()).add(str(name))
    return {
        int(member_id): Person(
            subject=Subject(
                id=int(member_id),
                email=email,
                job_code=job_code,
                department=department,
                groups=frozenset(groups.get(int(member_id), ())),
            ),
            display_name=display_name,
            timezone=timezone,
            active=bool(active),
        )
        for member_id, email, job_code, department, display_name, timezone, active in rows
    }


def _stand_in(member_id: int, timezone: str | None) -> Person:
    """What `award_key` reads of a member (id and zone), before the member is loaded."""
    return Person(
        subject=Subject(id=member_id, email="", job_code=None, department=None, groups=frozenset()),
        display_name=f"member #{member_id}",
        timezone=timezone,
        active=True,
    )


async def _zones(session: AsyncSession, ids: Sequence[int]) -> dict[int, str | None]:
    zones: dict[int, str | None] = {}
    for part in _lookups(session, sorted(set(ids))):
        rows = await (await session.connection()).execute(
            select(col(Member.id), col(Member.timezone)).where(
                _among(session, col(Member.id), part, Integer)
            )
        )
        zones.update({int(m or 0): tz for m, tz in rows})
    return zones


async def _taken(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    taken: set[str] = set()
    for part in _lookups(session, keys):
        found = await (await session.connection()).execute(
            select(col(Award.award_key)).where(_among(session, col(Award.award_key), part, String))
        )
        taken.update(str(key) for (key,) in found)
    return taken


async def _last_awarded(
    session: AsyncSession, reward_id: int, member_ids: Sequence[int]
) -> dict[int, datetime]:
    """Each member's latest non-revoked award of the reward (the cooldown's reference)."""
    last: dict[int, datetime] = {}
    for part in _chunks(sorted(set(member_ids)), LOOKUP_CHUNK):
        rows = await session.execute(
            select(col(Award.member_id), func.max(col(Award.awarded_at)))
            .where(
                col(Award.reward_id) == reward_id,
                col(Award.member_id).in_(part),
                col(Award.revoked_at).is_(None),
            )
            .group_by(col(Award.member_id))
        )
        last.update({int(m): as_utc(at) for m, at in rows if at is not None})
    return last


def _cooldown(service: AwardService, reward: RewardCore) -> int:
    cooldown = reward.cooldown_minutes or service.settings.reward_cooldown_minutes
    return int(cooldown) if reward.multiple and cooldown else 0


def _cooldown_sentence(reward: RewardCore, person: Person, wait: timedelta) -> str:
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    return (
        f"{person.display_name} just received {reward.reward}; it can be given again in "
        f"{minutes} minute{'s' if minutes != 1 else ''}."
    )


# Local time on Earth runs from UTC-12 to UTC+14.
_EARLIEST, _LATEST = timedelta(hours=-12), timedelta(hours=14)


def _zone_dependent(reward: RewardCore, now: datetime) -> bool:
    """Whether the timeframe bucket at `now` differs between zones. Buckets follow local time,
    which follows the zone's offset, so when the earliest and the latest zones agree every zone
    does (most of a month, every monthly bucket is the same everywhere): then no zone is read."""
    assert reward.timeframe is not None
    kind = reward.timeframe.value
    earliest = timeframe_bucket(kind, now + _EARLIEST, "UTC", "UTC")
    return earliest != timeframe_bucket(kind, now + _LATEST, "UTC", "UTC")


async def _judge(
    service: AwardService,
    row: Reward,
    reward: RewardCore,
    wanted: Sequence[Wanted],
    now: datetime,
    result: BatchResult,
) -> list[_Pending]:
    """Read what the rules need and judge every candidate; the refused go to `result.skipped`."""
    started = time.perf_counter()
    async with service.db.read() as session:
        # The award keys first: only a timeframe bucket needs the member (their zone), so a
        # re-run, which finds every key taken, loads nobody.
        zones: dict[int, str | None] = {}
        if reward.multiple and reward.timeframe is not None and _zone_dependent(reward, now):
            zones = await _zones(session, [w.member_id for w in wanted if not w.idempotency_key])
        keys: dict[int, str] = {}
        for item in wanted:
            stand_in = _stand_in(item.member_id, zones.get(item.member_id))
            keys[item.member_id] = service.award_key(reward, stand_in, now, item.idempotency_key)
        taken = await _taken(session, sorted(set(keys.values())))
        started = result.timed("award keys", started)
        fresh = [w for w in wanted if keys[w.member_id] not in taken]
        people = await load_people_many(session, [w.member_id for w in fresh])
        cooldown = _cooldown(service, reward)
        last = await _last_awarded(session, reward.reward_id, list(people)) if cooldown else {}
    started = result.timed("people", started)
    pending: list[_Pending] = []
    seen: set[str] = set()
    for item in wanted:
        key = keys[item.member_id]
        if key in taken or key in seen:
            # Named by nobody: a re-run skips tens of thousands and loads none of them.
            result.skipped.append((item.member_id, f"They already have {reward.reward}."))
            continue
        person = people.get(item.member_id)
        if person is None:
            result.skipped.append(
                (item.member_id, f"I don't know a member with id {item.member_id}.")
            )
            continue
        try:
            service.check_receiver(reward, person)
            service.check_available(reward, person, now)
        except (NotAllowed, NotAvailable) as refused:
            result.skipped.append((item.member_id, str(refused)))
            continue
        if cooldown and item.member_id in last:
            ends = last[item.member_id] + timedelta(minutes=cooldown)
            if ends > now:
                result.skipped.append(
                    (item.member_id, _cooldown_sentence(reward, person, ends - now))
                )
                continue
        seen.add(key)
        pending.append(_Pending(item, person, key, None))
    if reward.message and pending:
        pending = await _with_messages(service, reward, pending, now)
    result.timed("judging", started)
    return pending


async def _with_messages(
    service: AwardService, reward: RewardCore, pending: list[_Pending], now: datetime
) -> list[_Pending]:
    """`pending` with the reward's message rendered for each, `RENDER_CHUNK` at a time in a
    template thread (each render under its own limits), never on the event loop."""

    def render_chunk(chunk: Sequence[_Pending]) -> list[_Pending]:
        return [
            replace(
                p, message=service._message(reward, p.person, None, now, None, dict(p.wanted.args))
            )
            for p in chunk
        ]

    rendered: list[_Pending] = []
    try:
        for chunk in _chunks(pending, RENDER_CHUNK):
            job = partial(render_chunk, chunk)
            rendered += await in_thread(job, label=template_label(reward), renders=len(chunk))
    except TemplateRefused as refused:
        raise TemplateRefused(f"{refused}.") from None
    return rendered


def _event(
    row: Reward, reward: RewardCore, award_id: int, item: _Pending, source: AwardSource
) -> dict[str, Any]:
    """The ``badge.awarded`` payload, as `award` stages it."""
    return {
        "award_id": award_id,
        "reward_id": reward.reward_id,
        "reward": row.name,
        "reward_type": reward.reward_type.value,
        "member": outbox.member_ref(item.person),
        "giver": None,
        "points": reward.points,
        "source": source.value,
        "message": item.message,
    }


async def _write(
    service: AwardService,
    row: Reward,
    reward: RewardCore,
    batch: Sequence[_Pending],
    now: datetime,
    source: AwardSource,
    announce_as: str | None = None,
) -> dict[str, int]:
    """One transaction: the awards (duplicates left out by the unique key), then the ledger and
    outbox rows of exactly those inserted. Returns {award key: award id} of the inserted."""
    async with service.db.write() as session:
        if service.db.dialect == "postgresql":
            returned = await session.execute(
                _AWARD_UNNEST,
                {
                    "reward_id": reward.reward_id,
                    "points": reward.points,
                    "source": source.value,
                    "awarded_at": now,
                    "members": [item.person.id for item in batch],
                    "messages": [item.message for item in batch],
                    "keys": [item.key for item in batch],
                    "contexts": [json.dumps(item.wanted.args) for item in batch],
                },
            )
        else:
            # SQLite: one compiled statement executed over the rows (SQLAlchemy's
            # "insertmanyvalues" sends multi-row VALUES pages and gathers the RETURNING rows).
            values = [
                {
                    "reward_id": reward.reward_id,
                    "member_id": item.person.id,
                    "giver_id": None,
                    "message": item.message,
                    "points": reward.points,
                    "source": source.value,
                    "award_key": item.key,
                    "context": dict(item.wanted.args),
                    "awarded_at": now,
                    "api_key_id": None,
                }
                for item in batch
            ]
            returned = await session.execute(_SQLITE_AWARD_INSERT, values)
        inserted = {str(key): int(award_id) for award_id, key in returned}
        made = [item for item in batch if item.key in inserted]
        if made and announce_as is not None:
            # The batch's awards, to announce: one row, committed with them (see `AnnouncePending`).
            await session.execute(
                PENDING_TABLE.insert(),
                {
                    "reward_id": reward.reward_id,
                    "run_key": announce_as,
                    "award_ids": [inserted[item.key] for item in made],
                    "created_at": now,
                },
            )
        if made and reward.points and service.db.dialect == "postgresql":
            # One statement for the batch's ledger rows (all alike but member and award): two
            # arrays, instead of a thousand single-row INSERTs pipelined by executemany.
            await session.execute(
                _LEDGER_UNNEST,
                {
                    "members": [item.person.id for item in made],
                    "awards": [inserted[item.key] for item in made],
                    "points": reward.points,
                    "note": reward.reward,
                    "created_at": now,
                },
            )
        elif made and reward.points:
            ledger = [
                {
                    "member_id": item.person.id,
                    "points": reward.points,
                    "kind": "award",
                    "award_id": inserted[item.key],
                    "kudos_id": None,
                    "note": reward.reward,
                    "created_at": now,
                }
                for item in made
            ]
            await session.execute(LEDGER_TABLE.insert(), ledger)
        if made:
            await counters.awarded_many(
                session,
                service.settings.timezone,
                [item.person.id for item in made],
                points=reward.points,
                category_id=row.category_id,
                at=now,
            )
        if made and service.settings.event_manager.active:
            events = [
                {
                    "event_id": str(uuid.uuid4()),
                    "type": outbox.BADGE_AWARDED,
                    "occurred_at": now,
                    "payload": _event(row, reward, inserted[item.key], item, source),
                    "attempts": 0,
                }
                for item in made
            ]
            await session.execute(OUTBOX_TABLE.insert(), events)
            session.info[OUTBOX_STAGED] = True
    if inserted:
        service.db.after_commit(partial(service.signals.awarded, source.value, len(inserted)))
    return inserted


async def award_batch(
    service: AwardService,
    reward_id: int,
    wanted: Sequence[Wanted],
    *,
    source: AwardSource = AwardSource.RULE,
    batch_size: int = BATCH_SIZE,
    announce_as: str | None = None,
) -> BatchResult:
    """Award reward `reward_id` to every member of `wanted` that the rules allow (system awards:
    no giver). Raises `UnknownReward`; every other refusal is a skip with its sentence.

    `announce_as` (a run key) records every batch's awards as still to be announced for that run
    (an `AnnouncePending` row in the batch's own transaction); `announcements.announce_awards`
    deletes the rows when it records the announcement, so a crash in between loses no
    announcement."""
    if source in PERSON_SOURCES:
        raise InvalidInput("Awards from people go one at a time, through `AwardService.award`.")
    now = service.clock.now()
    result = BatchResult()
    async with service.db.read() as session:
        row = await session.get(Reward, reward_id)
    if row is None:
        raise UnknownReward(f"There is no reward with id {reward_id}.")
    reward = core_of(row)
    pending = await _judge(service, row, reward, wanted, now, result)
    views: dict[int, AwardView] = {}
    for batch in _chunks(pending, batch_size):
        started = time.perf_counter()
        inserted = await _write(service, row, reward, batch, now, source, announce_as)
        result.timed("inserts", started)
        for item in batch:
            award_id = inserted.get(item.key)
            if award_id is None:  # taken by a concurrent writer since the read
                result.skipped.append(
                    (item.person.id, service._duplicate_sentence(reward, item.person, item.key))
                )
                continue
            views[item.person.id] = AwardView(
                id=award_id,
                reward_id=reward.reward_id,
                reward_name=row.name,
                member_id=item.person.id,
                member_name=item.person.display_name,
                giver_id=None,
                giver_name=None,
                points=reward.points,
                message=item.message,
                source=source.value,
                awarded_at=as_utc(now),
            )
    result.awarded = [views[w.member_id] for w in wanted if w.member_id in views]
    return result

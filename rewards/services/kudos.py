"""Kudos: quick peer-to-peer recognition with tags, worth `KUDOS_POINTS` to each receiver.

Tags are normalised to one key: case and a leading `#` never matter, so `#TeamWork` and `teamwork`
are one tag. A predefined list is seeded; any other tag a person types becomes a custom tag on
first use, unless `KUDOS_TAGS=closed` keeps to the predefined ones. `KUDOS_REQUIRE_TAG` makes a
tag required. A giver's allowance (`rewards.economy.allowance`) is spent in the kudos' own
transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.admin.locks import check_can_give
from rewards.clock import Clock, SystemClock, as_utc
from rewards.economy import allowance
from rewards.economy.allowance import AllowanceLeft
from rewards.errors import InvalidInput, NotAllowed, SelfAward, UnknownMember
from rewards.inputs import check_text
from rewards.observability import Observer
from rewards.services import outbox
from rewards.services._subjects import Person, load_people
from rewards.services.kudos_rows import KUDOS_TAG_TABLE, KudosRows, write_kudos
from rewards.services.sql import insert_ignoring_duplicates
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import (
    ApiKey,
    Kudos,
    KudosReceiver,
    KudosTag,
    KudosTagLink,
    LedgerEntry,
)

MAX_TAGS = 10
MAX_TAG_LENGTH = 40
TAG_PATTERN = re.compile(r"^[\w-]+$")

PREDEFINED_TAGS: tuple[tuple[str, str], ...] = (
    ("Teamwork", "Worked together to get it done"),
    ("Ownership", "Took responsibility from start to finish"),
    ("Innovation", "A new idea that made a difference"),
    ("Customer-First", "Went the extra mile for a customer"),
    ("Helpfulness", "Helped someone out"),
    ("Leadership", "Showed the way"),
    ("Learning", "Learned or taught something new"),
    ("Quality", "Sweated the details"),
    ("Mentoring", "Helped someone grow"),
    ("Thank-You", "Simply: thanks"),
)


def normalise_tag(raw: str) -> str:
    """The key of a tag: no leading `#`, case-folded. Raises InvalidInput for unusable tags."""
    tag = raw.strip().lstrip("#").strip()
    if not tag:
        raise InvalidInput("A tag can't be empty.")
    if len(tag) > MAX_TAG_LENGTH:
        raise InvalidInput(
            f"The tag #{tag[:20]}… is too long (at most {MAX_TAG_LENGTH} characters)."
        )
    if not TAG_PATTERN.match(tag):
        raise InvalidInput(f"The tag #{tag} may only use letters, digits, '-' and '_'.")
    return tag.casefold()


@dataclass(frozen=True)
class KudosView:
    id: int
    giver_id: int
    giver_name: str
    receivers: tuple[tuple[int, str], ...]
    message: str
    tags: tuple[str, ...]
    points_each: int
    visibility: str
    created_at: datetime
    via_api_key: str | None = None  # the REST API key that sent it (None: not the API)
    allowance: AllowanceLeft | None = None  # the giver's, after this kudos (None: unlimited)


@dataclass(frozen=True)
class TagView:
    name: str
    label: str
    description: str | None
    predefined: bool


async def ensure_predefined_tags(db: Database, clock: Clock | None = None) -> None:
    """Seed the predefined tags; safe to run at every start and from several processes."""
    now = (clock or SystemClock()).now()
    rows = [
        {
            "name": normalise_tag(label),
            "label": label,
            "description": text,
            "predefined": True,
            "created_at": now,
        }
        for label, text in PREDEFINED_TAGS
    ]
    async with db.write() as session:
        await insert_ignoring_duplicates(session, KUDOS_TAG_TABLE, rows)


async def list_kudos(
    db: Database, *, member_id: int | None = None, limit: int = 50, before_id: int | None = None
) -> list[KudosView]:
    """Public kudos that stand (a revoked one is left out), newest first (by id), a page at a
    time: pass the smallest id of the previous page as `before_id`. With `member_id`, only kudos
    that member gave or received."""
    query = (
        select(Kudos, col(ApiKey.name))
        .outerjoin(ApiKey, col(ApiKey.id) == col(Kudos.api_key_id))
        .where(col(Kudos.visibility) == "public", col(Kudos.revoked_at).is_(None))
    )
    if member_id is not None:
        received = select(col(KudosReceiver.kudos_id)).where(
            col(KudosReceiver.member_id) == member_id
        )
        query = query.where(or_(col(Kudos.giver_id) == member_id, col(Kudos.id).in_(received)))
    if before_id is not None:
        query = query.where(col(Kudos.id) < before_id)
    query = query.order_by(col(Kudos.id).desc()).limit(max(1, limit))
    async with db.read() as session:
        found = (await session.execute(query)).all()
        rows = [row for row, _ in found]
        key_names = {row.id: name for row, name in found}
        ids = [row.id for row in rows]
        receivers: dict[int, list[int]] = {}
        for kudos_id, receiver_id in await session.execute(
            select(col(KudosReceiver.kudos_id), col(KudosReceiver.member_id))
            .where(col(KudosReceiver.kudos_id).in_(ids))
            .order_by(col(KudosReceiver.member_id))
        ):
            receivers.setdefault(kudos_id, []).append(receiver_id)
        tags: dict[int, list[str]] = {}
        for kudos_id, tag in await session.execute(
            select(col(KudosTagLink.kudos_id), col(KudosTagLink.tag))
            .where(col(KudosTagLink.kudos_id).in_(ids))
            .order_by(col(KudosTagLink.tag))
        ):
            tags.setdefault(kudos_id, []).append(tag)
        points: dict[int, int] = {}
        for paid_kudos, most in await session.execute(
            select(col(LedgerEntry.kudos_id), func.max(col(LedgerEntry.points)))
            .where(col(LedgerEntry.kudos_id).in_(ids), col(LedgerEntry.kind) == "kudos")
            .group_by(col(LedgerEntry.kudos_id))
        ):
            if paid_kudos is not None:
                points[paid_kudos] = int(most)
        wanted = {row.giver_id for row in rows} | {m for ms in receivers.values() for m in ms}
        people = await load_people(session, sorted(wanted))
    return [
        KudosView(
            id=row.id,
            giver_id=row.giver_id,
            giver_name=people[row.giver_id].display_name,
            receivers=tuple((m, people[m].display_name) for m in receivers.get(row.id, [])),
            message=row.message,
            tags=tuple(tags.get(row.id, [])),
            points_each=int(points.get(row.id, 0)),
            visibility=row.visibility,
            created_at=as_utc(row.created_at),
            via_api_key=key_names.get(row.id),
        )
        for row in rows
        if row.id is not None
    ]


async def list_tags(db: Database) -> list[TagView]:
    async with db.read() as session:
        rows = (
            await session.execute(
                select(KudosTag).order_by(KudosTag.predefined.desc(), KudosTag.name)  # type: ignore[attr-defined]
            )
        ).scalars()
        return [TagView(r.name, r.label, r.description, r.predefined) for r in rows]


class KudosService:
    # True in the `Core`'s evented service: a kudos stages ``kudos.given`` (giver) and
    # ``kudos.received`` (each receiver) hooks (`rewards.hooks`) in its own transaction.
    stage_hooks = False
    # Told of each committed kudos (the `Core` puts its `signals` here; alone: nobody).
    signals: Observer = Observer()

    def __init__(self, db: Database, settings: Settings, clock: Clock | None = None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock or SystemClock()

    def _validate(
        self, giver_id: int, receivers: list[int], message: str, tags: list[str], visibility: str
    ) -> tuple[list[int], str, dict[str, str]]:
        unique = list(dict.fromkeys(receivers))
        if not unique:
            raise InvalidInput("Who are the kudos for? Name at least one person.")
        if len(unique) > self.settings.kudos_max_receivers:
            raise InvalidInput(
                f"Kudos can go to at most {self.settings.kudos_max_receivers} people at once."
            )
        if giver_id in unique:
            raise SelfAward("You can't send kudos to yourself, but thanks for the enthusiasm!")
        text = check_text((message or "").strip(), "message")
        if not text:
            raise InvalidInput("Add a few words: what are the kudos for?")
        if len(text) > self.settings.kudos_max_message:
            raise InvalidInput(
                f"The message is too long ({len(text)} characters; at most "
                f"{self.settings.kudos_max_message})."
            )
        if visibility not in {"public", "private"}:
            raise InvalidInput("Visibility is either public or private.")
        normalised: dict[str, str] = {}
        for raw in tags:
            label = check_text(raw, "tag").strip().lstrip("#").strip()
            normalised.setdefault(normalise_tag(raw), label)
        if len(normalised) > MAX_TAGS:
            raise InvalidInput(f"Use at most {MAX_TAGS} tags.")
        if self.settings.kudos_require_tag and not normalised:
            examples = " or ".join(f"#{label.lower()}" for label, _ in PREDEFINED_TAGS[:2])
            raise InvalidInput(
                f"Kudos need a tag: what value do they recognise? Add one, e.g. {examples}."
            )
        return unique, text, normalised

    async def _closed_tags(self, session: AsyncSession, tags: dict[str, str]) -> None:
        """With `KUDOS_TAGS=closed`, refuse tags that are not predefined, naming those that are.
        One read, which replaces the insert of new tags (closed, there are none)."""
        known = set(
            (
                await session.execute(
                    select(col(KudosTag.name)).where(
                        col(KudosTag.name).in_(list(tags)), col(KudosTag.predefined)
                    )
                )
            ).scalars()
        )
        unknown = [label for key, label in tags.items() if key not in known]
        if unknown:
            allowed = (
                await session.execute(
                    select(col(KudosTag.label))
                    .where(col(KudosTag.predefined))
                    .order_by(col(KudosTag.name))
                )
            ).scalars()
            raise InvalidInput(
                f"#{unknown[0]} is not one of our kudos tags. Use one of: "
                + ", ".join(f"#{label}" for label in allowed)
                + "."
            )

    async def _spend_allowance(
        self, session: AsyncSession, giver: Person, cost: int, now: datetime
    ) -> tuple[AllowanceLeft | None, Exception | None]:
        """Spend the giver's allowance (one statement; none when unlimited): what is left, or
        the refusal to raise once the block has ended (the refused upsert wrote nothing)."""
        limit = allowance.limit_for(self.settings, giver.subject)
        if limit is None:
            return None, None
        settings = self.settings
        period = allowance.current_period(
            settings.kudos_allowance_period, giver.timezone, settings.timezone, now
        )
        left = await allowance.spend(session, giver.id, period, cost, limit)
        if left is not None:
            return left, None
        used = await allowance.used_in(session, giver.id, period)
        return None, allowance.refusal(AllowanceLeft(limit, used, period), cost, now)

    async def allowance_left(self, member_id: int, now: datetime) -> AllowanceLeft | None:
        """What the member may still give this period (None: unlimited), for `/me` and the
        kudos form; reads nothing when nobody has an allowance."""
        settings = self.settings
        if settings.kudos_allowance is None and not settings.kudos_allowance_overrides:
            return None
        async with self.db.read() as session:
            person = (await load_people(session, [member_id])).get(member_id)
            if person is None:
                return None
            return await allowance.allowance_left(
                session, settings, person.subject, person.timezone, now
            )

    async def give(
        self,
        giver_id: int,
        receivers: list[int],
        message: str,
        tags: list[str] | None = None,
        *,
        visibility: str = "public",
        channel: dict[str, Any] | None = None,
        api_key_id: int | None = None,
    ) -> KudosView:
        """Record kudos from `giver_id` to `receivers` and credit each receiver's points,
        spending one unit of the giver's allowance per receiver (`AllowanceSpent` when it
        cannot pay; nothing is written then).

        `api_key_id` is the REST API key that sent them (the audit trail; None elsewhere)."""
        unique, text, tag_map = self._validate(giver_id, receivers, message, tags or [], visibility)
        now = self.clock.now()
        points = self.settings.kudos_points
        # The hot path: no savepoint (a refusal below raises before anything is written, or,
        # the allowance's, after the block, whose refused upsert wrote nothing), and the rows in
        # one statement on PostgreSQL (`kudos_rows`), whatever the number of receivers and tags.
        async with self.db.write(savepoint=False) as session:
            people = await load_people(session, [giver_id, *unique])
            if giver_id not in people:
                raise UnknownMember(f"I don't know a member with id {giver_id}.")
            # An admin's /lock, read with the giver above: no statement of its own.
            check_can_give(people[giver_id].giving_locked)
            missing = [r for r in unique if r not in people]
            if missing:
                raise UnknownMember(f"I don't know a member with id {missing[0]}.")
            inactive = [people[r].display_name for r in unique if not people[r].active]
            if inactive:
                raise NotAllowed(f"{inactive[0]} is not an active member.")
            if self.settings.kudos_tags == "closed" and tag_map:
                await self._closed_tags(session, tag_map)
            # The allowance last: a refusal from it must be raised after the block, which then
            # ends as one that wrote nothing (raising inside would count the upsert as a write).
            left, refused = await self._spend_allowance(session, people[giver_id], len(unique), now)
            if refused is not None:
                view = None
            else:
                kudos_id = await write_kudos(
                    session,
                    KudosRows(
                        giver_id=giver_id,
                        receivers=unique,
                        message=text,
                        visibility=visibility,
                        channel=channel,
                        api_key_id=api_key_id,
                        tags=tag_map,
                        new_tags=self.settings.kudos_tags == "open",  # closed: they all exist
                        points_each=points,
                        stage_hooks=self.stage_hooks,
                        tz_name=self.settings.timezone,
                        at=now,
                    ),
                    # Nothing is written after the rows unless the outbox event below is.
                    last=not self.settings.event_manager.active,
                )
                outbox.stage(
                    session,
                    self.settings,
                    outbox.KUDOS_GIVEN,
                    {
                        "kudos_id": kudos_id,
                        "giver": outbox.member_ref(people[giver_id]),
                        "receivers": [outbox.member_ref(people[r]) for r in unique],
                        "message": text,
                        "tags": list(tag_map),
                        "points_each": points,
                        "visibility": visibility,
                    },
                    at=now,
                )
                key = await session.get(ApiKey, api_key_id) if api_key_id is not None else None
                view = KudosView(
                    id=kudos_id,
                    giver_id=giver_id,
                    giver_name=people[giver_id].display_name,
                    receivers=tuple((r, people[r].display_name) for r in unique),
                    message=text,
                    tags=tuple(tag_map),
                    points_each=points,
                    visibility=visibility,
                    created_at=as_utc(now),
                    via_api_key=key.name if key else None,
                    allowance=left,
                )
        if refused is not None:
            raise refused
        assert view is not None
        # Counted once committed: inside a turn's unit that is when the unit commits.
        source = "api" if api_key_id is not None else "chat"
        self.db.after_commit(partial(self.signals.kudos_given, source))
        return view

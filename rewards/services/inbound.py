"""Inbound broker events: what other systems tell the engine through RabbitMQ.

The broker adapter (`bots.broker`) owns the connection, acks and retries; this module owns what a
message *means*, so it stays testable without a broker and free of any AMQP import. It mirrors the
REST endpoint `POST /rewards/api/v1/events`: a login records activity (and fires ``login`` once
per member's local day), any other event fires the Automated Badges listening to it.

The message body (UTF-8 JSON, at most 64 KiB)::

    {
      "event_id": "crm-7f3a",              # required, 1-200 characters, unique per event
      "type": "user.login",                # optional: the AMQP routing key when absent
      "occurred_at": "2026-11-24T09:00:00+00:00",   # optional ISO-8601, default: now
                                           # (no offset: UTC)
      "member": 42,                        # required: id, email or "platform:user_id"
      "payload": {"any": "json"}           # optional object, at most 100 keys
    }

Types:

- ``user.login`` (or ``login``): the member's activity at `occurred_at`; the first of their local
  day fires ``login``, so the seed's "Welcome to Navigator" (`multiple: true`) pays once per
  login day however many logins are reported;
- ``attendance.recorded``: payload ``{"dataset": "office", "day": "YYYY-MM-DD", "present": true}``
  (`present` defaults to true) is upserted for `AttendanceRule`;
- any other name an enabled Automated Badge lists in its `events`: fires those badges with the
  payload as template `args`; the event id is the occurrence, so a repeatable badge pays once per
  event however often the event is delivered;
- anything else is ignored (and remembered as seen). So are the events the core emits itself
  (``kudos.given``, ``kudos.received``, ``badge.awarded``): an outside system must not be able to
  fake a kudos, and the engine's own outbound events (``rewards.*``) must not loop back.

Failures come in two kinds, because the consumer must treat them differently:

- `PermanentFailure` (`MalformedEvent`: the body is unusable; `RejectedEvent`: well formed but
  naming an unknown member): retrying cannot help, so the message is dead-lettered with the
  reason at once;
- any other exception (the database is down, a deadlock): the same message may well succeed later,
  so it propagates and the consumer retries it with back-off.

Duplicates: a broker delivers at least once, and producers re-send. The event id is looked up in
`InboundEvent` (platform ``rabbitmq``) first and recorded only after the event was applied, so a
failure half-way leaves it unrecorded and the retry applies it; each application is itself
idempotent (the login day, the attendance upsert, the event's occurrence key), so two deliveries
racing past the check still award once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlmodel import col, select

from rewards.catalog.model import RewardKind
from rewards.clock import as_utc
from rewards.core import Core
from rewards.errors import UnknownMember
from rewards.inputs import API_JSON, InputRefused, JsonLimits, check_document_text, parse_json
from rewards.rules.attendance import upsert_attendance
from rewards.services import members
from rewards.services.awards import AwardSource, AwardView
from rewards.services.catalog import list_definitions
from rewards.services.events import BADGE_AWARDED, KUDOS_GIVEN, KUDOS_RECEIVED, LOGIN, event_names
from rewards.services.members import MemberView
from rewards.services.outbox import ROUTING_PREFIX
from rewards.services.profile import member_awards
from rewards.services.sql import insert_ignoring_duplicates
from rewards.store.db import Database
from rewards.store.models import InboundEvent

PLATFORM = "rabbitmq"  # the InboundEvent platform of broker deliveries
MAX_BODY = 64 * 1024
MAX_EVENT_ID = 200
MAX_TYPE = 200  # as the catalogue's event names
MAX_MEMBER_REF = 320  # as the REST API's member references (an email's longest)
MAX_PAYLOAD_KEYS = 100  # as the REST API's event payloads

USER_LOGIN = "user.login"
ATTENDANCE_RECORDED = "attendance.recorded"
# Emitted by the core itself; never accepted from outside, never bound.
INTERNAL_EVENTS = frozenset({LOGIN, KUDOS_GIVEN, KUDOS_RECEIVED, BADGE_AWARDED})

_TYPE = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
_DATASET = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")  # as the REST API's data set names

INBOUND_TABLE = InboundEvent.__table__  # type: ignore[attr-defined]


class PermanentFailure(Exception):
    """A message that can never succeed: dead-letter it now, with `reason`, and never retry."""

    kind = "permanent"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedEvent(PermanentFailure):
    """The body is not a valid event (not JSON, a missing or bad field, a bad payload)."""

    kind = "malformed"


class RejectedEvent(PermanentFailure):
    """A well-formed event the engine cannot apply (it names nobody known here)."""

    kind = "rejected"


@dataclass(frozen=True)
class InboundMessage:
    event_id: str
    type: str
    member: int | str
    payload: dict[str, Any] = field(default_factory=dict)
    # None: "now" when handled (the clock of the core that handles it).
    occurred_at: datetime | None = None


class Outcome(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


@dataclass(frozen=True)
class HandleResult:
    outcome: Outcome
    event_id: str
    type: str
    member_id: int | None = None
    awards: tuple[AwardView, ...] = ()
    detail: str = ""


# --- parsing --------------------------------------------------------------------------------------


def _decode(body: bytes) -> dict[str, Any]:
    # The input gate (`rewards.inputs`): at most MAX_BODY bytes, nested at most 32 deep, no
    # NaN/Infinity (PostgreSQL's JSONB refuses them), no control characters in any string (NUL
    # neither): refused here rather than as a database error, retried for nothing.
    limits = JsonLimits(max_bytes=MAX_BODY, max_depth=API_JSON.max_depth)
    try:
        data = parse_json(body, limits, what="the body")
        check_document_text(data)
    except InputRefused as problem:
        raise MalformedEvent(str(problem).rstrip(".")) from None
    if not isinstance(data, dict):
        raise MalformedEvent(f"the body must be a JSON object, not {type(data).__name__}")
    return data


def _event_id(data: dict[str, Any]) -> str:
    value = data.get("event_id")
    if value is None:
        raise MalformedEvent("event_id is missing")
    if not isinstance(value, str) or not value.strip():
        raise MalformedEvent("event_id must be a non-empty string")
    if len(value) > MAX_EVENT_ID:
        raise MalformedEvent(f"event_id is longer than {MAX_EVENT_ID} characters")
    return value


def _type(data: dict[str, Any], routing_key: str) -> str:
    value = data.get("type")
    if value is None:
        value = routing_key
        if not value:
            raise MalformedEvent("type is missing and the message has no routing key")
    if not isinstance(value, str) or not _TYPE.match(value):
        shown = repr(value)[:80]
        raise MalformedEvent(
            f"type must be 1 to {MAX_TYPE} letters, digits, '_', '.', ':' or '-', not {shown}"
        )
    return value


def _occurred_at(data: dict[str, Any]) -> datetime | None:
    value = data.get("occurred_at")
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedEvent("occurred_at must be an ISO-8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedEvent(
            f"occurred_at is not an ISO-8601 date and time: {value[:60]!r}"
        ) from None
    return as_utc(moment)  # no offset: UTC, as every producer that omits it means


def _member(data: dict[str, Any]) -> int | str:
    value = data.get("member")
    if value is None:
        raise MalformedEvent("member is missing (an id, an email or platform:user_id)")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise MalformedEvent("member must be an id, an email or platform:user_id")
    if isinstance(value, int):
        if value < 1:
            raise MalformedEvent("a member id is a positive integer")
        return value
    value = value.strip()
    if not value or len(value) > MAX_MEMBER_REF:
        raise MalformedEvent(f"member must be 1 to {MAX_MEMBER_REF} characters")
    return value


def _payload(data: dict[str, Any]) -> dict[str, Any]:
    value = data.get("payload")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedEvent("payload must be a JSON object")
    if len(value) > MAX_PAYLOAD_KEYS:
        raise MalformedEvent(f"payload has more than {MAX_PAYLOAD_KEYS} keys")
    return value


def attendance_row(payload: dict[str, Any]) -> tuple[str, date, bool]:
    """`(dataset, day, present)` of an ``attendance.recorded`` payload, or MalformedEvent."""
    dataset = payload.get("dataset")
    if not isinstance(dataset, str) or not _DATASET.match(dataset):
        raise MalformedEvent(
            "attendance.recorded needs payload.dataset: 1 to 100 letters, digits, '_', '.', ':' "
            "or '-'"
        )
    raw_day = payload.get("day")
    try:
        if not isinstance(raw_day, str) or len(raw_day) != 10:
            raise ValueError
        day = date.fromisoformat(raw_day)
    except ValueError:
        raise MalformedEvent("attendance.recorded needs payload.day as YYYY-MM-DD") from None
    present = payload.get("present", True)
    if not isinstance(present, bool):
        raise MalformedEvent("attendance.recorded: payload.present must be true or false")
    return dataset, day, present


def parse(body: bytes, routing_key: str) -> InboundMessage:
    """The event in a message body, or MalformedEvent saying what is wrong with it.

    `routing_key` stands in for a missing `type` (producers that route by key alone).
    """
    data = _decode(body)
    event_id = _event_id(data)
    event_type = _type(data, routing_key)
    message = InboundMessage(
        event_id=event_id,
        type=event_type,
        member=_member(data),
        payload=_payload(data),
        occurred_at=_occurred_at(data),
    )
    if event_type == ATTENDANCE_RECORDED:
        attendance_row(message.payload)  # a bad payload is malformed, whatever the database says
    return message


# --- handling -------------------------------------------------------------------------------------


async def _seen(db: Database, event_id: str) -> bool:
    async with db.read() as session:
        found = await session.scalar(
            select(col(InboundEvent.id)).where(
                col(InboundEvent.platform) == PLATFORM, col(InboundEvent.event_id) == event_id
            )
        )
    return found is not None


async def _remember(db: Database, event_id: str, now: datetime) -> None:
    """Record the event as handled; a concurrent delivery that recorded it first is no error."""
    async with db.write() as session:
        await insert_ignoring_duplicates(
            session,
            INBOUND_TABLE,
            [{"platform": PLATFORM, "event_id": event_id, "received_at": now}],
        )


async def _resolve(db: Database, ref: int | str) -> MemberView:
    try:
        return await members.resolve(db, ref)
    except UnknownMember:
        raise RejectedEvent(f"unknown member {str(ref)[:100]!r}") from None


async def _login(core: Core, member: MemberView, moment: datetime) -> tuple[bool, list[AwardView]]:
    """`EventService.activity`, and the event awards it made (as the REST API reports them)."""
    latest = await member_awards(core.db, member.id, limit=1)
    first = await core.events.activity(member.id, member.timezone, now=moment)
    if not first:
        return False, []
    since = latest[0].id if latest else 0
    newer = await member_awards(core.db, member.id, limit=100)
    made = [a for a in newer if a.id > since and a.source == AwardSource.EVENT]
    return True, list(reversed(made))


async def handle(core: Core, message: InboundMessage) -> HandleResult:
    """Apply one parsed event; see the module docstring for what each type does.

    Raises PermanentFailure (RejectedEvent) for an unknown member; any other exception is
    transient and the caller should retry.
    """
    now = core.clock.now()
    moment = message.occurred_at or now
    event_type = message.type
    if await _seen(core.db, message.event_id):
        return HandleResult(Outcome.DUPLICATE, message.event_id, event_type, detail="seen before")

    if event_type in (USER_LOGIN, LOGIN):
        member = await _resolve(core.db, message.member)
        first, made = await _login(core, member, moment)
        detail = "first activity of the day" if first else "not the first activity of the day"
        result = HandleResult(
            Outcome.PROCESSED, message.event_id, event_type, member.id, tuple(made), detail
        )
    elif event_type == ATTENDANCE_RECORDED:
        dataset, day, present = attendance_row(message.payload)
        member = await _resolve(core.db, message.member)
        await upsert_attendance(core.db, dataset, [(member.id, day, present)])
        result = HandleResult(
            Outcome.PROCESSED,
            message.event_id,
            event_type,
            member.id,
            detail=f"{dataset} {day.isoformat()} {'present' if present else 'absent'}",
        )
    elif event_type in INTERNAL_EVENTS or event_type.startswith(ROUTING_PREFIX):
        result = HandleResult(
            Outcome.IGNORED, message.event_id, event_type, detail="emitted by the engine itself"
        )
    elif not await core.events.listeners(event_type):
        result = HandleResult(
            Outcome.IGNORED, message.event_id, event_type, detail="no Automated Badge listens"
        )
    else:
        member = await _resolve(core.db, message.member)
        made = await core.events.emit(
            event_type, member.id, message.payload, now=moment, occurrence=message.event_id
        )
        result = HandleResult(
            Outcome.PROCESSED, message.event_id, event_type, member.id, tuple(made)
        )
    await _remember(core.db, message.event_id, now)
    return result


async def custom_event_names(db: Database) -> list[str]:
    """The event names enabled Automated Badges listen to, beyond those the core emits itself:
    the routing keys the inbound queue must be bound to for those badges to ever fire."""
    names: set[str] = set()
    for definition in await list_definitions(db, kind=RewardKind.AUTOMATED):
        names.update(event_names(definition))
    return sorted(n for n in names if n not in INTERNAL_EVENTS and not n.startswith(ROUTING_PREFIX))


def describe(result: HandleResult) -> str:
    """One log line for a handled event."""
    awards = ", ".join(f"{a.reward_name} -> {a.member_id}" for a in result.awards)
    parts = [result.outcome.value, result.type, result.event_id]
    if result.member_id is not None:
        parts.append(f"member {result.member_id}")
    if result.detail:
        parts.append(result.detail)
    if awards:
        parts.append(f"awarded {awards}")
    return " | ".join(parts)


__all__ = [
    "ATTENDANCE_RECORDED",
    "MAX_BODY",
    "PLATFORM",
    "USER_LOGIN",
    "HandleResult",
    "InboundMessage",
    "MalformedEvent",
    "Outcome",
    "PermanentFailure",
    "RejectedEvent",
    "attendance_row",
    "custom_event_names",
    "describe",
    "handle",
    "parse",
]

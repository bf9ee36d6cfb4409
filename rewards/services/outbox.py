"""The transactional outbox: domain events recorded with the change they describe.

A service that changes something worth telling other systems about (a kudos, an award, a
revocation, a lottery draw, a nomination campaign opening or closing, a workflow step) calls
`stage(session, settings, type, payload, at=...)` inside its own write transaction. The row
commits or rolls back with the change, so the broker can never hear of a kudos that did not
happen, nor miss one that did. The relay (`bots.broker`) claims pending rows with a lease,
publishes them with publisher confirms and stamps them published; a broker outage only delays
them.

Nothing is staged while the event manager is off, so deployments without RabbitMQ grow no table.

The message body every consumer sees (`OutboxMessage.body`)::

    {"event_id": "5f0c...", "type": "kudos.given", "occurred_at": "2026-11-24T09:00:00+00:00",
     "source": "nav-rewards", "payload": {...}}
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.clock import as_utc
from rewards.services._subjects import Person
from rewards.settings import Settings
from rewards.store.db import OUTBOX_STAGED, Database
from rewards.store.models import OutboxEvent

# Every type the core publishes; the routing key is "rewards." + type.
KUDOS_GIVEN = "kudos.given"
BADGE_AWARDED = "badge.awarded"
AWARD_REVOKED = "award.revoked"
LOTTERY_DRAWN = "lottery.drawn"
NOMINATION_OPENED = "nomination.opened"
NOMINATION_CLOSED = "nomination.closed"
WORKFLOW_STEP_COMPLETED = "workflow.step_completed"
WORKFLOW_COMPLETED = "workflow.completed"
EVENT_TYPES = (
    KUDOS_GIVEN,
    BADGE_AWARDED,
    AWARD_REVOKED,
    LOTTERY_DRAWN,
    NOMINATION_OPENED,
    NOMINATION_CLOSED,
    WORKFLOW_STEP_COMPLETED,
    WORKFLOW_COMPLETED,
)
ROUTING_PREFIX = "rewards."
SOURCE = "nav-rewards"


def routing_key(event_type: str) -> str:
    """The outbound routing key: kept apart from inbound keys (``user.login``), so a queue bound
    to inbound events never receives the engine's own events back."""
    return ROUTING_PREFIX + event_type


def member_ref(person: Person | None) -> dict[str, Any] | None:
    """How events name a member: the id here, plus the email other systems know them by."""
    if person is None:
        return None
    return {"id": person.id, "name": person.display_name, "email": person.subject.email}


def stage(
    session: AsyncSession,
    settings: Settings,
    event_type: str,
    payload: dict[str, Any],
    *,
    at: datetime,
) -> str | None:
    """Add an event to the caller's transaction; returns its id, or None when the event manager
    is off (nothing is written then)."""
    if not settings.event_manager.active:
        return None
    event_id = str(uuid.uuid4())
    session.info[OUTBOX_STAGED] = True  # the relay is woken once this transaction commits
    session.add(OutboxEvent(event_id=event_id, type=event_type, occurred_at=at, payload=payload))
    return event_id


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    event_id: str
    type: str
    occurred_at: datetime
    payload: dict[str, Any]

    @property
    def routing_key(self) -> str:
        return routing_key(self.type)

    def body(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.type,
            "occurred_at": as_utc(self.occurred_at).isoformat(),
            "source": SOURCE,
            "payload": self.payload,
        }


def _message(row: OutboxEvent) -> OutboxMessage:
    assert row.id is not None
    return OutboxMessage(row.id, row.event_id, row.type, row.occurred_at, dict(row.payload))


async def claim(
    db: Database, *, now: datetime, limit: int = 100, lease: timedelta = timedelta(seconds=60)
) -> list[OutboxMessage]:
    """Take up to `limit` unpublished events, oldest first, for `lease`.

    Another relay skips them until the lease ends (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite
    has one writer at a time anyway). A relay that dies mid-batch leaves its rows to be claimed
    again after the lease: they may then be published twice, which is why every message carries
    its `event_id` as the AMQP message id.
    """
    pending = and_(
        col(OutboxEvent.published_at).is_(None),
        or_(col(OutboxEvent.claimed_until).is_(None), col(OutboxEvent.claimed_until) < now),
    )
    query = select(OutboxEvent).where(pending).order_by(col(OutboxEvent.id)).limit(limit)
    if not db.is_sqlite:
        query = query.with_for_update(skip_locked=True)
    async with db.write() as session:
        rows = list((await session.execute(query)).scalars())
        if rows:
            await session.execute(
                update(OutboxEvent)
                .where(col(OutboxEvent.id).in_([r.id for r in rows]))
                .values(claimed_until=now + lease, attempts=OutboxEvent.attempts + 1)
            )
        return [_message(r) for r in rows]


async def mark_published(db: Database, ids: Iterable[int], *, now: datetime) -> None:
    wanted = list(ids)
    if not wanted:
        return
    async with db.write() as session:
        await session.execute(
            update(OutboxEvent)
            .where(col(OutboxEvent.id).in_(wanted), col(OutboxEvent.published_at).is_(None))
            .values(published_at=now, claimed_until=None, last_error=None)
        )


async def release(db: Database, ids: Sequence[int], error: str) -> None:
    """Give claimed events back after a failed publish, noting why, for the next attempt."""
    if not ids:
        return
    async with db.write() as session:
        await session.execute(
            update(OutboxEvent)
            .where(col(OutboxEvent.id).in_(list(ids)), col(OutboxEvent.published_at).is_(None))
            .values(claimed_until=None, last_error=error[:500])
        )


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    published: int
    oldest_pending: datetime | None
    last_error: str | None


async def stats(db: Database) -> OutboxStats:
    async with db.read() as session:
        pending, oldest = (
            await session.execute(
                select(func.count(), func.min(OutboxEvent.occurred_at)).where(
                    col(OutboxEvent.published_at).is_(None)
                )
            )
        ).one()
        published = await session.scalar(
            select(func.count()).where(col(OutboxEvent.published_at).is_not(None))
        )
        error = await session.scalar(
            select(col(OutboxEvent.last_error))
            .where(
                col(OutboxEvent.published_at).is_(None),
                col(OutboxEvent.last_error).is_not(None),
            )
            .order_by(col(OutboxEvent.id).desc())
            .limit(1)
        )
    return OutboxStats(int(pending), int(published or 0), as_utc(oldest) if oldest else None, error)


async def prune(db: Database, *, before: datetime) -> int:
    """Delete events published before `before`; pending ones are never pruned."""
    async with db.write() as session:
        result = await session.execute(
            delete(OutboxEvent).where(
                col(OutboxEvent.published_at).is_not(None),
                col(OutboxEvent.published_at) < before,
            )
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

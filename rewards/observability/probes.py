"""The two database reads behind the operations endpoints, each one statement.

`schema_revision` is the readiness probe's: it answers only when the database does, and says
which migration the schema is at. `backlog` is read at each metrics scrape: the announcement
deliveries still to send and the broker events still to publish, each counted on its own index
(`ix_delivery_due`, `ix_outbox_event_pending`), so a scrape costs two index counts in one round
trip however large the history grows.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import func, select, text
from sqlmodel import col

from rewards.services.announcements import PENDING
from rewards.store.db import Database
from rewards.store.models import Delivery, OutboxEvent


class Backlog(NamedTuple):
    deliveries: int  # announcement deliveries pending (waiting, leased or backing off)
    events: int  # broker events not yet published


async def schema_revision(db: Database) -> str | None:
    """The migration the database is at (None: no `alembic_version` row); raises when the
    database does not answer."""
    async with db.read() as session:
        return (await session.execute(text("SELECT version_num FROM alembic_version"))).scalar()


async def backlog(db: Database) -> Backlog:
    deliveries = (
        select(func.count())
        .select_from(Delivery)
        .where(col(Delivery.status) == PENDING)
        .scalar_subquery()
    )
    events = (
        select(func.count())
        .select_from(OutboxEvent)
        .where(col(OutboxEvent.published_at).is_(None))
        .scalar_subquery()
    )
    async with db.read() as session:
        row = (await session.execute(select(deliveries, events))).one()
    return Backlog(int(row[0] or 0), int(row[1] or 0))

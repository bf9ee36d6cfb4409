"""The set-based statements of the integrity report: the giver→receiver edges of a window and
time buckets, written once for SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CTE, func, literal, select, union_all
from sqlalchemy.sql import ColumnElement
from sqlmodel import col

from rewards.store.models import Award, Kudos, KudosReceiver, LedgerEntry

DAY, HOUR = "day", "hour"


def bucket(column: Any, dialect: str, unit: str) -> ColumnElement[str]:
    """The UTC day (``YYYY-MM-DD``) or hour (``YYYY-MM-DD HH``) of a timestamp column, as text.
    SQLite stores UTC timestamps as ISO text, so the bucket is a prefix; PostgreSQL formats the
    timestamptz at UTC."""
    if dialect == "postgresql":
        pattern = "YYYY-MM-DD" if unit == DAY else "YYYY-MM-DD HH24"
        return func.to_char(func.timezone("UTC", column), pattern)
    return func.substr(column, 1, 10 if unit == DAY else 13)


def parse_bucket(text: str) -> datetime:
    """A bucket's text back as an aware UTC datetime (its start)."""
    if len(text) <= 10:
        return datetime.strptime(text[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    return datetime.strptime(text[:13], "%Y-%m-%d %H").replace(tzinfo=UTC)


def edges(since: datetime, until: datetime) -> CTE:
    """One row per (giver, receiver) of the window: `gifts` (kudos and badges given by a person,
    self-gifts excluded) and the `points` they carried. Kudos points are their ledger credits
    (kind "kudos", one per receiver, found by `kudos_id`'s index); a badge's are the award's,
    unless it was revoked. A CTE, so a statement that reads it twice (the heavy edges against
    each receiver's total) aggregates the window once."""
    ledger = (
        select(
            col(LedgerEntry.kudos_id).label("kudos_id"),
            col(LedgerEntry.member_id).label("member_id"),
            col(LedgerEntry.points).label("points"),
        )
        .where(col(LedgerEntry.kind) == "kudos")
        .subquery("credit")
    )
    kudos: Any = (
        select(
            col(Kudos.giver_id).label("giver"),
            col(KudosReceiver.member_id).label("receiver"),
            func.coalesce(ledger.c.points, 0).label("points"),
        )
        .select_from(KudosReceiver)
        .join(Kudos, col(Kudos.id) == col(KudosReceiver.kudos_id))
        .outerjoin(
            ledger,
            (ledger.c.kudos_id == col(KudosReceiver.kudos_id))
            & (ledger.c.member_id == col(KudosReceiver.member_id)),
        )
        .where(
            col(KudosReceiver.created_at) >= since,
            col(KudosReceiver.created_at) < until,
            col(Kudos.giver_id) != col(KudosReceiver.member_id),
        )
    )
    badges: Any = select(
        col(Award.giver_id).label("giver"),
        col(Award.member_id).label("receiver"),
        col(Award.points).label("points"),
    ).where(
        col(Award.giver_id).is_not(None),
        col(Award.giver_id) != col(Award.member_id),
        col(Award.revoked_at).is_(None),
        col(Award.awarded_at) >= since,
        col(Award.awarded_at) < until,
    )
    gifts = union_all(kudos, badges).subquery("gift")
    return (
        select(
            gifts.c.giver,
            gifts.c.receiver,
            func.count(literal(1)).label("gifts"),
            func.sum(gifts.c.points).label("points"),
        )
        .group_by(gifts.c.giver, gifts.c.receiver)
        .cte("edge")
    )

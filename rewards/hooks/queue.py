"""The `event_hook` queue: staging in the caller's transaction, claiming with a lease, finishing.

Claiming is one `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`, so two
runners (two replicas, or the poll and a drain) never take the same row while its lease holds.
Inside a unit that also runs the batch and commits it (the runner's usual path), `take` claims
and deletes at once (`DELETE ... RETURNING`, same choice of rows): the rows are gone when the
unit commits with the hooks' work, and back untouched when it rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from rewards.store.db import HOOKS_STAGED, Database, Fixed, among, run_fixed
from rewards.store.models import EventHook

EVENT_HOOK = SQLModel.metadata.tables[EventHook.__tablename__]
# `stage_many`'s statement, built once: its rows are executemany parameters.
_STAGE_MANY = Fixed(insert(EVENT_HOOK), writes=True, returns_rows=False)
# `finish`'s statement, built once, on the table: an ORM-enabled DELETE or UPDATE of the model
# evaluates its WHERE against the session's objects and is cache-keyed anew on every call.
_FINISH = {
    pg: delete(EVENT_HOOK).where(among(EVENT_HOOK.c.id, "ids", Integer, postgresql=pg))
    for pg in (True, False)
}
_CLAIMS: dict[tuple[bool, bool, int], Any] = {}  # (PostgreSQL, with staged_before, limit)


def _claim_statement(postgresql: bool, staged: bool, limit: int) -> Any:
    """The claiming UPDATE, built once per shape; the times are its parameters."""
    key = (postgresql, staged, limit)
    if key not in _CLAIMS:
        hook = EVENT_HOOK.c
        _CLAIMS[key] = (
            update(EVENT_HOOK)
            .where(hook.id.in_(_free(postgresql, staged, limit)))
            .values(claimed_until=bindparam("until"), attempts=hook.attempts + 1)
            .returning(
                hook.id, hook.name, hook.member_id, hook.payload, hook.occurrence, hook.attempts
            )
        )
    return _CLAIMS[key]


_TAKES: dict[tuple[bool, bool, int], Fixed] = {}  # (PostgreSQL, with staged_before, limit)


def _free(postgresql: bool, staged: bool, limit: int) -> Any:
    """The ids a claim takes: free (never claimed, or the lease ran out), oldest first."""
    hook = EVENT_HOOK.c
    free = or_(hook.claimed_until.is_(None), hook.claimed_until < bindparam("now"))
    wanted = select(hook.id).where(free).order_by(hook.id).limit(limit)
    if staged:
        wanted = wanted.where(hook.created_at < bindparam("staged_before"))
    if postgresql:
        wanted = wanted.with_for_update(skip_locked=True)
    return wanted.scalar_subquery()


def _take_statement(postgresql: bool, staged: bool, limit: int) -> Fixed:
    """`take`'s DELETE, built once per shape; it returns what a claim returns (the attempts
    counted as the claim counts them)."""
    key = (postgresql, staged, limit)
    if key not in _TAKES:
        hook = EVENT_HOOK.c
        _TAKES[key] = Fixed(
            delete(EVENT_HOOK)
            .where(hook.id.in_(_free(postgresql, staged, limit)))
            .returning(
                hook.id,
                hook.name,
                hook.member_id,
                hook.payload,
                hook.occurrence,
                (hook.attempts + 1).label("attempts"),
            ),
            writes=True,
            returns_rows=True,
        )
    return _TAKES[key]


# A handler that fails this many times is dropped (logged by the runner) rather than retried
# forever: a hook is a bonus, never worth an endless loop.
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class StagedHook:
    """One claimed event for one member."""

    id: int
    name: str
    member_id: int
    payload: dict[str, Any]
    occurrence: str | None
    attempts: int


def stage(
    session: AsyncSession,
    name: str,
    member_id: int,
    payload: dict[str, Any],
    *,
    occurrence: str,
    at: datetime,
) -> None:
    """Add event `name` for `member_id` to the caller's transaction.

    `occurrence` names this happening of the event (``k12`` for kudos 12): the hooks' awards are
    keyed by it, so handling the row twice awards once. The runner is woken once the
    transaction commits.
    """
    session.info[HOOKS_STAGED] = True
    session.add(
        EventHook(
            name=name, member_id=member_id, payload=payload, occurrence=occurrence, created_at=at
        )
    )


async def stage_many(
    session: AsyncSession,
    events: list[tuple[str, int]],
    payload: dict[str, Any],
    *,
    occurrence: str,
    at: datetime,
) -> None:
    """`stage` for several (event name, member id) pairs of one happening in ONE statement: a
    kudos stages ``kudos.given`` and a ``kudos.received`` per receiver on its hot path."""
    if not events:
        return
    session.info[HOOKS_STAGED] = True
    await run_fixed(
        session,
        _STAGE_MANY,
        [
            {
                "name": name,
                "member_id": member_id,
                "payload": payload,
                "occurrence": occurrence,
                "created_at": at,
                "attempts": 0,
            }
            for name, member_id in events
        ],
    )


async def claim(
    db: Database,
    *,
    now: datetime,
    limit: int = 50,
    lease: timedelta = timedelta(seconds=60),
    staged_before: datetime | None = None,
) -> list[StagedHook]:
    """Take up to `limit` unclaimed (or lease-expired) rows, oldest first, for `lease`.

    `staged_before` leaves younger rows to the process that staged them (the poll's grace).
    """
    statement = _claim_statement(not db.is_sqlite, staged_before is not None, limit)
    parameters: dict[str, Any] = {"now": now, "until": now + lease}
    if staged_before is not None:
        parameters["staged_before"] = staged_before
    async with db.write(savepoint=False) as session:  # one statement: nothing to undo alone
        rows = (await session.execute(statement, parameters)).all()
    return _staged_hooks(rows)


def _staged_hooks(rows: Any) -> list[StagedHook]:
    hooks = [
        StagedHook(int(r[0]), r[1], int(r[2]), dict(r[3] or {}), r[4], int(r[5])) for r in rows
    ]
    return sorted(hooks, key=lambda hook: hook.id)


async def take(
    db: Database, *, now: datetime, limit: int = 50, staged_before: datetime | None = None
) -> list[StagedHook]:
    """`claim` and `finish` in one statement, for a caller that runs the batch in the same unit
    of work: the rows a claim would take, deleted, so they go exactly when the unit commits
    (and stay, untouched, when it rolls back). Only inside a unit: outside one the rows would
    be gone before the batch ran."""
    assert db.current_unit() is not None, "take() belongs in the unit that runs the batch"
    statement = _take_statement(not db.is_sqlite, staged_before is not None, limit)
    parameters: dict[str, Any] = {"now": now}
    if staged_before is not None:
        parameters["staged_before"] = staged_before
    async with db.write(savepoint=False) as session:
        rows = await run_fixed(session, statement, parameters)
    return _staged_hooks(rows)


async def finish(db: Database, ids: list[int]) -> None:
    """Delete handled rows."""
    if not ids:
        return
    async with db.write(savepoint=False) as session:
        await session.execute(_FINISH[not db.is_sqlite], {"ids": ids})


async def release(db: Database, hook_id: int, error: str, *, retry_at: datetime) -> None:
    """Give a failed row back, to be claimed again from `retry_at`, noting why."""
    async with db.write() as session:
        await session.execute(
            update(EventHook)
            .where(col(EventHook.id) == hook_id)
            .values(claimed_until=retry_at, last_error=error[:500])
        )


async def pending(db: Database) -> int:
    """Rows still to handle (claimed or not)."""
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(EventHook)) or 0)

"""`run_fixed`: a turn's fixed statements, sent on PostgreSQL straight to the unit's driver
connection, behave as any statement of the unit: counted by the engine's listeners and as writes,
committed or rolled back with the unit, failing with SQLAlchemy's exceptions (a lost connection
still makes `Database.transact` run the turn once more)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.exc import IntegrityError

from rewards.store.db import Database, Fixed, run_fixed
from rewards.store.models import InboundEvent

INBOUND = InboundEvent.__table__  # type: ignore[attr-defined]
MARK = Fixed(
    insert(INBOUND).returning(INBOUND.c.event_id), writes=True, returns_rows=True
)  # no ON CONFLICT: a repeated event id fails


def _row(event_id: str, at: Any) -> dict[str, Any]:
    return {"platform": "test", "event_id": event_id, "received_at": at}


async def _ids(database: Database) -> list[str]:
    async with database.read() as session:
        rows = await session.execute(select(INBOUND.c.event_id).order_by(INBOUND.c.event_id))
        return [r[0] for r in rows]


async def test_fixed_statements_are_statements_of_the_unit(database: Database) -> None:
    seen: list[tuple[str, bool]] = []

    def on_execute(*args: Any) -> None:
        seen.append((" ".join(str(args[2]).split())[:30], bool(args[5])))

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        async with database.unit() as unit:
            async with database.read() as session:
                now = await session.scalar(select(func.now()))
            seen.clear()
            before = unit.writes()
            async with database.write(savepoint=False) as session:
                rows = await run_fixed(session, MARK, _row("a", now))
                assert [tuple(r) for r in rows] == [("a",)]
                many = [_row("b", now), _row("c", now)]
                assert await run_fixed(session, MARK, many) == []  # executemany: no rows
            assert unit.writes() == before + 2
            assert await _ids(database) == ["a", "b", "c"]  # the unit sees its own writes
        insert_into = "INSERT INTO inbound_event (pla"
        assert seen[:2] == [(insert_into, False), (insert_into, True)]
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    assert await _ids(database) == ["a", "b", "c"]  # committed once, with the unit

    # A failure is SQLAlchemy's, and the unit (the earlier insert included) is rolled back.
    with pytest.raises(IntegrityError):
        async with database.unit(), database.write(savepoint=False) as session:
            await run_fixed(session, MARK, _row("d", now))
            await run_fixed(session, MARK, _row("a", now))
    assert await _ids(database) == ["a", "b", "c"]

    # Outside a unit the statement runs through the session, as before.
    async with database.write() as session:
        assert [tuple(r) for r in await run_fixed(session, MARK, _row("e", now))] == [("e",)]
    assert await _ids(database) == ["a", "b", "c", "e"]


@pytest.mark.postgresql_only
async def test_a_fixed_statement_on_a_dead_connection_runs_the_turn_once_more(
    database: Database,
) -> None:
    async with database.read() as session:  # the pool now holds this connection
        pid = await session.scalar(text("SELECT pg_backend_pid()"))
        now = await session.scalar(select(func.now()))
    other = Database(database.url)
    try:
        async with other.write() as session:
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await other.dispose()
    runs = 0

    async def turn() -> int:
        nonlocal runs
        runs += 1
        async with database.write(savepoint=False) as session:
            await run_fixed(session, MARK, _row(f"run{runs}", now))
        return runs

    assert await database.transact(turn) == 2
    assert await _ids(database) == ["run2"]

"""`Database.unit()`: one connection and one commit per turn, savepoints only where asked, work
deferred to after the commit, and a turn run again when its connection turned out dead."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from rewards.store.db import Database, UnitAborted
from rewards.store.models import InboundEvent

INBOUND = InboundEvent.__table__  # type: ignore[attr-defined]


def _row(event_id: str) -> dict[str, object]:
    return {"platform": "test", "event_id": event_id, "received_at": func.now()}


async def _count(database: Database) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(INBOUND)) or 0)


async def test_a_unit_commits_once_and_its_reads_see_its_writes(database: Database) -> None:
    async with database.unit() as unit:
        async with database.write(savepoint=False) as session:
            await session.execute(INBOUND.insert().values(_row("a")))
        async with database.read() as session:
            assert await session.scalar(select(func.count()).select_from(INBOUND)) == 1
        async with database.write() as session:  # a savepoint: its failure is undone alone
            await session.execute(INBOUND.insert().values(_row("b")))
        with pytest.raises(IntegrityError):
            async with database.write() as session:
                await session.execute(INBOUND.insert().values(_row("b")))
        connection = unit.connection
        assert await _count(database) == 2  # still the same connection and transaction
        assert unit.connection is connection
    assert await _count(database) == 2


async def test_a_failure_after_a_write_without_savepoint_rolls_the_unit_back(
    database: Database,
) -> None:
    with pytest.raises(UnitAborted):
        async with database.unit():
            async with database.write(savepoint=False) as session:
                await session.execute(INBOUND.insert().values(_row("kept?")))
            try:
                async with database.write(savepoint=False) as session:
                    await session.execute(INBOUND.insert().values(_row("x")))
                    raise ValueError("refused after writing")
            except ValueError:
                pass  # a caller that carries on must not commit half a block
    assert await _count(database) == 0


async def test_deferred_work_runs_after_the_commit_and_not_after_a_rollback(
    database: Database,
) -> None:
    seen: list[int] = []

    async def later() -> None:
        seen.append(await _count(database))  # another connection: sees only committed rows

    async with database.unit():
        async with database.write(savepoint=False) as session:
            await session.execute(INBOUND.insert().values(_row("a")))
        assert database.defer(later)
    assert seen == [1]
    with pytest.raises(RuntimeError):
        async with database.unit():
            database.defer(later)
            raise RuntimeError("the turn failed")
    assert seen == [1]
    assert not database.defer(later)  # outside a unit: the caller runs it


@pytest.mark.postgresql_only
async def test_a_turn_whose_connection_died_runs_once_more(database: Database) -> None:
    async with database.read() as session:  # the pool now holds this connection
        pid = await session.scalar(text("SELECT pg_backend_pid()"))
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
            await session.execute(INBOUND.insert().values(_row(f"run{runs}")))
        return runs

    assert await database.transact(turn) == 2
    assert await _count(database) == 1

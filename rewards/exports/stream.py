"""Rows of an export, read in constant memory however many there are.

PostgreSQL: one statement through a server-side cursor (`AsyncConnection.stream` with
`yield_per`), in one read transaction, so the file is one consistent snapshot. SQLite: the same
statement in chunks of `CHUNK` rows after the last key seen (keyset paging), each chunk its own
short read, so a long export never holds SQLite's read lock (and its WAL) for minutes. Either way
at most one chunk of rows is in memory.

`participation` is an aggregate per department and month (`rewards.exports.participation`): a
few rows per department, read whole.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from sqlalchemy import func, select

from rewards.exports.kinds import ExportKind, after_key
from rewards.exports.participation import participation_rows
from rewards.exports.window import Window
from rewards.store.db import Database

CHUNK = 2000


async def export_rows(
    db: Database, kind: ExportKind, window: Window
) -> AsyncGenerator[tuple[Any, ...], None]:
    """The rows of `kind` in `window`, in `kind.columns` order. Close it (`aclosing`) when
    stopping early, so its cursor and transaction end at once."""
    if kind.query is None:
        for row in await participation_rows(db, window):
            yield row
        return
    query = kind.query(window)
    if not db.is_sqlite:
        async with db.engine.connect() as connection:
            result = await connection.stream(query.execution_options(yield_per=CHUNK))
            async for partition in result.partitions():
                for row in partition:
                    yield tuple(row)
        return
    page = query.limit(CHUNK)
    positions = [kind.columns.index(name) for name in kind.key]
    while True:
        async with db.read() as session:
            rows = [tuple(row) for row in (await session.execute(page)).all()]
        for row in rows:
            yield row
        if len(rows) < CHUNK:
            return
        last = tuple(rows[-1][i] for i in positions)
        page = after_key(query, kind.key, last).limit(CHUNK)


async def count_rows(db: Database, kind: ExportKind, window: Window) -> int | None:
    """How many rows `kind` has in `window` (for a progress bar); None for aggregates."""
    if kind.query is None:
        return None
    query = kind.query(window).order_by(None)
    counted = select(func.count()).select_from(query.subquery())
    async with db.read() as session:
        return int(await session.scalar(counted) or 0)

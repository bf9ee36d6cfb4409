"""Row counts of every table, to prove a refused request wrote nothing.

`assert_unchanged(before, after)` ignores the delivery-dedup markers (`inbound_event`), which a
platform adapter records for every delivery, refused or not, so a retry is not processed twice.
`table_counts` first waits for the event hooks queued by earlier accepted writes to run (the
runner drains them right after each commit), so their awards are not mistaken for the refused
request's; `changed_tables` never counts the queue itself (`event_hook`), whose rows come and go.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlmodel import SQLModel

from rewards import hooks
from rewards.store.db import Database

DEDUP_TABLES = frozenset({"inbound_event"})
QUEUE_TABLES = frozenset({"event_hook"})


async def table_counts(db: Database) -> dict[str, int]:
    """{table name: rows} for every table of the schema, once the queued event hooks have run."""
    for _ in range(500):
        if not await hooks.pending(db):
            break
        await asyncio.sleep(0.01)
    counts: dict[str, int] = {}
    async with db.read() as session:
        for name, table in sorted(SQLModel.metadata.tables.items()):
            counts[name] = int(
                (await session.execute(select(func.count()).select_from(table))).scalar_one()
            )
    return counts


def changed_tables(
    before: dict[str, int], after: dict[str, int], *, ignore: frozenset[str] = DEDUP_TABLES
) -> dict[str, tuple[int, int]]:
    """{table: (before, after)} for every table whose count moved, dedup markers aside."""
    return {
        name: (before.get(name, 0), count)
        for name, count in after.items()
        if name not in ignore and name not in QUEUE_TABLES and before.get(name, 0) != count
    }


def assert_unchanged(before: dict[str, int], after: dict[str, int]) -> None:
    moved = changed_tables(before, after)
    assert not moved, f"a refused request wrote rows: {moved}"

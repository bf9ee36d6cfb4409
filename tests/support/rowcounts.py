"""Row counts of every table, to prove a refused request wrote nothing.

`assert_unchanged(before, after)` ignores the delivery-dedup markers (`inbound_event`), which a
platform adapter records for every delivery, refused or not, so a retry is not processed twice.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import SQLModel

from rewards.store.db import Database

DEDUP_TABLES = frozenset({"inbound_event"})


async def table_counts(db: Database) -> dict[str, int]:
    """{table name: rows} for every table of the schema."""
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
        if name not in ignore and before.get(name, 0) != count
    }


def assert_unchanged(before: dict[str, int], after: dict[str, int]) -> None:
    moved = changed_tables(before, after)
    assert not moved, f"a refused request wrote rows: {moved}"

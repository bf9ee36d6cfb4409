"""Numeric data sets for BestSeller and achievement functions (`metric_record`).

A data set is a name (``sales``) holding, per member and day, any number of named values
(``sales_count``, ``revenue``). Loading the same (data set, member, day, column) again replaces
the value, so a nightly export can be re-imported whole without double counting.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from rewards.store.db import Database
from rewards.store.models import MetricRecord

MetricRow = tuple[int, date, str, float]
"""(member id, day, column, value)"""


async def upsert_metrics(db: Database, dataset: str, rows: list[MetricRow]) -> int:
    """Insert or replace the values of `dataset` in one transaction; returns the values written."""
    if not rows:
        return 0
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    values = [
        {"dataset": dataset, "member_id": m, "day": d, "name": n, "value": v} for m, d, n, v in rows
    ]
    async with db.write() as session:
        for chunk in range(0, len(values), 500):
            statement = insert(MetricRecord).values(values[chunk : chunk + 500])
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=["dataset", "member_id", "day", "name"],
                    set_={"value": statement.excluded.value},
                )
            )
    return len(values)

"""Sales achievements.

They read the ``sales`` data set's ``sales_count`` column in ``metric_record`` (a count per member
per day), which a deployment loads from its sales system with ``rewards data import sales FILE``
(or the API). With no rows the counts are 0. Periods are the reward's, as local dates: a day
belongs to the period when ``start <= day < end``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewards.functions.base import (
    Connection,
    EvaluationEnv,
    MemberRef,
    RowsConnection,
    id_chunks,
    placeholders,
    scalar_number,
)
from rewards.functions.registry import achievement_function

SALES_IN_PERIOD = (
    "SELECT SUM(value) FROM metric_record WHERE dataset = 'sales' AND name = 'sales_count' "
    "AND member_id = $1 AND day >= $2 AND day < $3"
)


async def sales_in_period(conn: Connection, member_id: int, env: EvaluationEnv) -> int:
    """The member's sales count over the evaluated period."""
    first, end = env.start_date.date(), env.end_date.date()
    return int(await scalar_number(conn, SALES_IN_PERIOD, member_id, first, end))


_SOLD = (
    "SELECT DISTINCT member_id FROM metric_record WHERE dataset = 'sales' "
    "AND member_id IN ({ids}) AND name = 'sales_count' AND value > 0"
)


async def first_sales_of(
    members: Sequence[MemberRef], env: object, conn: RowsConnection, **kwargs: Any
) -> dict[int, int]:
    """`check_first_sale` for the members given (their rows only), one query per 500."""
    sold: set[int] = set()
    for ids in id_chunks(members):
        rows = await conn.fetch(_SOLD.format(ids=placeholders(1, len(ids))), *ids)
        sold.update(int(str(member_id)) for (member_id,) in rows)
    return {m.id: int(m.id in sold) for m in members}


@achievement_function("rewards.functions.sales.check_first_sale", members=first_sales_of)
async def check_first_sale(
    user: MemberRef, env: EvaluationEnv, conn: Connection, **kwargs: Any
) -> int:
    """1 once the member has made any sale, else 0 (the seed compares it with `gte 1`)."""
    found = await conn.fetchval(
        "SELECT 1 FROM metric_record WHERE dataset = 'sales' AND name = 'sales_count' "
        "AND member_id = $1 AND value > 0 LIMIT 1",
        user.id,
    )
    return 1 if found is not None else 0


@achievement_function("rewards.functions.sales.get_sales_count")
async def get_sales_count(
    user: MemberRef, env: EvaluationEnv, conn: Connection, **kwargs: Any
) -> int:
    """The number of sales the member made in the evaluated period."""
    return await sales_in_period(conn, user.id, env)

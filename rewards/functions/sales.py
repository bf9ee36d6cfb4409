"""Sales achievements.

They read ``sale(member_id, sold_at, amount)``: one row per sale. Nothing in this repository
writes that table yet; a deployment fills it from its sales system. With no rows the counts are 0.
"""

from __future__ import annotations

from typing import Any

from rewards.functions.base import Connection, EvaluationEnv, MemberRef, scalar_number
from rewards.functions.registry import achievement_function

SALES_IN_PERIOD = (
    "SELECT COUNT(*) FROM sale WHERE member_id = $1 AND sold_at >= $2 AND sold_at < $3"
)


@achievement_function("rewards.functions.sales.check_first_sale")
async def check_first_sale(
    user: MemberRef, env: EvaluationEnv, conn: Connection, **kwargs: Any
) -> int:
    """1 once the member has made any sale, else 0 (the seed compares it with `gte 1`)."""
    found = await conn.fetchval("SELECT 1 FROM sale WHERE member_id = $1 LIMIT 1", user.id)
    return 1 if found is not None else 0


@achievement_function("rewards.functions.sales.get_sales_count")
async def get_sales_count(
    user: MemberRef, env: EvaluationEnv, conn: Connection, **kwargs: Any
) -> int:
    """The number of sales the member made in the evaluated period."""
    return int(await scalar_number(conn, SALES_IN_PERIOD, user.id, env.start_date, env.end_date))

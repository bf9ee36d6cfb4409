"""Training achievements (the seed's Sales Mastery workflow).

They read the ``training`` data set in ``metric_record``: one column per module (its name, such as
``product_knowledge``), the score 0-100 per member per day, loaded from a learning system with
``rewards data import training FILE`` (or the API). The best score counts; with no rows it is 0.
"""

from __future__ import annotations

from typing import Any

from rewards.functions.base import Connection, EvaluationEnv, MemberRef, scalar_number
from rewards.functions.registry import achievement_function

_BEST_SCORE = (
    "SELECT MAX(value) FROM metric_record WHERE dataset = 'training' AND member_id = $1 "
    "AND name = $2"
)


@achievement_function("rewards.functions.training.check_product_knowledge")
async def check_product_knowledge(
    user: MemberRef,
    env: EvaluationEnv,
    conn: Connection,
    module: str = "product_knowledge",
    **kwargs: Any,
) -> int | float:
    """The member's best score (0-100) in the product knowledge module."""
    return await scalar_number(conn, _BEST_SCORE, user.id, module)


@achievement_function("rewards.functions.training.check_sales_training")
async def check_sales_training(
    user: MemberRef,
    env: EvaluationEnv,
    conn: Connection,
    module: str = "sales_techniques",
    **kwargs: Any,
) -> int | float:
    """The member's best score (0-100) in the sales techniques module."""
    return await scalar_number(conn, _BEST_SCORE, user.id, module)

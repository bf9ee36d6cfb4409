"""Training achievements (the seed's Sales Mastery workflow).

They read ``training_result(member_id, module, score, completed_at)``: one row per attempt, score
0-100. Nothing in this repository writes that table yet; a deployment fills it from its learning
system (an import, or an event handler of a later issue). With no rows the score is 0.
"""

from __future__ import annotations

from typing import Any

from rewards.functions.base import Connection, EvaluationEnv, MemberRef, scalar_number
from rewards.functions.registry import achievement_function

_BEST_SCORE = "SELECT MAX(score) FROM training_result WHERE member_id = $1 AND module = $2"


@achievement_function("rewards.functions.training.check_product_knowledge")
async def check_product_knowledge(
    user: MemberRef,
    env: EvaluationEnv,
    conn: Connection,
    module: str = "product-knowledge",
    **kwargs: Any,
) -> int | float:
    """The member's best score (0-100) in the product knowledge module."""
    return await scalar_number(conn, _BEST_SCORE, user.id, module)


@achievement_function("rewards.functions.training.check_sales_training")
async def check_sales_training(
    user: MemberRef,
    env: EvaluationEnv,
    conn: Connection,
    module: str = "sales-techniques",
    **kwargs: Any,
) -> int | float:
    """The member's best score (0-100) in the sales techniques module."""
    return await scalar_number(conn, _BEST_SCORE, user.id, module)

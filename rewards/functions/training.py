"""Training achievements (the seed's Sales Mastery workflow).

They read the ``training`` data set in ``metric_record``: one column per module (its name, such as
``product_knowledge``), the score 0-100 per member per day, loaded from a learning system with
``rewards data import training FILE`` (or the API). The best score counts; with no rows it is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewards.functions.base import (
    Connection,
    EvaluationEnv,
    MemberRef,
    RowsConnection,
    as_number,
    id_chunks,
    placeholders,
    scalar_number,
)
from rewards.functions.registry import achievement_function

_BEST_SCORE = (
    "SELECT MAX(value) FROM metric_record WHERE dataset = 'training' AND member_id = $1 "
    "AND name = $2"
)
_BEST_SCORES = (
    "SELECT member_id, MAX(value) FROM metric_record WHERE dataset = 'training' "
    "AND member_id IN ({ids}) AND name = $1 GROUP BY member_id"
)


async def best_scores(
    members: Sequence[MemberRef], conn: RowsConnection, module: str
) -> dict[int, int | float]:
    """Each member's best score in `module` (0 without rows), one query per 500 members."""
    scores: dict[int, int | float] = {m.id: 0 for m in members}
    for ids in id_chunks(members):
        sql = _BEST_SCORES.format(ids=placeholders(2, len(ids)))
        for member_id, best in await conn.fetch(sql, module, *ids):
            scores[int(str(member_id))] = as_number(best)
    return scores


async def product_knowledge_of(
    members: Sequence[MemberRef],
    env: object,
    conn: RowsConnection,
    module: str = "product_knowledge",
    **kwargs: Any,
) -> dict[int, int | float]:
    """`check_product_knowledge` for the members given (their rows only)."""
    return await best_scores(members, conn, module)


async def sales_training_of(
    members: Sequence[MemberRef],
    env: object,
    conn: RowsConnection,
    module: str = "sales_techniques",
    **kwargs: Any,
) -> dict[int, int | float]:
    """`check_sales_training` for the members given (their rows only)."""
    return await best_scores(members, conn, module)


@achievement_function(
    "rewards.functions.training.check_product_knowledge", members=product_knowledge_of
)
async def check_product_knowledge(
    user: MemberRef,
    env: EvaluationEnv,
    conn: Connection,
    module: str = "product_knowledge",
    **kwargs: Any,
) -> int | float:
    """The member's best score (0-100) in the product knowledge module."""
    return await scalar_number(conn, _BEST_SCORE, user.id, module)


@achievement_function("rewards.functions.training.check_sales_training", members=sales_training_of)
async def check_sales_training(
    user: MemberRef,
    env: EvaluationEnv,
    conn: Connection,
    module: str = "sales_techniques",
    **kwargs: Any,
) -> int | float:
    """The member's best score (0-100) in the sales techniques module."""
    return await scalar_number(conn, _BEST_SCORE, user.id, module)

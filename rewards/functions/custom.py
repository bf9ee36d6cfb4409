"""The seed's "custom achievement function" example, made to work with its own rule.

The seed's version returned ``count >= target`` (a boolean) while its rule compared the result
with ``threshold: 100, operator: gte``: ``True >= 100`` is false, so that reward could never be
given. This one returns a number the threshold can judge: the sales count once the target is met,
and 0 before. With the seed's rule (target 100, threshold 100) a member qualifies at 100 sales;
a rule that only cares whether the target is met can use ``threshold: 1``.
"""

from __future__ import annotations

from typing import Any

from rewards.functions.base import Connection, EvaluationEnv, MemberRef
from rewards.functions.registry import achievement_function
from rewards.functions.sales import sales_in_period


@achievement_function("rewards.functions.custom.check_sales_target")
async def check_sales_target(
    user: MemberRef, env: EvaluationEnv, conn: Connection, target: int = 100, **kwargs: Any
) -> int:
    """The member's sales in the period if they reached `target`, else 0."""
    count = await sales_in_period(conn, user.id, env)
    return count if count >= target else 0

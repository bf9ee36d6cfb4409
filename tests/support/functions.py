"""Achievement functions for tests (registered through ``REWARDS_FUNCTION_MODULES``)."""

from __future__ import annotations

from typing import Any

from rewards.functions.base import Connection, EvaluationEnv, MemberRef, scalar_number
from rewards.functions.registry import achievement_function


@achievement_function("tests.support.functions.missing_table")
async def missing_table(
    user: MemberRef, env: EvaluationEnv, conn: Connection, **kwargs: Any
) -> int:
    """Reads a table no deployment has: how a sweep meets a broken deployment function."""
    return int(
        await scalar_number(conn, "SELECT COUNT(*) FROM no_such_table WHERE id = $1", user.id)
    )

"""Engagement achievements.

They read ``member_activity(member_id, day)``: one row per member per local day with any
activity (a login, a message to the bot, a kudos). The table arrives with the scheduler issue,
which records activity; until then these functions have nothing to count.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from rewards.functions.base import Connection, EvaluationEnv, MemberRef, scalar_number
from rewards.functions.registry import achievement_function

_ACTIVE_DAYS = (
    "SELECT COUNT(DISTINCT day) FROM member_activity "
    "WHERE member_id = $1 AND day >= $2 AND day <= $3"
)


async def _active_days(conn: Connection, member_id: int, first: date, last: date) -> int:
    return int(await scalar_number(conn, _ACTIVE_DAYS, member_id, first, last))


@achievement_function("rewards.functions.engagement.get_login_streak")
async def get_login_streak(
    user: MemberRef, env: EvaluationEnv, conn: Connection, max_days: int = 365, **kwargs: Any
) -> int:
    """Consecutive days with activity, counted back from today (at most `max_days`).

    Today counts when there is activity already; when there is none yet the streak ends
    yesterday, because the day is not over (the original returned 0 until the first login of
    the day, and broke a streak on two logins in one day; days are counted distinctly here).

    A streak of n days ending on `last` exists exactly when the n days up to `last` are all
    active, and that property only gets harder as n grows, so the length is found by doubling
    then bisecting: about 2*log2(streak) small COUNT queries, each over an index range.
    """
    today = env.today
    last = today if await _active_days(conn, user.id, today, today) else today - timedelta(days=1)

    async def full(length: int) -> bool:
        first = last - timedelta(days=length - 1)
        return await _active_days(conn, user.id, first, last) == length

    if max_days < 1 or not await full(1):
        return 0
    good, bad = 1, 2
    while bad <= max_days and await full(bad):
        good, bad = bad, bad * 2
    if bad > max_days:
        if await full(max_days):
            return max_days
        bad = max_days
    while bad - good > 1:
        middle = (good + bad) // 2
        if await full(middle):
            good = middle
        else:
            bad = middle
    return good

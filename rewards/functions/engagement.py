"""Engagement achievements.

They read ``member_activity(member_id, day)``: one row per member per local day with any
activity (a login, a message to the bot, a kudos), written by `rewards.rules.activity`.

`get_login_streak` has a batch form for the daily sweep: one gaps-and-islands query over the
whole population (day number minus row number is constant along a run of consecutive days), so
100,000 members cost one query instead of 100,000 times a dozen.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, Protocol

from rewards.functions.base import Connection, EvaluationEnv, MemberRef, scalar_number
from rewards.functions.registry import achievement_function


class RowConnection(Connection, Protocol):
    """What a batch form needs beyond `fetchval`: all rows, and the SQL dialect (date arithmetic
    is the one thing SQLite and PostgreSQL spell differently)."""

    @property
    def dialect(self) -> str: ...

    async def fetch(self, sql: str, *args: object) -> list[tuple[Any, ...]]: ...


class BatchEnv(Protocol):
    """The batch form's `env`: each member's own local today (zones differ within a batch)."""

    def today_for(self, member_id: int) -> date: ...


_DAY_NUMBER = {"sqlite": "julianday(day)", "postgresql": "(day - DATE '1970-01-01')"}

# Runs of consecutive active days ("islands") that end on or after $3, inside [$1, $2].
_ISLANDS = (
    "SELECT member_id, MAX(day), COUNT(*) FROM ("
    " SELECT member_id, day,"
    " {day_number} - ROW_NUMBER() OVER (PARTITION BY member_id ORDER BY day) AS island"
    " FROM member_activity WHERE day >= $1 AND day <= $2"
    ") runs GROUP BY member_id, island HAVING MAX(day) >= $3"
)


def _as_date(value: object) -> date:
    """SQLite returns dates from raw SQL as ISO text, PostgreSQL as `date`."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


async def login_streaks(
    members: Sequence[MemberRef],
    env: BatchEnv,
    conn: RowConnection,
    max_days: int = 365,
    **kwargs: Any,
) -> dict[int, int]:
    """`get_login_streak` for many members at once: the same numbers, one query."""
    if not members or max_days < 1:
        return {member.id: 0 for member in members}
    todays = {member.id: env.today_for(member.id) for member in members}
    first_today, last_today = min(todays.values()), max(todays.values())
    sql = _ISLANDS.format(day_number=_DAY_NUMBER.get(conn.dialect, _DAY_NUMBER["postgresql"]))
    rows = await conn.fetch(
        sql, first_today - timedelta(days=max_days), last_today, first_today - timedelta(days=1)
    )
    ends: dict[int, dict[date, int]] = {}
    for member_id, last_day, length in rows:
        ends.setdefault(int(member_id), {})[_as_date(last_day)] = int(length)
    streaks: dict[int, int] = {}
    for member_id, today in todays.items():
        runs = ends.get(member_id, {})
        length = runs.get(today) or runs.get(today - timedelta(days=1)) or 0
        streaks[member_id] = min(length, max_days)
    return streaks


_ACTIVE_DAYS = (
    "SELECT COUNT(DISTINCT day) FROM member_activity "
    "WHERE member_id = $1 AND day >= $2 AND day <= $3"
)


async def _active_days(conn: Connection, member_id: int, first: date, last: date) -> int:
    return int(await scalar_number(conn, _ACTIVE_DAYS, member_id, first, last))


@achievement_function("rewards.functions.engagement.get_login_streak", batch=login_streaks)
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

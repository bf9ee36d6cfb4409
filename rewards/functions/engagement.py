"""Engagement achievements.

They read ``member_activity(member_id, day)``: one row per member per local day with any
activity (a login, a message to the bot, a kudos), written by `rewards.rules.activity`.

`get_login_streak` has a batch form for the daily sweep: it reads the streak counters that
`record_activity` keeps (`member_streak`, one row per member), so 100,000 members cost one read of
a small table instead of a scan of every active day (3.7 s at 100,000 members as a
gaps-and-islands query over `member_activity`). Its passing form goes further for the usual rule
("a streak of at least N days"): one query joins the counters with the active members and returns
only runs long enough, so the sweep loads no population at all (~0.6 s -> ~50 ms at 100,000).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
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


def _as_date(value: object) -> date:
    """SQLite returns dates from raw SQL as ISO text, PostgreSQL as `date`."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


_STREAKS = "SELECT member_id, first_day, last_day FROM member_streak WHERE last_day >= $1"


async def login_streaks(
    members: Sequence[MemberRef],
    env: BatchEnv,
    conn: RowConnection,
    max_days: int = 365,
    **kwargs: Any,
) -> dict[int, int]:
    """`get_login_streak` for many members at once: the same numbers, from the maintained streak
    counters (`member_streak`, kept by `rewards.rules.activity.record_activity`).

    A member's streak is their latest run of active days when it ends today or yesterday in
    their own zone, else 0. A run ending after their today (the evaluation judges a past moment)
    says nothing about that moment, so those few members are asked the per-member function.
    """
    if not members or max_days < 1:
        return {member.id: 0 for member in members}
    todays = {member.id: env.today_for(member.id) for member in members}
    first_today = min(todays.values())
    rows = await conn.fetch(_STREAKS, first_today - timedelta(days=1))
    runs = {int(member_id): (_as_date(first), _as_date(last)) for member_id, first, last in rows}
    streaks: dict[int, int] = {}
    for member in members:
        today = todays[member.id]
        run = runs.get(member.id)
        if run is None or run[1] < today - timedelta(days=1):
            streaks[member.id] = 0
        elif run[1] > today:
            past = _PastEnv(today)
            streaks[member.id] = await get_login_streak(member, past, conn, max_days=max_days)
        else:
            streaks[member.id] = min((run[1] - run[0]).days + 1, max_days)
    return streaks


class PopulationEnv(Protocol):
    """The passing form's `env`: today in any zone (None: the organisation's)."""

    def today_in(self, zone: str | None) -> date: ...


# Members whose latest run can reach `min_days` by their today: the run must not have ended
# before the earliest today's yesterday, and must have started early enough for the latest today.
_LONG_RUNS = (
    "SELECT s.member_id, m.timezone, s.first_day, s.last_day FROM member_streak s "
    "JOIN member m ON m.id = s.member_id "
    "WHERE m.active = $1 AND s.last_day >= $2 AND s.first_day <= $3"
)


@dataclass(frozen=True)
class _Ref:
    id: int


async def login_streaks_passing(
    env: PopulationEnv,
    conn: RowConnection,
    *,
    operator: str,
    threshold: Any,
    max_days: int = 365,
    **kwargs: Any,
) -> dict[int, int] | None:
    """`get_login_streak` of the active members whose streak can pass ``>= / > threshold``: one
    query over the streak counters joined with the members (only long enough runs come back),
    instead of the whole population loaded and asked. None for any other comparison (a member
    without a streak may pass those, so the population is needed)."""
    if operator not in ("gte", "gt") or isinstance(threshold, bool):
        return None
    try:
        number = float(threshold)
    except (TypeError, ValueError):
        return None
    min_days = math.floor(number) + 1 if operator == "gt" else math.ceil(number)
    if min_days < 1:
        return None  # 0 passes: everyone is a candidate
    if max_days < min_days:
        return {}
    # A handful of zones: every local today lies within two days of the organisation's.
    org = env.today_in(None)
    earliest, latest = org - timedelta(days=2), org + timedelta(days=2)
    rows = await conn.fetch(
        _LONG_RUNS, True, earliest - timedelta(days=1), latest - timedelta(days=min_days - 1)
    )
    todays: dict[str | None, date] = {}
    streaks: dict[int, int] = {}
    for member_id, tz, first, last in rows:
        if tz not in todays:
            todays[tz] = env.today_in(tz)
        today = todays[tz]
        run_first, run_last = _as_date(first), _as_date(last)
        if run_last < today - timedelta(days=1):
            continue
        if run_last > today:  # a past moment judged: ask the per-member function
            past = _PastEnv(today)
            value = await get_login_streak(_Ref(int(member_id)), past, conn, max_days=max_days)
        else:
            value = min((run_last - run_first).days + 1, max_days)
        streaks[int(member_id)] = value
    return streaks


@dataclass(frozen=True)
class _PastEnv:
    """The per-member function's `env` for a member judged at a past `today` (the function
    reads only `today`; the period is that day)."""

    today: date

    @property
    def start_date(self) -> datetime:
        return datetime.combine(self.today, time(), tzinfo=UTC)

    @property
    def end_date(self) -> datetime:
        return self.start_date + timedelta(days=1)


_ACTIVE_DAYS = (
    "SELECT COUNT(DISTINCT day) FROM member_activity "
    "WHERE member_id = $1 AND day >= $2 AND day <= $3"
)


async def _active_days(conn: Connection, member_id: int, first: date, last: date) -> int:
    return int(await scalar_number(conn, _ACTIVE_DAYS, member_id, first, last))


@achievement_function(
    "rewards.functions.engagement.get_login_streak",
    batch=login_streaks,
    passing=login_streaks_passing,
)
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

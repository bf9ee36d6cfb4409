"""Daily member activity: one `member_activity` row per member per local day.

`record_activity` is called on every sign of life (a message to the bot, an API login, a kudos);
only the first call of a member's local day inserts a row and returns True, which is the "login"
event Automated Badges listen to. Concurrent calls are safe: the insert is
`INSERT ... ON CONFLICT DO NOTHING`, so exactly one of them wins and reports True.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.clock import as_utc, local_today
from rewards.store.db import Database
from rewards.store.models import MemberActivity


async def record_activity(
    db: Database,
    member_id: int,
    now: datetime,
    tz_name: str | None,
    *,
    on_first: Callable[[AsyncSession], None] | None = None,
) -> bool:
    """Record that the member was active at `now`; True only for the first time that local day.

    The day is `now` in `tz_name` (the member's zone; UTC when unset or unknown). `on_first` is
    called with the session when it is that first time, to add rows that commit with the
    activity (the ``login`` event hook).
    """
    day = local_today(now, tz_name)
    seen = _recorded(db)
    if (member_id, day) in seen:
        return False  # this process saw the day's row committed: the insert would do nothing
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    statement = (
        insert(MemberActivity)
        .values(member_id=member_id, day=day, first_seen_at=as_utc(now))
        .on_conflict_do_nothing()
        .returning(col(MemberActivity.member_id))
    )
    async with db.write(savepoint=False) as session:
        inserted = (await session.execute(statement)).first()
        if inserted is not None and on_first is not None:
            on_first(session)
    db.after_commit(lambda: seen.add((member_id, day)))  # the row exists, once committed
    return inserted is not None


# How many (member, day) pairs a process remembers; beyond it, it starts over.
_RECORDED_MAX = 200_000


def _recorded(db: Database) -> set[tuple[int, date]]:
    """(member, local day) pairs whose activity row this process has seen committed. Rows are
    never deleted on the day they are written (housekeeping prunes old days), so a pair found
    here needs no insert: a member's turns after their first of the day write no activity."""
    seen: set[tuple[int, date]] | None = db.memo.get("activity")
    if seen is None or len(seen) > _RECORDED_MAX:
        seen = db.memo["activity"] = set()
    return seen


async def active_days(db: Database, start: date, end: date) -> dict[int, int]:
    """Days with activity per member between `start` and `end` inclusive (one grouped query).

    Members without activity in the range are absent from the result.
    """
    day = col(MemberActivity.day)
    member_id = col(MemberActivity.member_id)
    statement = (
        select(member_id, func.count(day)).where(day >= start, day <= end).group_by(member_id)
    )
    async with db.read() as session:
        rows = (await session.execute(statement)).all()
    return {int(row[0]): int(row[1]) for row in rows}

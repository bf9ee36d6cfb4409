"""Daily member activity: one `member_activity` row per member per local day, and each member's
current run of active days in `member_streak`.

`record_activity` is called on every sign of life (a message to the bot, an API login, a kudos);
only the first call of a member's local day inserts a row and returns True, which is the "login"
event Automated Badges listen to. Concurrent calls are safe: the insert is
`INSERT ... ON CONFLICT DO NOTHING`, so exactly one of them wins and reports True.

The winner also moves the member's streak (`member_streak`: the latest run of consecutive active
days, `first_day` .. `last_day`) with one upsert in the same transaction: the next day extends
it, a later day starts a new run, an earlier day leaves it alone. The one case a counter cannot
settle alone, a late record of the day just before the run (an import, a delayed event), re-reads
that member's days before the run. So the login streak of the whole population is a read of one
small table (`rewards.functions.engagement.login_streaks`), not a scan of every active day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlalchemy import case, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Date
from sqlmodel import col

from rewards.clock import as_utc, local_today
from rewards.store.db import Database
from rewards.store.models import MemberActivity, MemberStreak

_DAY_NUMBER = {"sqlite": "julianday(day)", "postgresql": "(day - DATE '1970-01-01')"}
_REBUILD = (
    "INSERT INTO member_streak (member_id, first_day, last_day) "
    "SELECT member_id, MIN(day), MAX(day) FROM ("
    " SELECT member_id, day, island, MAX(island) OVER (PARTITION BY member_id) AS latest FROM ("
    "  SELECT member_id, day,"
    "  {day_number} - ROW_NUMBER() OVER (PARTITION BY member_id ORDER BY day) AS island"
    "  FROM member_activity"
    " ) runs"
    ") marked WHERE island = latest GROUP BY member_id"
)


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
        if inserted is not None:
            await _advance_streak(session, db.dialect, member_id, day)
            if on_first is not None:
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


async def _advance_streak(session: AsyncSession, dialect: str, member_id: int, day: date) -> None:
    """Move the member's streak for a newly recorded active `day` (see the module docstring)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    first, last = col(MemberStreak.first_day), col(MemberStreak.last_day)
    new_day = literal(day, Date)
    values = insert(MemberStreak).values(member_id=member_id, first_day=day, last_day=day)
    statement = values.on_conflict_do_update(
        index_elements=["member_id"],
        set_={
            # Both read the row as it was: a later day than `last` either extends the run (the
            # day after it) or starts a new one; an earlier day changes nothing here.
            "first_day": case((last < day - timedelta(days=1), new_day), else_=first),
            "last_day": case((last < day, new_day), else_=last),
        },
    ).returning(first, last)
    row = (await session.execute(statement)).one()
    run_first = _as_date(row[0])
    if day == run_first - timedelta(days=1):
        # A late record just before the run: the run now starts where the earlier days do.
        days = await session.scalars(
            select(col(MemberActivity.day))
            .where(col(MemberActivity.member_id) == member_id, col(MemberActivity.day) <= day)
            .order_by(col(MemberActivity.day).desc())
        )
        start = day
        for earlier in days:
            if _as_date(earlier) < start - timedelta(days=1):
                break
            start = _as_date(earlier)
        await session.execute(
            update(MemberStreak)
            .where(col(MemberStreak.member_id) == member_id)
            .values(first_day=start)
        )


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


async def rebuild_streaks(db: Database) -> int:
    """Recompute every member's streak from `member_activity` (after a bulk load of activity that
    bypassed `record_activity`); returns the number of members with a streak."""
    async with db.write() as session:
        await session.execute(text("DELETE FROM member_streak"))
        sql = _REBUILD.format(day_number=_DAY_NUMBER.get(db.dialect, _DAY_NUMBER["postgresql"]))
        await session.execute(text(sql))
        count = await session.scalar(select(func.count()).select_from(MemberStreak))
    return int(count or 0)


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

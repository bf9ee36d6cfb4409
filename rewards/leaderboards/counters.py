"""What each write adds to the leaderboard counters, and the one upsert that applies it.

Every writer calls one function here with its open session and the rows it wrote, inside its own
transaction: the counters commit or roll back with the facts. Inside a unit of work the upsert is
one of the unit's last statements (`rewards.store.db.write_last`), so a counter row is locked for
the commit alone; a reader of the counters inside a unit sends them first (`write_now`).

Deltas are summed per key (period, period start, dim, member; a column per metric) first, so one
statement (INSERT ... ON CONFLICT DO UPDATE SET points = points + excluded.points, ..., valid on
SQLite and PostgreSQL) touches each row once, however many receivers and tags a kudos has.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, bindparam, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from rewards.leaderboards.periods import local_day, starts_of_day
from rewards.store.db import Fixed, run_fixed, write_last
from rewards.store.models import Award, LeaderboardCounter

COUNTER = SQLModel.metadata.tables[LeaderboardCounter.__tablename__]
KEY_COLUMNS = ("period", "period_start", "dim", "member_id")

# Metric names, as in `rewards.services.leaderboards.Metric` (kept here so the read model does
# not import the service that reads it); each is a column of `leaderboard_counter`.
POINTS, BADGES, KUDOS_RECEIVED, KUDOS_GIVEN = "points", "badges", "kudos", "kudos_given"
METRICS = (POINTS, BADGES, KUDOS_RECEIVED, KUDOS_GIVEN)
_SLOT = {metric: slot for slot, metric in enumerate(METRICS)}
EVERYTHING = ""


def category_dim(category_id: int) -> str:
    return f"c{category_id}"


def tag_dim(tag: str) -> str:
    return f"t:{tag}"


Key = tuple[str, date, str, int]


class Deltas:
    """Counter changes summed by key (period, period_start, dim, member_id): one list per key
    with a change per metric, in `METRICS` order."""

    def __init__(self, tz_name: str) -> None:
        self.tz_name = tz_name
        self.values: dict[Key, list[int]] = {}

    def add_day(
        self, metric: str, member_id: int, day: date, value: int, dims: Iterable[str]
    ) -> None:
        values = self.values
        slot = _SLOT[metric]
        for period, start in starts_of_day(day):
            for dim in dims:
                key = (period, start, dim, member_id)
                changes = values.get(key)
                if changes is None:
                    changes = values[key] = [0, 0, 0, 0]
                changes[slot] += value

    def add(
        self, metric: str, member_id: int, at: datetime, value: int, dims: Iterable[str]
    ) -> None:
        """`value` for `member_id` in every period containing `at` (local), for each dim."""
        self.add_day(metric, member_id, local_day(at, self.tz_name), value, tuple(dims))

    def items(self) -> list[tuple[Key, list[int]]]:
        """(key, changes) with a change, in key order: concurrent writers touch shared counters
        in the same order."""
        return [(key, changes) for key, changes in sorted(self.values.items()) if any(changes)]


def _rows(items: list[tuple[Key, list[int]]]) -> list[dict[str, Any]]:
    return [
        dict(zip((*KEY_COLUMNS, *METRICS), (*key, *changes), strict=True)) for key, changes in items
    ]


async def apply(session: AsyncSession, deltas: Deltas) -> None:
    """Add the deltas to the counters, inserting rows that do not exist yet: as one of the
    unit's last statements (`write_last`: a counter row is shared by every write about its
    member, and its lock is held from the upsert to the commit).

    Keys are summed first, so no row is upserted twice, and every statement is built once per
    process (one entry of SQLAlchemy's compiled cache): a `.values([...])` of the rows would be
    compiled afresh each time, its shape changing with the number of rows (17% of a kudos turn's
    CPU). On PostgreSQL one statement whatever the number of rows: the columns travel as eight
    arrays (``unnest``), so its text and plan are the same for 1 row or 10,000. On SQLite the
    rows are executemany parameters of one upsert."""
    items = deltas.items()
    if items:
        await write_last(session, functools.partial(_upsert, items=items))


async def _upsert(session: AsyncSession, *, items: list[tuple[Key, list[int]]]) -> None:
    if session.get_bind().dialect.name == "postgresql":
        columns: dict[str, list[Any]] = {
            name: [key[i] for key, _ in items] for i, name in enumerate(KEY_COLUMNS)
        }
        for slot, metric in enumerate(METRICS):
            columns[metric] = [changes[slot] for _, changes in items]
        await run_fixed(session, _UNNEST_UPSERT, columns)
        return
    await session.execute(_SQLITE_UPSERT, _rows(items))


def _sqlite_upsert() -> Any:
    statement = sqlite_insert(COUNTER)
    return statement.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={metric: COUNTER.c[metric] + statement.excluded[metric] for metric in METRICS},
    )


_SQLITE_UPSERT = _sqlite_upsert()
_UNNEST_UPSERT = Fixed(
    text(
        "INSERT INTO leaderboard_counter "
        "(period, period_start, dim, member_id, points, badges, kudos, kudos_given) "
        "SELECT * FROM unnest(CAST(:period AS varchar[]), CAST(:period_start AS date[]), "
        "CAST(:dim AS varchar[]), CAST(:member_id AS integer[]), CAST(:points AS bigint[]), "
        "CAST(:badges AS bigint[]), CAST(:kudos AS bigint[]), CAST(:kudos_given AS bigint[])) "
        "ON CONFLICT (period, period_start, dim, member_id) DO UPDATE SET "
        "points = leaderboard_counter.points + excluded.points, "
        "badges = leaderboard_counter.badges + excluded.badges, "
        "kudos = leaderboard_counter.kudos + excluded.kudos, "
        "kudos_given = leaderboard_counter.kudos_given + excluded.kudos_given"
    ),
    writes=True,
    returns_rows=False,
)
# The batch path's awards of one reward, all at one instant: the rows are the members crossed
# with the instant's periods and the reward's dims, made by PostgreSQL from one array of member
# ids (grouped, so a row is never upserted twice by one statement). Sorted as `Deltas.items` sorts
# (by code point: COLLATE "C"), so every writer locks shared counters in the same order.
_AWARDED_MANY = text(
    "INSERT INTO leaderboard_counter "
    "(period, period_start, dim, member_id, points, badges, kudos, kudos_given) "
    "SELECT p.period, p.period_start, d.dim, m.member_id, m.awards * :points, m.awards, 0, 0 "
    "FROM unnest(CAST(:periods AS varchar[]), CAST(:starts AS date[])) AS p(period, period_start) "
    "CROSS JOIN unnest(CAST(:dims AS varchar[])) AS d(dim) "
    "CROSS JOIN (SELECT u.member_id, count(*) AS awards "
    "FROM unnest(CAST(:members AS integer[])) AS u(member_id) GROUP BY u.member_id) AS m "
    'ORDER BY p.period COLLATE "C", p.period_start, d.dim COLLATE "C", m.member_id '
    "ON CONFLICT (period, period_start, dim, member_id) DO UPDATE SET "
    "points = leaderboard_counter.points + excluded.points, "
    "badges = leaderboard_counter.badges + excluded.badges"
).bindparams(bindparam("points", type_=BigInteger))


async def _awarded_many(session: AsyncSession, *, values: dict[str, Any]) -> None:
    await session.execute(_AWARDED_MANY, values)


def _award_dims(category_id: int | None) -> tuple[str, ...]:
    return (EVERYTHING,) if category_id is None else (EVERYTHING, category_dim(category_id))


def _tag_dims(tags: Iterable[str]) -> tuple[str, ...]:
    return (EVERYTHING, *(tag_dim(t) for t in tags))


async def awarded(
    session: AsyncSession, tz_name: str, awards: Sequence[tuple[Award, int | None]]
) -> None:
    """Awards just written, each with its reward's category id: a badge each, and their points
    (the ledger entry an award with points writes at `awarded_at`)."""
    deltas = Deltas(tz_name)
    for award, category_id in awards:
        dims = _award_dims(category_id)
        deltas.add(BADGES, award.member_id, award.awarded_at, 1, dims)
        if award.points:
            deltas.add(POINTS, award.member_id, award.awarded_at, award.points, dims)
    await apply(session, deltas)


async def awarded_many(
    session: AsyncSession,
    tz_name: str,
    member_ids: Sequence[int],
    *,
    points: int,
    category_id: int | None,
    at: datetime,
) -> None:
    """Awards of one reward just written by the batch path (`rewards.awarding.batch`), all at
    `at`: a badge each, and their points, in one statement. On PostgreSQL the rows are made in
    the database from the member ids (a sweep batch of 1,000 awards is 10,000 counter rows:
    encoding them as arrays cost more Python than the upsert cost PostgreSQL)."""
    dims = _award_dims(category_id)
    if session.get_bind().dialect.name == "postgresql":
        if member_ids:
            starts = starts_of_day(local_day(at, tz_name))
            values = {
                "periods": [period for period, _ in starts],
                "starts": [start for _, start in starts],
                "dims": list(dims),
                "members": list(member_ids),
                "points": points,
            }
            await write_last(session, functools.partial(_awarded_many, values=values))
        return
    deltas = Deltas(tz_name)
    for member_id in member_ids:
        deltas.add(BADGES, member_id, at, 1, dims)
        if points:
            deltas.add(POINTS, member_id, at, points, dims)
    await apply(session, deltas)


async def revoked(
    session: AsyncSession, tz_name: str, award: Award, category_id: int | None, at: datetime
) -> None:
    """An award revoked at `at`: its badge leaves the periods it was awarded in; its points are
    reversed by a ledger entry at `at`, so they leave the periods containing `at`."""
    deltas = Deltas(tz_name)
    dims = _award_dims(category_id)
    deltas.add(BADGES, award.member_id, award.awarded_at, -1, dims)
    if award.points:
        deltas.add(POINTS, award.member_id, at, -award.points, dims)
    await apply(session, deltas)


def kudos_upsert_sql(gate: str = "") -> str:
    """PostgreSQL's counters of one kudos (`kudos_arrays`), as a kudos' single statement runs
    them: the rows are every period of the day crossed with the kudos' dims and its people, made
    by PostgreSQL from short arrays (25 values for a kudos to two people with two tags, where the
    rows themselves as arrays were 360, each encoded and type-checked by the driver). Sorted as
    `Deltas.items` sorts (code point order: COLLATE "C"), so writers lock shared counters in the
    same order; `kudos_deltas` is the same change, as rows. `gate` (a CTE's name and
    ``CROSS JOIN``, e.g. ``"claim CROSS JOIN "``) makes every row conditional on that CTE's."""
    return (
        # `gate` is a caller's constant, never input.
        "INSERT INTO leaderboard_counter "  # noqa: S608
        "(period, period_start, dim, member_id, points, badges, kudos, kudos_given) "
        "SELECT p.period, p.period_start, d.dim, m.member_id, m.points, 0, m.kudos, m.given "
        f"FROM {gate}unnest(CAST(:k_periods AS varchar[]), CAST(:k_starts AS date[])) "
        "AS p(period, period_start) "
        "CROSS JOIN unnest(CAST(:k_dims AS varchar[])) AS d(dim) "
        "CROSS JOIN unnest(CAST(:k_members AS integer[]), CAST(:k_points AS bigint[]), "
        "CAST(:k_kudos AS bigint[]), CAST(:k_given AS bigint[])) "
        "AS m(member_id, points, kudos, given) "
        'ORDER BY p.period COLLATE "C", p.period_start, d.dim COLLATE "C", m.member_id '
        "ON CONFLICT (period, period_start, dim, member_id) DO UPDATE SET "
        "points = leaderboard_counter.points + excluded.points, "
        "kudos = leaderboard_counter.kudos + excluded.kudos, "
        "kudos_given = leaderboard_counter.kudos_given + excluded.kudos_given"
    )


def kudos_arrays(
    tz_name: str,
    *,
    giver_id: int,
    receivers: Sequence[int],
    tags: Iterable[str],
    points_each: int,
    at: datetime,
) -> dict[str, list[Any]]:
    """The parameters of `kudos_upsert_sql` for one kudos (see `kudos_deltas`)."""
    people: dict[int, list[int]] = {giver_id: [0, 0, 1]}  # points, kudos received, given
    for receiver in receivers:
        changes = people.setdefault(receiver, [0, 0, 0])
        changes[0] += points_each
        changes[1] += 1
    periods = starts_of_day(local_day(at, tz_name))
    return {
        "k_periods": [period for period, _ in periods],
        "k_starts": [start for _, start in periods],
        "k_dims": list(_tag_dims(tags)),
        "k_members": list(people),
        "k_points": [changes[0] for changes in people.values()],
        "k_kudos": [changes[1] for changes in people.values()],
        "k_given": [changes[2] for changes in people.values()],
    }


def kudos_deltas(
    tz_name: str,
    *,
    giver_id: int,
    receivers: Sequence[int],
    tags: Iterable[str],
    points_each: int,
    at: datetime,
) -> Deltas:
    """One kudos: given once by the giver, received (and `points_each` credited) per receiver,
    under every one of its tags as well as overall."""
    deltas = Deltas(tz_name)
    day = local_day(at, tz_name)
    dims = _tag_dims(tags)
    deltas.add_day(KUDOS_GIVEN, giver_id, day, 1, dims)
    for receiver in receivers:
        deltas.add_day(KUDOS_RECEIVED, receiver, day, 1, dims)
        if points_each:
            deltas.add_day(POINTS, receiver, day, points_each, dims)
    return deltas

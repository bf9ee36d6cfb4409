"""What achievement functions and callbacks receive, as small protocols.

The evaluation engine passes its own objects; anything with these attributes works, which keeps
the functions testable against a plain SQLite connection.

SQL is written with ``$1, $2`` placeholders (asyncpg's style, and the seed's). The engine's adapter
runs it on our database and translates the placeholders for SQLite. Queries stay portable: no
PostgreSQL-only functions, dates passed as parameters rather than computed with ``NOW()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol


class Connection(Protocol):
    async def fetchval(self, sql: str, *args: object) -> object:
        """The first column of the first row, or None when there is no row."""
        ...


class MemberRef(Protocol):
    """The member being evaluated (the seed calls it `user`)."""

    @property
    def id(self) -> int: ...


class Recipient(MemberRef, Protocol):
    @property
    def email(self) -> str: ...

    @property
    def display_name(self) -> str: ...


class RewardRef(Protocol):
    @property
    def reward_id(self) -> int: ...

    @property
    def reward(self) -> str: ...

    @property
    def points(self) -> int: ...


class EvaluationEnv(Protocol):
    """The evaluation moment: `today` in the member's zone and the reward's period.

    `start_date` / `end_date` bound the period being judged (half-open: start <= t < end), e.g.
    the month for a monthly reward; the seed's `check_sales_target` reads them.
    """

    @property
    def today(self) -> date: ...

    @property
    def start_date(self) -> datetime: ...

    @property
    def end_date(self) -> datetime: ...


class RowsConnection(Connection, Protocol):
    """What a members form needs beyond `fetchval`: all rows."""

    async def fetch(self, sql: str, *args: object) -> list[tuple[object, ...]]: ...


# Ids per ``IN`` list of a members form (well inside SQLite's bound-parameter limit).
IDS_PER_QUERY = 500


def placeholders(first: int, count: int) -> str:
    """``$first, ..., $(first + count - 1)``: an ``IN`` list of `count` bound values."""
    return ", ".join(f"${n}" for n in range(first, first + count))


def id_chunks(members: Sequence[MemberRef]) -> list[list[int]]:
    """The members' ids, sorted and unique, in lists of at most `IDS_PER_QUERY`."""
    ids = sorted({m.id for m in members})
    return [ids[i : i + IDS_PER_QUERY] for i in range(0, len(ids), IDS_PER_QUERY)]


async def scalar_number(conn: Connection, sql: str, *args: object) -> int | float:
    """`fetchval` as a number: None (no rows, NULL aggregate) is 0."""
    return as_number(await conn.fetchval(sql, *args))


def as_number(value: object) -> int | float:
    """A query's value as a number: None (no rows, NULL aggregate) is 0."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            return float(str(value))
        except ValueError:
            raise TypeError(f"expected a number from the query, got {value!r}") from None
    return value

"""What achievement functions and callbacks receive, as small protocols.

The evaluation engine passes its own objects; anything with these attributes works, which keeps
the functions testable against a plain SQLite connection.

SQL is written with ``$1, $2`` placeholders (asyncpg's style, and the seed's). The engine's adapter
runs it on our database and translates the placeholders for SQLite. Queries stay portable: no
PostgreSQL-only functions, dates passed as parameters rather than computed with ``NOW()``.
"""

from __future__ import annotations

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


async def scalar_number(conn: Connection, sql: str, *args: object) -> int | float:
    """`fetchval` as a number: None (no rows, NULL aggregate) is 0."""
    value = await conn.fetchval(sql, *args)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            return float(str(value))
        except ValueError:
            raise TypeError(f"expected a number from the query, got {value!r}") from None
    return value

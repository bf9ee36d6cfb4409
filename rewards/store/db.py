"""Engine and transactions for SQLite (embedded default) and PostgreSQL (asyncpg).

SQLite specifics, set once here so services need not care:
- WAL journal and a busy timeout, so readers never block the single writer;
- foreign keys on;
- write transactions start with `BEGIN IMMEDIATE`, taking the write lock up front. A deferred
  transaction that reads and then writes can fail with "database is locked" without waiting, which
  would turn concurrent clicks into errors instead of orderly retries.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine


def ensure_sqlite_dir(url: str) -> None:
    """Create the directory of a SQLite file URL (the default lives under `var/`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


class _HintingSQLiteCompiler(SQLiteCompiler):
    """Renders `select().with_hint(table, "INDEXED BY ix", "sqlite")`, which SQLAlchemy drops.

    Without statistics SQLite prefers an index that returns rows already grouped by member over
    the time-range index, so a one-week leaderboard scans the whole ledger. Leaderboards name the
    covering time index explicitly instead.
    """

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
        return text


def _prepare_sqlite(engine: AsyncEngine) -> None:
    engine.sync_engine.dialect.statement_compiler = _HintingSQLiteCompiler

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


# Set in a write session's `info` by `rewards.services.outbox.stage`.
OUTBOX_STAGED = "outbox_staged"
# Set in a write session's `info` by `rewards.hooks.stage`.
HOOKS_STAGED = "hooks_staged"


class Database:
    """One engine per process; `read()` and `write()` hand out sessions bound to a transaction."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        self.outbox_listeners: list[Callable[[], None]] = []
        self.hook_listeners: list[Callable[[], None]] = []
        # Awaited by `dispose` before the engine closes: the hook runners of the cores on this
        # database finish their queue (a CLI command's hooks run before it exits).
        self.before_dispose: list[Callable[[], Awaitable[None]]] = []
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            ensure_sqlite_dir(url)
            # Pooled: opening an aiosqlite connection starts a thread and runs the PRAGMAs,
            # several milliseconds that a small query should not pay every time.
            self.engine = create_async_engine(
                url, echo=echo, pool_size=5, max_overflow=10, connect_args={"timeout": 30}
            )
            _prepare_sqlite(self.engine)
            self._write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        else:
            # asyncpg prepares every statement; after five runs PostgreSQL may switch a prepared
            # statement to a generic plan that ignores the actual dates, and the rule queries
            # (attendance windows, login streaks) then became 2-5x slower from the sixth sweep on
            # one pooled connection (bench/sweep.py). Custom plans keep them planned for their
            # parameters.
            self.engine = create_async_engine(
                url,
                echo=echo,
                pool_size=pool_size,
                max_overflow=pool_size * 2,
                pool_pre_ping=True,
                connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}},
            )
            self._write_engine = self.engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for queries; closing it rolls back, so it must not be used to write."""
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits as one transaction, or not at all.

        A transaction that staged outbox events (`rewards.services.outbox.stage` marks the
        session) calls every `outbox_listeners` callback once it has committed: the event
        manager's relay is woken at once instead of at its next poll. Likewise a transaction
        that staged event hooks (`rewards.hooks.stage`) calls every `hook_listeners` callback:
        the hook runner drains them right after the commit.
        """
        async with (
            AsyncSession(self._write_engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session
        if session.info.pop(OUTBOX_STAGED, False):
            for listener in list(self.outbox_listeners):
                listener()
        if session.info.pop(HOOKS_STAGED, False):
            for listener in list(self.hook_listeners):
                listener()

    async def dispose(self) -> None:
        for step in list(self.before_dispose):
            try:
                await step()
            except Exception:
                logging.getLogger(__name__).exception("a step before closing the database failed")
        await self.engine.dispose()

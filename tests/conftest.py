"""Shared fixtures: every test that takes `database` runs once on SQLite and once on PostgreSQL.

PostgreSQL comes from `REWARDS_TEST_PG_URL` (the test command starts a throwaway server and sets
it). Without it the PostgreSQL runs are skipped, unless `REWARDS_TEST_REQUIRE_PG=1`, in which case
they fail, so CI can never pass by quietly testing one database.

Fixtures:
- `database` (sqlite / postgresql): an empty, migrated `Database`. SQLite copies a migrated
  template file; PostgreSQL shares one migrated database per session, emptied before each test
  (rows deleted, id sequences restarted).
- `unmigrated_database_url` (sqlite / postgresql): the URL of a brand-new empty database, for
  tests of the migrations themselves.
- `clock`: a `FixedClock` at Wednesday 2026-11-18 15:00 UTC.
- marker `postgresql_only`: the SQLite run of the test is skipped.

The session-wide setup (migrating the template, creating the PostgreSQL database) happens lazily
from inside the `database` fixture, that is inside a running event loop; Alembic's env.py runs its
own loop, so that work is pushed to a thread.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

import rewards.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from rewards.clock import FixedClock
from rewards.store.db import Database
from rewards.store.migrate import upgrade, upgrade_async

# The RabbitMQ fixtures (`rabbitmq_node`, `rabbitmq_url`, `rabbitmq_restartable`).
pytest_plugins = ["tests.support.rabbitmq"]

PG_URL = os.environ.get("REWARDS_TEST_PG_URL", "")
REQUIRE_PG = os.environ.get("REWARDS_TEST_REQUIRE_PG") == "1"

# Tests must never read a developer's env/.env or reach a database named in their shell: a CLI test
# that forgot to set DATABASE_URL would otherwise migrate and write to it. Tests that need a
# setting pass it explicitly (CliRunner(env=...), load_settings(environ=...), monkeypatch).
_SETTINGS = (  # noqa: SIM905  (one readable block rather than 40 lines)
    "DATABASE_URL DBHOST DBPORT DBNAME DBUSER DBPWD TIMEZONE HOST PORT REWARDS_CATALOG "
    "REWARD_SCHEDULER ENABLE_REWARDS KUDOS_POINTS KUDOS_MAX_MESSAGE KUDOS_MAX_RECEIVERS "
    "REWARD_COOLDOWN_MINUTES REWARDS_ADMINS REWARDS_FUNCTION_MODULES SMTP_HOST SMTP_PORT "
    "SMTP_USER SMTP_PASSWORD SMTP_FROM TELEGRAM_BOT_TOKEN TELEGRAM_CHAT_ID BOT_REWARDS_ID "
    "BOT_REWARDS_SECRET REWARDS_TENANT_ID MICROSOFT_APP_ID MICROSOFT_APP_PASSWORD "
    "MICROSOFT_APP_TENANT_ID CELEBRATION_WEEKEND_POLICY REWARDS_SWEEP_MINUTES "
    "ANNOUNCE_TEAMS_CHANNEL ANNOUNCE_SLACK_CHANNEL SLACK_CHANNEL_ID DELIVERY_MAX_ATTEMPTS "
    "DELIVERY_BACKOFF_SECONDS SLACK_BOT_TOKEN SLACK_SIGNING_SECRET RABBITMQ_HOST RABBITMQ_PORT "
    "RABBITMQ_USER RABBITMQ_PASSWORD RABBITMQ_VHOST RABBITMQ_EXCHANGE RABBITMQ_QUEUE "
    "RABBITMQ_BINDINGS RABBITMQ_PREFETCH RABBITMQ_MAX_RETRIES RABBITMQ_RETRY_SECONDS "
    "ENABLE_EVENT_MANAGER REWARD_MIDDLEWARE LOG_FORMAT LOG_LEVEL TEAMS_SDK"
).split()
for _name in _SETTINGS:
    os.environ.pop(_name, None)
os.environ["REWARDS_ENV_FILE"] = os.devnull  # not a regular file: read as empty


@pytest.fixture
def teams_sdk(request: pytest.FixtureRequest) -> Iterator[str]:
    """The SDK behind the Teams endpoint in this test: `REWARDS_TEST_TEAMS_SDK` (default
    botbuilder), or each of `TEAMS_SDKS` with `@pytest.mark.parametrize("teams_sdk", TEAMS_SDKS,
    indirect=True)`. The Agents SDK needs Python 3.12+: skipped where it is not installed."""
    from tests.support import teams_connector

    name = getattr(request, "param", teams_connector.DEFAULT_SDK)
    if name == "agents" and not teams_connector.AGENTS_SDK:
        pytest.skip("the Microsoft 365 Agents SDK is not installed (it needs Python 3.12+)")
    before = teams_connector.current_sdk()
    teams_connector.choose_sdk(name)
    yield name
    teams_connector.choose_sdk(before)


# How long the per-test clean-up may wait for a lock before failing instead of hanging.
_LOCK_TIMEOUT = "10s"


def _pg_database_url(name: str) -> str:
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


async def _create_pg_database(name: str) -> None:
    engine = create_async_engine(PG_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


async def _drop_pg_database(name: str) -> None:
    engine = create_async_engine(PG_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            # FORCE (PostgreSQL 13+) ends connections a test may have leaked.
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


def _new_pg_name(purpose: str) -> str:
    return f"rewards_{purpose}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def _require_pg() -> None:
    """Skip, or fail under REWARDS_TEST_REQUIRE_PG=1, when no PostgreSQL is configured."""
    if PG_URL:
        return
    if REQUIRE_PG:
        pytest.fail("REWARDS_TEST_REQUIRE_PG=1 but REWARDS_TEST_PG_URL is not set", pytrace=False)
    pytest.skip("PostgreSQL not configured (set REWARDS_TEST_PG_URL or use scripts/test.sh)")


class _Backends:
    """Session-wide state built on first use: a migrated SQLite template file and one migrated
    PostgreSQL database. Async methods run inside the tests' loop; sync ones outside any loop."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._sqlite_template: Path | None = None
        self._pg_url: str | None = None
        self._pg_error: str | None = None
        self._pg_created: list[str] = []

    def _new_template_path(self) -> Path:
        return self._tmp_path_factory.mktemp("template") / "template.db"

    async def sqlite_template(self) -> Path:
        if self._sqlite_template is None:
            path = self._new_template_path()
            await upgrade_async(f"sqlite+aiosqlite:///{path}")
            self._sqlite_template = path
        return self._sqlite_template

    def sqlite_template_sync(self) -> Path:
        if self._sqlite_template is None:
            path = self._new_template_path()
            upgrade(f"sqlite+aiosqlite:///{path}")
            self._sqlite_template = path
        return self._sqlite_template

    async def create_pg_database(self, purpose: str) -> str:
        """A new empty PostgreSQL database, dropped at the end of the session; returns its URL."""
        _require_pg()
        name = _new_pg_name(purpose)
        try:
            await _create_pg_database(name)
        except Exception as problem:
            pytest.fail(
                f"cannot create a database on REWARDS_TEST_PG_URL "
                f"({make_url(PG_URL).render_as_string(hide_password=True)}): {problem!r}",
                pytrace=False,
            )
        self._pg_created.append(name)
        return _pg_database_url(name)

    async def pg_migrated_url(self) -> str:
        _require_pg()
        if self._pg_error is not None:  # failed once: do not retry (and time out) for every test
            pytest.fail(self._pg_error, pytrace=False)
        if self._pg_url is None:
            try:
                url = await self.create_pg_database("test")
                await upgrade_async(url)
            except (Exception, pytest.fail.Exception) as problem:
                self._pg_error = f"PostgreSQL test database setup failed earlier: {problem!r}"
                raise
            self._pg_url = url
        return self._pg_url

    def pg_migrated_url_sync(self) -> str:
        return asyncio.run(self.pg_migrated_url())

    def close(self) -> None:
        if not self._pg_created:
            return

        async def drop_all() -> None:
            for name in self._pg_created:
                await _drop_pg_database(name)

        try:
            asyncio.run(drop_all())
        except Exception as problem:  # the throwaway server is deleted anyway; just say so
            print(f"\nwarning: could not drop test databases {self._pg_created}: {problem!r}")


@pytest.fixture(scope="session")
def _backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Backends]:
    backends = _Backends(tmp_path_factory)
    yield backends
    backends.close()


@pytest.fixture(scope="session")
def sqlite_template(_backends: _Backends) -> Path:
    """A migrated SQLite file; `database` copies it for each test (faster than migrating)."""
    return _backends.sqlite_template_sync()


@pytest.fixture(scope="session")
def pg_migrated_url(_backends: _Backends) -> str:
    """The PostgreSQL database migrated once per session that `database` empties for each test."""
    return _backends.pg_migrated_url_sync()


_TABLES = SQLModel.metadata.sorted_tables  # parents before children
_NON_EMPTY_TABLES = " UNION ALL ".join(
    f"SELECT '{table.name}' WHERE EXISTS (SELECT 1 FROM \"{table.name}\")" for table in _TABLES
)


async def _empty_pg(database: Database) -> None:
    """Delete every row of every model table and restart the id sequences.

    Only tables that hold rows are emptied, children first, with DELETE: on the handful of rows a
    test writes this takes ~15 ms where TRUNCATE of every table takes ~70 ms, per test.
    Connections left over from an earlier test (a leaked session) could hold locks and make this
    wait forever, so they are ended first, and a lock timeout turns any other wait into an error
    instead of a hung test run.
    """
    async with database.write() as session:
        await session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        await session.execute(text(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'"))
        non_empty = set((await session.execute(text(_NON_EMPTY_TABLES))).scalars())
        for table in reversed(_TABLES):
            if table.name in non_empty:
                await session.execute(text(f'DELETE FROM "{table.name}"'))
        # Last: deleting members bumps it (migration 0023's triggers), creating its row again.
        await session.execute(text("DELETE FROM membership_version"))
        await session.execute(
            text(
                "SELECT setval(c.oid, 1, false) FROM pg_class c "
                "WHERE c.relkind = 'S' AND c.relnamespace = current_schema()::regnamespace"
            )
        )


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, _backends: _Backends
) -> AsyncIterator[Database]:
    """An empty, migrated database of each kind."""
    if request.param == "sqlite":
        if request.node.get_closest_marker("postgresql_only"):
            pytest.skip("needs real concurrent writers: PostgreSQL only")
        path = tmp_path / "rewards.db"
        shutil.copyfile(await _backends.sqlite_template(), path)
        db = Database(f"sqlite+aiosqlite:///{path}")
    else:
        db = Database(await _backends.pg_migrated_url(), pool_size=20)
        try:
            await _empty_pg(db)
        except BaseException:
            await db.dispose()
            raise
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def unmigrated_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, _backends: _Backends
) -> str:
    """The URL of a new, empty database (no tables at all) of each kind."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    return await _backends.create_pg_database("fresh")


@pytest.fixture
def clock() -> FixedClock:
    """Wednesday 2026-11-18 15:00 UTC unless a test moves it."""
    return FixedClock(datetime(2026, 11, 18, 15, 0, tzinfo=UTC))

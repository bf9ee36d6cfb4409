"""The Alembic history builds exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import Connection, Integer, String, func, inspect, select, text
from sqlmodel import SQLModel

import rewards.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from rewards.store.db import Database
from rewards.store.migrate import (
    alembic_config,
    prepare_schema,
    upgrade_async,
    upgrade_if_needed,
)
from rewards.store.migrate import head_revision as files_head
from rewards.store.types import JSONType, UTCDateTime
from tests.factories import add_reward

MODEL_TABLES = {table.name for table in SQLModel.metadata.sorted_tables}


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"the migration history must have one head, found {heads}"
    return heads[0]


def _diff(connection: Connection) -> list[Any]:
    # The same options as migrations/env.py (compare_type), plus server defaults: nothing is
    # ignored, so any drift between the models and the migrations fails here.
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, SQLModel.metadata))


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _snapshot(connection: Connection) -> dict[str, Any]:
    """Tables, columns, indexes, unique and foreign keys, as reported by the database."""
    inspector = inspect(connection)
    result: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        result[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ],
            "indexes": sorted(
                (i["name"] or "", tuple(i["column_names"])) for i in inspector.get_indexes(table)
            ),
            "unique": sorted(
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            ),
            "foreign": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"])
                for f in inspector.get_foreign_keys(table)
            ),
        }
    return result


async def _run(url: str, work: Any) -> Any:
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            return await connection.run_sync(work)
    finally:
        await database.dispose()


async def _downgrade_async(url: str, revision: str) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(url), revision)


def test_history_has_a_single_head() -> None:
    assert head_revision()


async def test_migrated_schema_matches_the_models(database: Database) -> None:
    async with database.engine.connect() as connection:
        differences = await connection.run_sync(_diff)
        tables = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    assert differences == []
    assert tables == MODEL_TABLES | {"alembic_version"}


async def test_upgrading_twice_is_a_no_op(database: Database) -> None:
    before = await _run(database.url, _snapshot)
    assert await _run(database.url, _revision) == head_revision()

    await upgrade_async(database.url)

    assert await _run(database.url, _snapshot) == before
    assert await _run(database.url, _revision) == head_revision()
    assert await _run(database.url, _diff) == []


async def test_upgrade_from_empty_then_downgrade_and_upgrade_again(
    unmigrated_database_url: str,
) -> None:
    url = unmigrated_database_url
    await upgrade_async(url)
    assert await _run(url, _diff) == []

    await _downgrade_async(url, "base")
    tables = await _run(url, lambda c: set(inspect(c).get_table_names()))
    assert tables <= {"alembic_version"}
    assert await _run(url, _revision) is None

    await upgrade_async(url)
    assert await _run(url, _diff) == []
    assert await _run(url, _revision) == head_revision()


def test_the_head_read_from_the_files_is_alembics() -> None:
    assert files_head() == head_revision()


async def test_upgrade_if_needed_skips_only_a_database_at_the_head(
    unmigrated_database_url: str,
) -> None:
    """The server's start-up shortcut: one query; a fresh or older database is still migrated."""
    url = unmigrated_database_url
    assert await upgrade_if_needed(url) is True  # fresh: migrated
    assert await _run(url, _revision) == head_revision()
    assert await _run(url, _diff) == []
    assert await upgrade_if_needed(url) is False  # at the head: Alembic not run

    await _downgrade_async(url, "-1")
    assert await _run(url, _revision) != head_revision()
    assert await upgrade_if_needed(url) is True  # one revision behind: upgraded
    assert await _run(url, _revision) == head_revision()
    assert await _run(url, _diff) == []


def _full_snapshot(connection: Connection) -> dict[str, Any]:
    """`_snapshot` and what it leaves out: primary keys, defaults, index uniqueness, foreign key
    options (ON DELETE ...)."""
    inspector = inspect(connection)
    result = _snapshot(connection)
    for table in result:
        result[table]["primary"] = inspector.get_pk_constraint(table)["constrained_columns"]
        result[table]["defaults"] = [
            (c["name"], c.get("default"), c.get("autoincrement"))
            for c in inspector.get_columns(table)
        ]
        result[table]["index_unique"] = sorted(
            (i["name"] or "", bool(i["unique"])) for i in inspector.get_indexes(table)
        )
        result[table]["foreign_options"] = sorted(
            (
                tuple(f["constrained_columns"]),
                f["referred_table"],
                tuple(f["referred_columns"]),
                sorted(f["options"].items()),
            )
            for f in inspector.get_foreign_keys(table)
        )
    return result


async def test_a_fresh_sqlite_created_from_the_models_is_the_migrated_schema(
    tmp_path: Path,
) -> None:
    """The server's start-up creates an empty SQLite file from the models and stamps the head
    (`prepare_schema`) instead of running the history: the result must be what the history
    builds, down to keys, defaults and ON DELETE rules, and Alembic must see nothing to do."""
    created = f"sqlite+aiosqlite:///{tmp_path / 'created.db'}"
    migrated = f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
    assert await prepare_schema(created) == "created"
    await upgrade_async(migrated)

    expected = await _run(migrated, _full_snapshot)
    assert await _run(created, _full_snapshot) == expected
    assert await _run(created, _diff) == []
    assert await _run(created, _revision) == head_revision()

    assert await prepare_schema(created) == "current"
    await upgrade_async(created)  # Alembic agrees: nothing to do
    assert await _run(created, _full_snapshot) == expected
    assert await _run(created, _revision) == head_revision()


async def test_prepare_schema_migrates_what_it_does_not_create(
    unmigrated_database_url: str,
) -> None:
    """PostgreSQL, or a SQLite database one revision behind: through Alembic, as before."""
    url = unmigrated_database_url
    await upgrade_async(url)
    await _downgrade_async(url, "-1")
    assert await prepare_schema(url) == "migrated"
    assert await _run(url, _revision) == head_revision()
    assert await prepare_schema(url) == "current"


def test_cli_db_upgrade_creates_the_tables(tmp_path: Path) -> None:
    from bots.cli import cli

    path = tmp_path / "var" / "cli.db"  # the directory does not exist yet
    env = {"DATABASE_URL": f"sqlite:///{path}", "REWARDS_ENV_FILE": str(tmp_path / "none.env")}
    result = CliRunner().invoke(cli, ["db", "upgrade"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "revision head" in result.output

    with closing(sqlite3.connect(path)) as connection:
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        (version,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert tables >= MODEL_TABLES
    assert version == head_revision()

    # Running it again is harmless.
    again = CliRunner().invoke(cli, ["db", "upgrade"], env=env, catch_exceptions=False)
    assert again.exit_code == 0, again.output


async def test_database_fixture_starts_empty(database: Database) -> None:
    """Each test gets every table empty (PostgreSQL is shared by the session and emptied)."""

    def counts(connection: Connection) -> dict[str, int]:
        return {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }

    assert set((await _run(database.url, counts)).values()) == {0}


def _counter_columns_revision() -> tuple[str, str]:
    """(the revision giving the counters a column per metric, the one before it)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    for revision in script.walk_revisions():
        if revision.path.endswith("_leaderboard_counter_columns.py"):
            assert isinstance(revision.down_revision, str)
            return revision.revision, revision.down_revision
    raise AssertionError("no leaderboard_counter_columns migration")


async def test_counters_keep_their_values_through_the_metric_columns_migration(
    unmigrated_database_url: str,
) -> None:
    """Counters written as a row per metric come out as one row with a column per metric (and
    back again on downgrade), so nobody's board changes and no rebuild is needed."""
    url = unmigrated_database_url
    revision, before = _counter_columns_revision()
    await asyncio.to_thread(command.upgrade, alembic_config(url), before)
    rows = [
        ("points", "week", "2026-11-16", "", 7, 1300),
        ("badges", "week", "2026-11-16", "", 7, 2),
        ("badges", "all", "1970-01-01", "c1", 7, 1),
        ("kudos", "month", "2026-11-01", "t:docs", 8, 3),
        ("kudos_given", "month", "2026-11-01", "t:docs", 9, 1),
        ("points", "month", "2026-11-01", "t:docs", 8, 15),
    ]
    insert = (
        "INSERT INTO leaderboard_counter (metric, period, period_start, dim, member_id, value) "
        "VALUES (:metric, :period, :period_start, :dim, :member_id, :value)"
    )
    names = ("metric", "period", "period_start", "dim", "member_id", "value")
    narrow = "SELECT metric, period, period_start, dim, member_id, value FROM leaderboard_counter"

    def write(connection: Connection) -> None:
        for row in rows:
            values = dict(zip(names, row, strict=True))
            values["period_start"] = date.fromisoformat(row[2])
            connection.execute(text(insert), values)
        connection.commit()

    def read(query: str) -> Any:
        return lambda c: {tuple(str(v) for v in row) for row in c.execute(text(query))}

    await _run(url, write)
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)
    wide = await _run(
        url,
        read(
            "SELECT period, period_start, dim, member_id, points, badges, kudos, kudos_given "
            "FROM leaderboard_counter"
        ),
    )
    assert wide == {
        ("week", "2026-11-16", "", "7", "1300", "2", "0", "0"),
        ("all", "1970-01-01", "c1", "7", "0", "1", "0", "0"),
        ("month", "2026-11-01", "t:docs", "8", "15", "0", "3", "0"),
        ("month", "2026-11-01", "t:docs", "9", "0", "0", "0", "1"),
    }
    await _downgrade_async(url, before)
    assert await _run(url, read(narrow)) == {tuple(str(v) for v in row) for row in rows}


async def _member_at_0017(database: Database, name: str) -> int:
    """A member row as the schema of 0017 has it (the model has grown columns since)."""
    member = sa.table(
        "member",
        sa.column("id", Integer),
        sa.column("email", String),
        sa.column("display_name", String),
        sa.column("active", sa.Boolean),
        sa.column("leaderboard_opt_out", sa.Boolean),
        sa.column("celebrations_opt_out", sa.Boolean),
        sa.column("created_at", UTCDateTime),
        sa.column("updated_at", UTCDateTime),
    )
    now = datetime(2026, 11, 1, tzinfo=UTC)
    async with database.write() as session:
        result = await session.execute(
            member.insert()
            .values(
                email=f"{name.lower()}@example.com",
                display_name=name,
                active=True,
                leaderboard_opt_out=False,
                celebrations_opt_out=False,
                created_at=now,
                updated_at=now,
            )
            .returning(member.c.id)
        )
        return int(result.scalar_one())


async def test_awards_waiting_for_their_announcement_survive_0018_both_ways(
    unmigrated_database_url: str,
) -> None:
    """Awards marked for announcement before 0018 become pending rows (one per reward and run),
    so the next run still announces them; the downgrade writes the marks back."""
    url = unmigrated_database_url
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0017")
    database = Database(url)
    try:
        ana = await _member_at_0017(database, "Ana")
        bo = await _member_at_0017(database, "Bo")
        await add_reward(database, reward_id=5)
    finally:
        await database.dispose()
    award = sa.table(
        "award",
        sa.column("id", Integer),
        sa.column("reward_id", Integer),
        sa.column("member_id", Integer),
        sa.column("points", Integer),
        sa.column("source", String),
        sa.column("award_key", String),
        sa.column("context", JSONType),
        sa.column("awarded_at", UTCDateTime()),
        sa.column("announce_run", String),
    )

    def mark(connection: Connection) -> None:
        for member_id, run in ((ana, "run:1"), (bo, "run:1"), (bo, None)):
            connection.execute(
                award.insert().values(
                    reward_id=5,
                    member_id=member_id,
                    points=0,
                    source="rule",
                    award_key=f"5:{member_id}:{run}",
                    context={},
                    awarded_at=datetime(2026, 11, 18, tzinfo=UTC),
                    announce_run=run,
                )
            )

    def pending(connection: Connection) -> list[Any]:
        query = text("SELECT reward_id, run_key, award_ids FROM announce_pending")
        return [tuple(row) for row in connection.execute(query)]

    def marks(connection: Connection) -> list[Any]:
        query = select(award.c.id, award.c.announce_run).order_by(award.c.id)
        return [tuple(row) for row in connection.execute(query)]

    await _run(url, lambda c: (mark(c), c.commit()))
    await upgrade_async(url)
    [(reward_id, run_key, award_ids)] = await _run(url, pending)
    ids = json.loads(award_ids) if isinstance(award_ids, str) else award_ids
    assert (reward_id, run_key, ids) == (5, "run:1", [1, 2])

    await _downgrade_async(url, "0017")
    assert await _run(url, marks) == [(1, "run:1"), (2, "run:1"), (3, None)]

"""Programmatic Alembic: `rewards db upgrade` and the server's start-up both call `upgrade()`.

Alembic itself (its command machinery, Mako, the revision graph) is imported only when a migration
has to run: the server's start first asks the database for its `alembic_version` and compares it
with the head revision read from the versions folder's files (`head_revision`), and skips Alembic
entirely when they match (`upgrade_if_needed`). That is the common restart and saves ~0.5 s.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
VERSIONS = MIGRATIONS / "versions"

_REVISION = re.compile(r"""^revision\s*(?::\s*str\s*)?=\s*['"]([^'"]+)['"]""", re.MULTILINE)
_DOWN = re.compile(r"""^down_revision\s*(?::[^=]*)?=\s*(.+)$""", re.MULTILINE)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`. Safe to call at every start."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """`upgrade()` from inside a running event loop (env.py starts its own loop)."""
    await asyncio.to_thread(upgrade, url, revision)


def revisions(versions: Path = VERSIONS) -> tuple[set[str], str | None] | None:
    """Every revision of the history and its head, from the revision files' `revision` and
    `down_revision` lines (without importing Alembic); the head is None when there are several.
    None when a file is in a form this parser does not know."""
    known: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        if path.name.startswith("__"):
            continue
        text = path.read_text(encoding="utf-8")
        found = _REVISION.findall(text)
        down = _DOWN.findall(text)
        if len(found) != 1 or len(down) != 1:
            return None
        known.add(found[0])
        parents.update(re.findall(r"""['"]([^'"]+)['"]""", down[0]))
    heads = known - parents
    return known, (next(iter(heads)) if len(heads) == 1 else None)


def head_revision(versions: Path = VERSIONS) -> str | None:
    """The head of the history (see `revisions`). None when it cannot be told (no file, several
    heads, a line in a form this parser does not know): the caller then runs Alembic, which knows
    for sure."""
    found = revisions(versions)
    return found[1] if found is not None else None


async def current_revision(url: str) -> str | None:
    """The revision recorded in the database's `alembic_version`, or None (no such table, no
    row, several rows, or the database cannot be opened: let Alembic deal with it)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from rewards.store.db import ensure_sqlite_dir

    try:
        ensure_sqlite_dir(url)
        engine = create_async_engine(url, poolclass=NullPool)
    except Exception:  # not an async URL: Alembic reports what is wrong with it
        return None
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
    except Exception:  # no alembic_version yet (a fresh database): migrate
        return None
    finally:
        await engine.dispose()
    return str(rows[0][0]) if len(rows) == 1 else None


async def upgrade_if_needed(url: str) -> bool:
    """Migrate the database at `url` to the head unless it is already there; True if Alembic
    ran. The check is one query; a database at an older (or unknown) revision is upgraded as
    before, so this is only a shortcut for the database that is already current."""
    head = head_revision()
    if head is not None and await current_revision(url) == head:
        return False
    await upgrade_async(url)
    return True


# What Alembic's own `alembic_version` table is (its DDL, so a stamp needs no Alembic import).
_VERSION_TABLE = (
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)


async def prepare_schema(url: str) -> str:
    """Bring the database at `url` to the head the cheapest safe way, for the server's start:

    - "current": `alembic_version` is already the head (one query; Alembic is not imported);
    - "created": an empty SQLite file (no table at all) gets the models' tables and the head
      stamp in one `BEGIN IMMEDIATE` transaction (a concurrent starter waits, then finds it
      current). The models and the migration history build the same schema
      (tests/test_migrations.py compares them, and this path's result with a migrated one); the
      history's only data step is a backfill, empty on an empty database;
    - "migrated": anything else (an older revision, a database with tables but no
      `alembic_version`, PostgreSQL) goes through Alembic as before.
    """
    from sqlalchemy import inspect, text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from rewards.store.db import _prepare_sqlite, ensure_sqlite_dir

    head = head_revision()
    if head is None or not url.startswith("sqlite+aiosqlite"):
        return "migrated" if await upgrade_if_needed(url) else "current"
    ensure_sqlite_dir(url)
    engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": 30})
    _prepare_sqlite(engine)
    try:
        async with engine.connect() as plain:
            connection = await plain.execution_options(sqlite_begin="IMMEDIATE")
            async with connection.begin():
                tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
                if "alembic_version" in tables:
                    rows = (
                        await connection.execute(text("SELECT version_num FROM alembic_version"))
                    ).all()
                    if [tuple(r) for r in rows] == [(head,)]:
                        return "current"
                elif not tables:
                    from sqlmodel import SQLModel

                    import rewards.store.models  # noqa: F401  (the tables on the metadata)

                    await connection.run_sync(SQLModel.metadata.create_all)
                    await connection.execute(text(_VERSION_TABLE))
                    await connection.execute(
                        text("INSERT INTO alembic_version (version_num) VALUES (:head)"),
                        {"head": head},
                    )
                    return "created"
    finally:
        await engine.dispose()
    await upgrade_async(url)
    return "migrated"


def current(url: str) -> None:
    from alembic import command

    command.current(alembic_config(url), verbose=False)

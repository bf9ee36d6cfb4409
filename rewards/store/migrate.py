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


def head_revision(versions: Path = VERSIONS) -> str | None:
    """The head of the history, from the revision files' `revision` and `down_revision` lines
    (without importing Alembic). None when it cannot be told (no file, several heads, a line in
    a form this parser does not know): the caller then runs Alembic, which knows for sure."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        if path.name.startswith("__"):
            continue
        text = path.read_text(encoding="utf-8")
        found = _REVISION.findall(text)
        down = _DOWN.findall(text)
        if len(found) != 1 or len(down) != 1:
            return None
        revisions.add(found[0])
        parents.update(re.findall(r"""['"]([^'"]+)['"]""", down[0]))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


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


def current(url: str) -> None:
    from alembic import command

    command.current(alembic_config(url), verbose=False)

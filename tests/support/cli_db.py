"""A SQLite file with two members, for the import commands' CLI tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rewards.store.db import Database
from rewards.store.migrate import upgrade
from tests.factories import add_member


def cli_environment(tmp_path: Path) -> dict[str, str]:
    """The environment a CLI test runs with: its own database, no env file."""
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "REWARDS_ENV_FILE": str(tmp_path / "no.env"),
    }


def prepare_members(env: dict[str, str]) -> tuple[str, list[int]]:
    """Migrate the environment's database and add Ann Lee and Bob Ray: (file path, their ids)."""
    path = env["DATABASE_URL"].removeprefix("sqlite:///")
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)

    async def members() -> list[int]:
        db = Database(url)
        try:
            return [await add_member(db, "Ann Lee"), await add_member(db, "Bob Ray")]
        finally:
            await db.dispose()

    return path, asyncio.run(members())

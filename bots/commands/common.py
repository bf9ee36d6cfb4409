"""Helpers shared by CLI commands: settings, a database, and running a coroutine."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rewards.settings import Settings, load_settings
from rewards.store.db import Database
from rewards.store.migrate import upgrade

T = TypeVar("T")


def settings() -> Settings:
    return load_settings()


def with_database(work: Callable[[Database, Settings], Awaitable[T]], *, migrate: bool = True) -> T:
    """Run `work` against the configured database, migrating it first so commands work on a fresh
    machine without a separate `rewards db upgrade`."""
    config = settings()
    if migrate:
        upgrade(config.database_url)

    async def run() -> T:
        database = Database(config.database_url)
        try:
            return await work(database, config)
        finally:
            await database.dispose()

    return asyncio.run(run())

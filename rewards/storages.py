"""Where an embedding application keeps its reward catalogue (`RewardsEngine.add_storage`).

A storage only *reads* definitions; the engine validates them and upserts them into its own
database by `reward_id` (`rewards.services.catalog.load_catalog`), exactly as `rewards catalog
load` and the start-up catalogue files do, so a definition has one meaning wherever it came from.

- `JsonStorage(json_file=...)`: a JSON file in the seed's format (a list of definitions, or an
  object with a "rewards" list). Every problem in the file is reported at once, with its place.
- `DatabaseStorage(database_url=...)`: the catalogue stored in another nav-rewards database (a
  central catalogue shared by several deployments), or, without a URL, this engine's own (useful
  to check it: the load then reports every reward unchanged).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

from rewards.catalog.loader import RewardDefinition, load_file
from rewards.services.catalog import list_definitions
from rewards.store.db import Database


class RewardStorage(Protocol):
    """Anything that can read a list of reward definitions."""

    @property
    def name(self) -> str:
        """Where the definitions come from, for logs and reports."""
        ...

    async def load_rewards(self) -> list[RewardDefinition]:
        """Read and validate the definitions; raises `CatalogError` listing every problem."""
        ...


class JsonStorage:
    """Reward definitions from a JSON file (the seed's `my_rewards/rewards.json`)."""

    def __init__(self, json_file: str | Path) -> None:
        self.path = Path(json_file)

    @property
    def name(self) -> str:
        return str(self.path)

    async def load_rewards(self) -> list[RewardDefinition]:
        if not await asyncio.to_thread(self.path.is_file):
            raise FileNotFoundError(f"reward catalogue {self.path} does not exist")
        return await asyncio.to_thread(load_file, self.path)

    def __repr__(self) -> str:
        return f"JsonStorage(json_file={str(self.path)!r})"


class DatabaseStorage:
    """Reward definitions stored in a nav-rewards database (enabled and disabled alike)."""

    def __init__(self, database_url: str | None = None, *, db: Database | None = None) -> None:
        self.database_url = database_url
        self._db = db

    @property
    def name(self) -> str:
        if self.database_url is None:
            return "this engine's database"
        head, _, tail = self.database_url.partition("://")
        return f"{head}://{tail.rpartition('@')[2]}"  # no credentials in logs

    def bind(self, db: Database) -> None:
        """Use the engine's own database when no URL was given (called by the engine)."""
        if self.database_url is None and self._db is None:
            self._db = db

    async def load_rewards(self) -> list[RewardDefinition]:
        if self.database_url is not None:
            source = Database(self.database_url)
            try:
                return await list_definitions(source, enabled=None)
            finally:
                await source.dispose()
        if self._db is None:
            raise RuntimeError("DatabaseStorage() without a URL reads the engine's database")
        return await list_definitions(self._db, enabled=None)

    def __repr__(self) -> str:
        return f"DatabaseStorage({self.name!r})"

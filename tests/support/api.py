"""An API test client on a given database, with one key per scope (each key is named after its
scope: `read`, `write`, `admin`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp.test_utils import TestClient, TestServer

from bots.server import create_app
from rewards.clock import Clock
from rewards.core import Core
from rewards.services.apikeys import create_key
from rewards.settings import Settings
from rewards.store.db import Database


@dataclass
class Api:
    client: TestClient  # type: ignore[type-arg]
    keys: dict[str, str]
    key_ids: dict[str, int] = field(default_factory=dict)

    def auth(self, scope: str = "write", **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}", **headers}


@asynccontextmanager
async def api_client(
    database: Database, clock: Clock, *, admins: tuple[str, ...] = ()
) -> AsyncIterator[Api]:
    """The app on `database`; `admins` is REWARDS_ADMINS (emails and group names)."""
    settings = Settings(
        database_url=database.url, catalog_files=(), reward_scheduler=False, admins=admins
    )
    core = Core(settings=settings, db=Database(database.url), clock=clock)
    keys: dict[str, str] = {}
    key_ids: dict[str, int] = {}
    for scope in ("read", "write", "admin"):
        view, keys[scope] = await create_key(database, scope, scope, clock)
        key_ids[scope] = view.id
    async with TestClient(TestServer(create_app(settings, core, platforms=False))) as client:
        yield Api(client, keys, key_ids)

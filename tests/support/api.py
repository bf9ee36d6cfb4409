"""An API test client on a given database, with one key per scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

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

    def auth(self, scope: str = "write", **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}", **headers}


@asynccontextmanager
async def api_client(database: Database, clock: Clock) -> AsyncIterator[Api]:
    settings = Settings(database_url=database.url, catalog_files=(), reward_scheduler=False)
    core = Core(settings=settings, db=Database(database.url), clock=clock)
    keys = {scope: (await create_key(database, scope, scope, clock))[1] for scope in
            ("read", "write", "admin")}  # fmt: skip
    async with TestClient(TestServer(create_app(settings, core, platforms=False))) as client:
        yield Api(client, keys)

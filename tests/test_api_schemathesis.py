"""schemathesis against the served OpenAPI description, with a write key: no 5xx, and every
response keeps to the description (status, content type, body schema)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import schemathesis
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bots.api.pagination import encode_cursor
from bots.server import create_app
from rewards.catalog.loader import load_file
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.services.apikeys import create_key
from rewards.services.catalog import load_catalog
from rewards.settings import Settings
from rewards.store.db import Database
from tests.factories import add_member
from tests.support.api import api_client

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "rewards.json"
MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _fuzz(spec_url: str, base_url: str, key: str) -> list[str]:
    """Run every operation's examples; answer the failures (operation: error)."""
    schema = schemathesis.openapi.from_url(spec_url, timeout=10)
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {key}"}
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=10)

        try:
            run()
        except (Exception, BaseExceptionGroup) as error:  # a failed check: note it, go on
            failures.append(f"{operation.label}: {str(error)[:1500]}")
    return failures


async def test_schemathesis_finds_no_5xx_and_no_schema_break(
    database: Database, clock: FixedClock
) -> None:
    for name in ("Ana", "Bob", "Cy"):
        await add_member(database, name, department="Sales")
    await load_catalog(database, load_file(EXAMPLES), clock=clock)
    _, key = await create_key(database, "fuzz", "write", clock)
    settings_ = Settings(database_url=database.url, catalog_files=(), reward_scheduler=False)
    core = Core(settings=settings_, db=Database(database.url), clock=clock)
    server = TestServer(create_app(settings_, core, platforms=False), host="127.0.0.1")
    await server.start_server()
    try:
        base = str(server.make_url("")).rstrip("/")
        failures = await asyncio.to_thread(_fuzz, f"{base}/rewards/api/v1/openapi.json", base, key)
    finally:
        await server.close()
    assert not failures, "\n".join(failures[:20])


async def test_ids_beyond_the_database_are_not_found_not_500s(
    database: Database, clock: FixedClock
) -> None:
    """What schemathesis found: ids past the 32-bit id columns used to reach the database."""
    await add_member(database, "Ana")
    big = 252841999465612
    async with api_client(database, clock) as api:
        for path in (
            f"/rewards/api/v1/rewards/{big}",
            f"/rewards/api/v1/nominations/{big}",
            f"/rewards/api/v1/members/{big}",
            "/rewards/api/v1/members/%C2%B2",  # a Unicode digit
        ):
            response = await api.client.get(path, headers=api.auth("read"))
            assert response.status == 404, path
        revoke = await api.client.post(
            f"/rewards/api/v1/awards/{big}/revoke", json={"by": 1}, headers=api.auth("admin")
        )
        assert revoke.status == 404
        event = await api.client.post(
            "/rewards/api/v1/events", json={"event": "x", "member": 2**63 - 1}, headers=api.auth()
        )
        assert event.status == 422
        cursor = encode_cursor(2**40)
        listed = await api.client.get(
            f"/kudos/api/v1/user_kudos?cursor={cursor}", headers=api.auth("read")
        )
        assert listed.status == 422

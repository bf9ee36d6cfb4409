"""API keys on the REST API: 401 without a valid key, 403 below the route's scope, problem+json."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from rewards.clock import FixedClock
from rewards.services.apikeys import authenticate, create_key, hash_key, list_keys, revoke_key
from rewards.store.db import Database
from rewards.store.models import ApiKey
from tests.factories import add_member
from tests.support.api import api_client

PROBLEM = "application/problem+json"


async def test_no_key_is_a_401_problem_with_www_authenticate(database: Database, clock) -> None:
    async with api_client(database, clock) as api:
        response = await api.client.get("/rewards/api/v1/rewards")
        assert response.status == 401
        assert response.content_type == PROBLEM
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        body = await response.json()
        assert body["status"] == 401
        assert body["title"] == "Unauthorized"
        assert "Authorization: Bearer" in body["detail"]


async def test_unknown_and_revoked_keys_are_refused(database: Database, clock) -> None:
    async with api_client(database, clock) as api:
        response = await api.client.get(
            "/kudos/api/v1/kudos_tags", headers={"Authorization": "Bearer nrw_nope"}
        )
        assert response.status == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]

        assert (await api.client.get("/kudos/api/v1/kudos_tags", headers=api.auth("read"))).ok
        await revoke_key(database, "read", clock)
        response = await api.client.get("/kudos/api/v1/kudos_tags", headers=api.auth("read"))
        assert response.status == 401
        assert (await response.json())["detail"] == "This API key is unknown or has been revoked."


async def test_a_read_key_cannot_write(database: Database, clock) -> None:
    ana = await add_member(database, "Ana")
    bob = await add_member(database, "Bob")
    async with api_client(database, clock) as api:
        response = await api.client.post(
            "/kudos/api/v1/user_kudos",
            json={"giver": bob, "receivers": [ana], "message": "thanks"},
            headers=api.auth("read"),
        )
        assert response.status == 403
        assert response.content_type == PROBLEM
        assert "needs write" in (await response.json())["detail"]
        ok = await api.client.post(
            "/kudos/api/v1/user_kudos",
            json={"giver": bob, "receivers": [ana], "message": "thanks"},
            headers=api.auth("admin"),
        )
        assert ok.status == 201


async def test_unknown_api_paths_and_methods_are_problems(database: Database, clock) -> None:
    async with api_client(database, clock) as api:
        missing = await api.client.get("/rewards/api/v1/nothing", headers=api.auth("read"))
        assert (missing.status, missing.content_type) == (404, PROBLEM)
        assert (await missing.json())["detail"] == "There is nothing at this address."
        wrong = await api.client.delete("/kudos/api/v1/kudos_tags", headers=api.auth("admin"))
        assert (wrong.status, wrong.content_type) == (405, PROBLEM)
        assert "GET" in wrong.headers["Allow"]
        # the rest of the server is untouched
        assert (await api.client.get("/healthz")).status == 200


async def test_keys_are_stored_hashed_and_use_is_recorded(
    database: Database, clock: FixedClock
) -> None:
    view, key = await create_key(database, "crm", "write", clock)
    assert key.startswith("nrw_") and len(key) > 40
    async with database.read() as session:
        row = await session.get(ApiKey, view.id)
        assert row is not None and row.key_hash == hash_key(key) and key not in row.key_hash
    assert (await authenticate(database, key, clock)) is not None
    clock.advance(timedelta(minutes=5))
    await authenticate(database, key, clock)
    (listed,) = await list_keys(database)
    assert listed.last_used_at == clock.now()


async def test_an_unexpected_failure_is_a_generic_500(
    database: Database, clock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("rewards.services.catalog.list_definitions", broken)
    async with api_client(database, clock) as api:
        response = await api.client.get("/rewards/api/v1/rewards", headers=api.auth("read"))
        assert (response.status, response.content_type) == (500, PROBLEM)
        text = await response.text()
        assert "secret" not in text and "Traceback" not in text
        assert (await response.json())["title"] == "Internal Server Error"
    assert "secret internals" in caplog.text


async def test_every_documented_operation_needs_its_scope(database: Database, clock) -> None:
    """Walks the served OpenAPI description: every operation that declares a scope refuses a
    request without a key (401) and one with the scope just below it (403), before it reads the
    body or looks anything up."""
    lower = {"write": "read", "admin": "write"}
    async with api_client(database, clock) as api:
        document = await (await api.client.get("/rewards/api/v1/openapi.json")).json()
        checked = 0
        for path, operations in document["paths"].items():
            url = re.sub(r"\{[^}]+\}", "1", path)
            for method, operation in operations.items():
                if not operation.get("security"):
                    continue  # the description and the docs page are public
                ((_, scopes),) = operation["security"][0].items()
                (needed,) = scopes
                body = {} if method in ("post", "put") else None
                none = await api.client.request(method.upper(), url, json=body)
                assert (none.status, none.content_type) == (401, PROBLEM), (method, path)
                if needed in lower:
                    below = api.auth(lower[needed])
                    refused = await api.client.request(
                        method.upper(), url, json=body, headers=below
                    )
                    assert (refused.status, refused.content_type) == (403, PROBLEM), (method, path)
                checked += 1
        assert checked >= 34

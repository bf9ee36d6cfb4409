"""`rewards apikey create|list|revoke` on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bots.commands.apikey import apikey
from rewards.clock import FixedClock
from rewards.services.apikeys import authenticate, list_keys, record_write
from rewards.store.db import Database
from tests.conftest import _Backends


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_url(request: pytest.FixtureRequest, tmp_path: Path, _backends: _Backends) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    return asyncio.run(_backends.create_pg_database("apikey_cli"))


def _run(url: str, *args: str) -> Result:
    env = {"DATABASE_URL": url, "REWARDS_ENV_FILE": os.devnull}
    return CliRunner().invoke(apikey, list(args), env=env)


def _works(url: str, key: str) -> bool:
    async def check() -> bool:
        db = Database(url)
        try:
            return await authenticate(db, key) is not None
        finally:
            await db.dispose()

    return asyncio.run(check())


def test_create_prints_the_key_once_list_and_revoke(cli_url: str) -> None:
    created = _run(cli_url, "create", "--name", "crm", "--scope", "write")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("nrw_")
    assert _works(cli_url, key)

    listed = _run(cli_url, "list")
    assert listed.exit_code == 0
    assert "crm  write  active" in listed.output
    assert key not in listed.output

    taken = _run(cli_url, "create", "--name", "crm", "--scope", "read")
    assert taken.exit_code == 1
    assert "already a key named crm" in str(taken.exception)

    revoked = _run(cli_url, "revoke", "crm")
    assert revoked.exit_code == 0 and "Revoked API key #1 crm" in revoked.output
    assert not _works(cli_url, key)
    assert "revoked" in _run(cli_url, "list").output
    # Revoking it again changes nothing and says so (exit 1), by name or by id.
    again = _run(cli_url, "revoke", "1")
    assert again.exit_code == 1
    assert "API key #1 crm was already revoked on " in str(again.exception)
    assert "nothing changed" in str(again.exception)


def test_bad_scope_and_unknown_key(cli_url: str) -> None:
    bad = _run(cli_url, "create", "--name", "x", "--scope", "root")
    assert bad.exit_code == 2
    missing = _run(cli_url, "revoke", "nope")
    assert missing.exit_code == 1
    assert "There is no API key named nope." in str(missing.exception)


def test_list_shows_last_use_and_writes(cli_url: str) -> None:
    """Each key's last use, and from the audit trail its writes of the last 30 days and the
    latest write."""
    key = _run(cli_url, "create", "--name", "crm", "--scope", "write").stdout.strip()
    assert _run(cli_url, "create", "--name", "idle", "--scope", "read").exit_code == 0
    now = datetime.now(UTC).replace(second=0, microsecond=0)

    async def use() -> None:
        db = Database(cli_url)
        try:
            assert await authenticate(db, key, FixedClock(now)) is not None
            crm = next(k for k in await list_keys(db) if k.name == "crm")
            for moment, status in ((now - timedelta(days=40), 200), (now - timedelta(days=2), 403),
                                   (now, 201)):  # fmt: skip
                await record_write(db, crm.id, "POST", "/api/v1/badge_assign", status,
                                   FixedClock(moment))  # fmt: skip
        finally:
            await db.dispose()

    asyncio.run(use())
    listed = _run(cli_url, "list")
    assert listed.exit_code == 0, listed.output
    crm, idle = listed.output.splitlines()
    stamp = f"{now:%Y-%m-%d %H:%M}"
    assert f"last used {stamp}" in crm
    assert crm.endswith(f"2 writes in 30 days, last write {stamp}")
    assert idle.endswith("never used  no writes")

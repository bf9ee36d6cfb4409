"""`rewards shop validate|load|list` and `rewards redemptions list|approve|reject|fulfil`, on
SQLite and PostgreSQL: the operator's side of the shop, with its exit codes and sentences."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bots.commands.redemptions import redemptions
from bots.commands.shop import shop
from rewards.economy.shop.service import ShopService
from rewards.settings import Settings
from rewards.store.db import Database
from tests.conftest import _Backends
from tests.factories import add_member

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "shop.json"


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_url(request: pytest.FixtureRequest, tmp_path: Path, _backends: _Backends) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    return asyncio.run(_backends.create_pg_database("shop_cli"))


def test_shop_file_commands_need_no_database_to_validate(tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(shop, ["validate", str(EXAMPLE)])
    assert good.exit_code == 0 and "5 items, all valid (4 need approval)" in good.output
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps([{"item_id": 7, "name": "Mug", "cost": 5, "stock": -1, "approval": 1}]),
        encoding="utf-8",
    )
    refused = runner.invoke(shop, ["load", str(bad)], env={"DATABASE_URL": "sqlite://"})
    assert refused.exit_code == 1
    assert "7  stock  Input should be greater than or equal to 0, got -1" in refused.output
    assert "7  approval  " in refused.output
    assert "Nothing was loaded." in refused.output


def test_redemptions_from_the_command_line(cli_url: str) -> None:
    env = {
        "DATABASE_URL": cli_url,
        "REWARDS_ENV_FILE": os.devnull,
        "TIMEZONE": "UTC",
        "REWARDS_ADMINS": "boss@example.com",
    }
    runner = CliRunner()
    loaded = runner.invoke(shop, ["load", str(EXAMPLE)], env=env)
    assert loaded.exit_code == 0, loaded.output
    assert "added (5): 1, 2, 3, 4, 5" in loaded.output
    listed = runner.invoke(shop, ["list"], env=env)
    assert "Conference ticket  (2500 points, 5 of 5 left, needs approval, restricted)" in (
        listed.output
    )

    async def seed() -> list[int]:
        db = Database(cli_url)
        try:
            ana = await add_member(db, "Ana")
            await add_member(db, "Boss")
            service = ShopService(db, Settings(timezone="UTC"))
            await service.grant(ana, 4000, reason="seed")
            day_off = await service.redeem(ana, "Extra day off", "the 24th")
            ticket = await service.redeem(ana, "Conference ticket")
            coffee = await service.redeem(ana, "Coffee")
            return [day_off.id, ticket.id, coffee.id]
        finally:
            await db.dispose()

    day_off, ticket, coffee = asyncio.run(seed())
    pending = runner.invoke(redemptions, ["list", "--state", "requested"], env=env)
    assert pending.exit_code == 0
    assert [line.split()[0] for line in pending.output.splitlines()] == [
        f"#{coffee}",
        f"#{ticket}",
        f"#{day_off}",
    ]
    assert (
        "Ana  Extra day off  1000 points" in pending.output and 'note: "the 24th"' in pending.output
    )

    approved = runner.invoke(
        redemptions, ["approve", str(day_off), "--as", "boss@example.com"], env=env
    )
    assert approved.exit_code == 0, approved.output
    assert (
        f"Approved #{day_off}  approved" in approved.output
        and "by boss@example.com" in approved.output
    )
    again = runner.invoke(redemptions, ["approve", str(day_off)], env=env)
    assert again.exit_code == 1
    assert (
        f"Error: Redemption {day_off} was already approved by boss@example.com at " in again.output
    )
    not_admin = runner.invoke(
        redemptions, ["approve", str(ticket), "--as", "ana@example.com"], env=env
    )
    assert not_admin.exit_code == 1 and "ana@example.com is not an admin" in not_admin.output

    rejected = runner.invoke(redemptions, ["reject", str(ticket), "--reason", "Budget"], env=env)
    assert rejected.exit_code == 0, rejected.output
    assert (
        "by the command line" in rejected.output
        and "2500 points refunded to Ana." in rejected.output
    )
    no_reason = runner.invoke(redemptions, ["reject", str(coffee)], env=env)
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output

    early = runner.invoke(redemptions, ["fulfil", str(coffee)], env=env)
    assert early.exit_code == 1
    assert f"Redemption {coffee} waits for approval; approve it first." in early.output
    assert runner.invoke(redemptions, ["approve", str(coffee)], env=env).exit_code == 0
    fulfilled = runner.invoke(redemptions, ["fulfil", str(coffee)], env=env)
    assert fulfilled.exit_code == 0 and "fulfilled" in fulfilled.output
    unknown = runner.invoke(redemptions, ["fulfil", "999"], env=env)
    assert unknown.exit_code == 2 and "There is no redemption 999." in unknown.output
    mine = runner.invoke(redemptions, ["list", "--member", "ana@example.com"], env=env)
    states = [line.split()[1] for line in mine.output.splitlines()]
    assert states == ["fulfilled", "rejected", "approved"]

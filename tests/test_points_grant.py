"""Admin grants and corrections (`rewards points grant`, `core.shop.grant`): a ledger entry of
kind "adjustment", in the member's history, counted by the leaderboards exactly as a rebuild
counts it, never taking back points already spent; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from bots.commands.points import points
from rewards.clock import FixedClock
from rewards.economy.shop.service import ShopService
from rewards.errors import InvalidInput, NotAvailable, UnknownMember
from rewards.leaderboards.rebuild import rebuild
from rewards.services import ledger
from rewards.services.kudos import KudosService
from rewards.services.leaderboards import LeaderboardService, Metric, Period
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import LedgerEntry
from tests.conftest import _Backends
from tests.factories import add_member
from tests.test_leaderboard_counters import counters

SETTINGS = Settings(timezone="Pacific/Auckland", kudos_points=5)


async def test_grants_count_like_other_points_and_rebuild_equals_incremental(database):
    clock = FixedClock(datetime(2026, 12, 31, 11, 30, tzinfo=UTC))  # New Year's Day in Auckland
    shop = ShopService(database, SETTINGS, clock)
    ana = await add_member(database, "Ana")
    li = await add_member(database, "Li")
    await KudosService(database, SETTINGS, clock).give(ana, [li], "thanks for the review")
    await shop.grant(ana, 40, reason="Hackathon winner")
    await shop.grant(li, 7, reason="Survey")
    clock.set(datetime(2027, 1, 3, 9, 0, tzinfo=UTC))
    await shop.grant(ana, -15, reason="Counted twice")

    board = await LeaderboardService(database, SETTINGS, clock).leaderboard(
        Metric.POINTS, Period.ALL
    )
    assert [(row.display_name, row.value) for row in board.rows] == [("Ana", 25), ("Li", 12)]
    incremental = await counters(database)
    assert await rebuild(database, SETTINGS.timezone) > 0
    assert await counters(database) == incremental

    lines = await ledger.history(database, ana)
    assert [(line.kind, line.points, line.description) for line in lines] == [
        ("adjustment", -15, "Counted twice"),
        ("adjustment", 40, "Hackathon winner"),
    ]
    assert await ledger.balance(database, ana) == 25
    assert (await shop.balance(ana)).spendable == 25


async def test_refused_grants_write_nothing(database, clock):
    shop = ShopService(database, SETTINGS, clock)
    ana = await add_member(database, "Ana")
    await shop.grant(ana, 10, reason="seed")
    for amount, reason, error in (
        (0, "nothing", InvalidInput),
        (5, "  ", InvalidInput),
        (5, "bad\x00reason", InvalidInput),
        (2_000_000, "too much", InvalidInput),
        (-11, "more than there is", NotAvailable),
    ):
        with pytest.raises(error):
            await shop.grant(ana, amount, reason=reason)
    with pytest.raises(UnknownMember):
        await shop.grant(999, 5, reason="nobody")
    async with database.read() as session:
        assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == 1


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_url(request: pytest.FixtureRequest, tmp_path: Path, _backends: _Backends) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'points.db'}"
    return asyncio.run(_backends.create_pg_database("points_cli"))


def test_points_grant_command(cli_url: str) -> None:
    env = {"DATABASE_URL": cli_url, "REWARDS_ENV_FILE": os.devnull, "TIMEZONE": "UTC"}
    runner = CliRunner()
    assert runner.invoke(points, ["balance", "nobody@example.com"], env=env).exit_code == 2

    async def seed() -> None:
        db = Database(cli_url)
        try:
            await add_member(db, "Ana")
        finally:
            await db.dispose()

    asyncio.run(seed())
    given = runner.invoke(
        points, ["grant", "ana@example.com", "30", "--reason", "Onboarding"], env=env
    )
    assert given.exit_code == 0, given.output
    assert "Granted 30 points to Ana (ledger entry 1): Onboarding" in given.output
    back = runner.invoke(points, ["grant", "ANA@example.com", "-10", "--reason", "Typo"], env=env)
    assert back.exit_code == 0, back.output
    assert "Took back 10 points from Ana" in back.output
    assert "20 earned, 0 spent, 20 to spend" in back.output.replace("Balance: ", "")
    too_much = runner.invoke(points, ["grant", "ana@example.com", "-21", "--reason", "x"], env=env)
    assert too_much.exit_code == 1
    assert "Ana has 20 points to spend; taking 21 points" in too_much.output
    missing = runner.invoke(points, ["grant", "ana@example.com", "5"], env=env)
    assert missing.exit_code == 2 and "--reason" in missing.output
    shown = runner.invoke(points, ["balance", "ana@example.com"], env=env)
    assert shown.output.strip() == "20 earned, 0 spent, 20 to spend"

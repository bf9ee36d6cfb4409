"""`rewards nominations open|status|close|cancel` on the seed catalogue, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select
from sqlmodel import col

from bots.commands.jobs import jobs
from bots.commands.nominations import nominations
from rewards.catalog.loader import load_file
from rewards.clock import SystemClock
from rewards.core import Core
from rewards.services.catalog import load_catalog
from rewards.services.members import find_by_email
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.migrate import upgrade
from rewards.store.models import Award
from tests.conftest import _Backends
from tests.factories import add_member

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "rewards.json"
SALES = 8001  # the seed's "Employee of the Month - Sales"
ADMIN = "boss@example.com"
T = TypeVar("T")


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_url(request: pytest.FixtureRequest, tmp_path: Path, _backends: _Backends) -> Iterator[str]:
    """A migrated database with the seed catalogue, an admin and three Sales associates."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'nominations.db'}"
    else:
        url = asyncio.run(_backends.create_pg_database("nominations_cli"))
    upgrade(url)

    async def seed(db: Database) -> None:
        await load_catalog(db, load_file(EXAMPLES), clock=SystemClock())
        hired = date(2020, 1, 1)
        await add_member(db, "Boss", job_code="MANAGER", department="Sales", hired=hired)
        for name in ("Ana", "Li", "Mo"):
            await add_member(db, name, job_code="ASSOCIATE", department="Sales", hired=hired)

    _with_core(url, lambda core: seed(core.db))
    yield url


def _with_core(url: str, work: Callable[[Core], Awaitable[T]]) -> T:
    async def run() -> T:
        db = Database(url)
        try:
            return await work(Core(settings=Settings(admins=(ADMIN,)), db=db))
        finally:
            await db.dispose()

    return asyncio.run(run())


def _run(url: str, *args: str) -> Result:
    env = {"DATABASE_URL": url, "REWARDS_ENV_FILE": os.devnull, "REWARDS_ADMINS": ADMIN}
    return CliRunner().invoke(nominations, list(args), env=env)


def test_only_an_admin_or_the_operator_opens(cli_url: str) -> None:
    refused = _run(cli_url, "open", str(SALES), "--as", "ana@example.com")
    assert refused.exit_code == 1
    assert "Only an admin can open a nomination campaign." in refused.output
    unknown = _run(cli_url, "open", str(SALES), "--as", "nobody@example.com")
    assert unknown.exit_code == 2
    assert "I don't know a member with the email nobody@example.com." in unknown.output

    opened = _run(cli_url, "open", str(SALES))
    assert opened.exit_code == 0, opened.output
    assert opened.output.startswith("Opened #1  Employee of the Month - Sales (reward 8001)")
    twice = _run(cli_url, "open", str(SALES), "--as", ADMIN)
    assert twice.exit_code == 1
    assert "already has a campaign open (#1, nominating)" in twice.output

    listed = _run(cli_url, "status")
    assert listed.exit_code == 0
    assert "#1  Employee of the Month - Sales (reward 8001)  nominating until" in listed.output
    one = _run(cli_url, "status", "1")
    assert "counts:       0 candidates, 0 nominations, 0 voters" in one.output
    assert "tallies:      hidden until the campaign closes" in one.output
    missing = _run(cli_url, "status", "9")
    assert missing.exit_code == 2
    assert "There is no nomination campaign 9." in missing.output

    early = _run(cli_url, "close", "1", "--as", ADMIN)
    assert early.exit_code == 1
    assert "still taking nominations" in early.output
    not_admin = _run(cli_url, "cancel", "1", "--as", "li@example.com")
    assert not_admin.exit_code == 1
    assert "Only an admin can cancel a nomination campaign." in not_admin.output
    cancelled = _run(cli_url, "cancel", "1", "--reason", "Wrong month")
    assert cancelled.exit_code == 0
    assert "Cancelled #1" in cancelled.output
    assert "cancelled:    Wrong month" in _run(cli_url, "status", "1").output
    assert _run(cli_url, "status").output == "No nomination campaign is open.\n"


def test_close_counts_the_votes_and_awards_once(cli_url: str) -> None:
    assert _run(cli_url, "open", str(SALES), "--as", ADMIN).exit_code == 0

    async def nominate_and_vote(core: Core) -> None:
        service = core.nominations
        [campaign] = await service.open_campaigns()
        ids = {}
        for name in ("Boss", "Ana", "Li", "Mo"):
            member = await find_by_email(core.db, f"{name.lower()}@example.com")
            assert member is not None
            ids[name] = member.id
        await service.nominate(campaign.id, ids["Boss"], ids["Li"], "Closed the biggest deal")
        await service.nominate(campaign.id, ids["Ana"], ids["Mo"], "Always helps")
        await service.advance(datetime.now(UTC) + timedelta(days=7, minutes=1))
        for voter in ("Boss", "Ana"):
            await service.vote(campaign.id, ids[voter], ids["Li"])
        await service.vote(campaign.id, ids["Li"], ids["Mo"])

    _with_core(cli_url, nominate_and_vote)
    hidden = _run(cli_url, "status", "1")
    assert "voting" in hidden.output and "hidden until the campaign closes" in hidden.output
    assert "counts:       2 candidates, 2 nominations, 3 voters" in hidden.output

    closed = _run(cli_url, "close", "1", "--as", ADMIN)
    assert closed.exit_code == 0, closed.output
    assert "Winners: Li (#3)" in closed.output
    again = _run(cli_url, "close", "1")
    assert again.exit_code == 0 and "Winners: Li (#3)" in again.output
    shown = _run(cli_url, "status", "1").output
    assert "tallies:      Li (#3) 2, Mo (#4) 1" in shown
    assert "winners:      Li (#3)" in shown

    async def awards(core: Core) -> int:
        async with core.db.read() as session:
            return int(await session.scalar(select(func.count(col(Award.id)))) or 0)

    assert _with_core(cli_url, awards) == 1


def test_the_reward_job_opens_a_campaign_and_the_phase_job_is_listed(cli_url: str) -> None:
    env = {"DATABASE_URL": cli_url, "REWARDS_ENV_FILE": os.devnull}
    listed = CliRunner().invoke(jobs, ["list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "rewards.nominations  (Nomination campaigns: phases and closing, built-in)" in (
        listed.output
    )
    assert "eotm_sales_start  (Employee of the Month - Sales, reward #8001)" in listed.output

    ran = CliRunner().invoke(jobs, ["run", "eotm_sales_start"], env=env)
    assert ran.exit_code == 0, ran.output
    assert "Employee of the Month - Sales: campaign #1 is nominating until" in ran.output
    status = _run(cli_url, "status")
    assert status.output.startswith("#1  Employee of the Month - Sales (reward 8001)  nominating")
    tick = CliRunner().invoke(jobs, ["run", "rewards.nominations"], env=env)
    assert tick.exit_code == 0, tick.output
    assert "No nomination campaign was due." in tick.output

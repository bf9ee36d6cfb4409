"""`rewards jobs list` and `rewards jobs run`, on the seed catalogue, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from bots.commands.jobs import jobs
from rewards.catalog.loader import load_file
from rewards.clock import SystemClock
from rewards.services.catalog import load_catalog
from rewards.store.db import Database
from rewards.store.migrate import upgrade
from rewards.store.models import Award, JobRun, LotteryRun
from tests.conftest import _Backends
from tests.factories import add_member

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "rewards.json"
MEGA = 1013  # the seed's Monthly Mega Lottery: 5 winners, cron day "last" 16:00


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_url(request: pytest.FixtureRequest, tmp_path: Path, _backends: _Backends) -> Iterator[str]:
    """A migrated database with the seed catalogue and eight members; its URL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}"
    else:
        url = asyncio.run(_backends.create_pg_database("jobs_cli"))
    upgrade(url)

    async def seed() -> None:
        db = Database(url)
        try:
            await load_catalog(db, load_file(EXAMPLES), clock=SystemClock())
            for i in range(8):
                await add_member(db, f"Member {i}")
        finally:
            await db.dispose()

    asyncio.run(seed())
    yield url


def _run(url: str, *args: str) -> Result:
    env = {"DATABASE_URL": url, "REWARDS_ENV_FILE": os.devnull}
    return CliRunner().invoke(jobs, list(args), env=env)


def _count(url: str, query: object) -> int:
    async def count() -> int:
        db = Database(url)
        try:
            async with db.read() as session:
                return int(await session.scalar(query) or 0)  # type: ignore[call-overload]
        finally:
            await db.dispose()

    return asyncio.run(count())


def test_list_shows_each_job_with_its_next_run(cli_url: str) -> None:
    result = _run(cli_url, "list")

    assert result.exit_code == 0, result.output
    block = result.output.split("monthly_mega_lottery  ", 1)[1].split("\n\n")[0]
    assert "(Monthly Mega Lottery, reward #1013)" in block
    assert "trigger:   cron day=last hour=16 minute=0" in block
    assert "time zone: UTC" in block
    assert "last run:  never" in block
    next_run = block.split("next run:  ", 1)[1].split("\n", 1)[0]
    assert next_run.endswith("16:00:00 UTC")
    # The zone of a job with its own zone, with UTC next to it.
    assert "daily_lottery_4pm  (Daily Lottery at 4 PM, reward #9011)" in result.output
    assert "16:00:00 EST (" in result.output or "16:00:00 EDT (" in result.output
    assert "rewards.sweep  (Sweep: rewards without a job of their own, built-in)" in result.output
    assert "eotm_sales_start  (Employee of the Month - Sales, reward #8001)" in result.output
    assert "christmas_special  not scheduled: its date has passed" in result.output


def test_run_draws_the_lottery_now_and_records_the_run(cli_url: str) -> None:
    result = _run(cli_url, "run", "monthly_mega_lottery")

    assert result.exit_code == 0, result.output
    assert result.output.startswith("monthly_mega_lottery: done\n")
    assert "Monthly Mega Lottery (draw #1): " in result.output
    assert result.output.count("Member ") == 5 and "won it." in result.output
    assert _count(cli_url, select(func.count()).select_from(LotteryRun)) == 1
    assert _count(cli_url, select(func.count()).where(Award.reward_id == MEGA)) == 5  # type: ignore[arg-type]
    draw_key = _count(
        cli_url,
        select(func.count()).where(LotteryRun.draw_key.startswith("1013:manual:")),  # type: ignore[attr-defined]
    )
    assert draw_key == 1

    listed = _run(cli_url, "list")
    assert "last run:  done" in listed.output.split("monthly_mega_lottery  ", 1)[1]
    assert _count(cli_url, select(func.count()).select_from(JobRun)) == 1


def test_run_the_sweep_by_its_id(cli_url: str) -> None:
    result = _run(cli_url, "run", "rewards.sweep")

    assert result.exit_code == 0, result.output
    assert result.output.startswith("rewards.sweep: done\nSwept ")


def test_an_unknown_job_is_a_sentence_with_suggestions(cli_url: str) -> None:
    typo = _run(cli_url, "run", "monthly_mega_lotery")
    assert typo.exit_code == 1
    assert 'There is no job "monthly_mega_lotery". Did you mean monthly_mega_lottery' in (
        typo.output
    )
    assert "Traceback" not in typo.output

    sweep = _run(cli_url, "run", "rewards.swep")
    assert sweep.exit_code == 1
    assert "Did you mean rewards.sweep" in sweep.output

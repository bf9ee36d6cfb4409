"""Rough edges a newcomer hit when trying the product, each fixed and held here: the help lists
every leaderboard word, an unknown leaderboard word is a sentence (a real department still
works), an admin marking a workflow step sees whose progress it is and may quote names, an
announcement with nowhere to go is reported, the embedded example keeps its own database,
Emulator users are not shown by their placeholder address, and `/nominations status` says where
each campaign stands without revealing who is ahead. (Revoking a revoked API key is in
tests/test_apikey_cli.py.)"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from aiohttp import web

from cards.render.text import to_text
from dialogs.commands import COMMANDS
from dialogs.engine import DialogEngine
from rewards.clock import FixedClock
from rewards.services.leaderboards import Metric, Period
from rewards.services.members import placeholder_email
from rewards.store.db import Database
from rewards.store.models import Member
from tests.factories import T0, add_member, add_reward
from tests.support.conversation import ScriptedConversation, make_core
from tests.test_dialogs_nominations import _open, _setup, _to_voting, chat
from tests.test_jobs_cli import _run as run_jobs
from tests.test_jobs_cli import cli_url  # noqa: F401  (the fixture: a seeded database)
from tests.test_workflows import seed

ROOT = Path(__file__).resolve().parent.parent


def test_help_names_every_leaderboard_word() -> None:
    [board] = [c for c in COMMANDS if c.name == "leaderboard"]
    for word in [*(m.value for m in Metric), *(p.value for p in Period)]:
        assert word in board.usage, word
    assert "kudos_given" in board.usage


async def test_an_unknown_leaderboard_word_is_a_sentence(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana Lopez", department="Engineering")
    await add_member(database, "Sam Seller", department="Sales")
    me = ScriptedConversation(DialogEngine(make_core(database, clock)), ana, whole_forms=True)

    await me.say("/leaderboard banana")
    assert me.screens == ["notice"]
    assert "I don't know \u201cbanana\u201d; try week, month, quarter, year, all" in me.text
    assert "kudos_given" in me.text and "department" in me.text
    await me.say("/leaderboard week banana split")
    assert "I don't know \u201cbanana split\u201d" in me.text

    # Real departments, in any case, still make boards (empty ones, nobody has points yet).
    await me.say("/leaderboard engineering")
    assert me.screens == ["leaderboard"] and "Department: engineering" in me.text
    await me.say("/leaderboard month Sales")
    assert me.screens == ["leaderboard"] and "Sales" in me.text


async def test_an_admin_marking_a_step_sees_whose_progress_and_may_quote_names(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana Lopez")
    boss = await add_member(database, "Bo Boss")
    await add_reward(database, **seed("Onboarding Champion"))
    engine = DialogEngine(make_core(database, clock, admins=["bo.boss@example.com"]))
    admin = ScriptedConversation(engine, boss, whole_forms=True)
    me = ScriptedConversation(engine, ana, whole_forms=True)
    await me.say('/workflow join "Onboarding Champion"')
    assert "You joined Onboarding Champion." in me.text

    await admin.say('/workflow mark @ana.lopez "Onboarding Champion" "First Login"')
    assert "Marked. Ana Lopez is at 1/3 in Onboarding Champion." in admin.text
    assert admin.card.title == "🧭 Workflows of Ana Lopez"
    assert "Your workflows" not in admin.text

    # Typographic quotes (phones, Teams) around the person, the workflow and the step.
    await admin.say("/workflow mark @\u201cAna Lopez\u201d \u201cOnboarding Champion\u201d 2")
    assert "Marked. Ana Lopez is at 2/3 in Onboarding Champion." in admin.text

    # Her own view still says "Your workflows".
    await me.say("/workflow")
    assert me.card.title == "🧭 Your workflows" and "2/3" in me.text


def test_an_announcement_with_nowhere_to_go_is_reported(cli_url: str) -> None:  # noqa: F811
    """No channel is configured and the winners have no chat account: the lottery still awards,
    and the job's output and `rewards deliveries list` say the announcement went nowhere."""
    from click.testing import CliRunner

    from bots.commands.deliveries import deliveries

    result = run_jobs(cli_url, "run", "monthly_mega_lottery")
    assert result.exit_code == 0, result.output
    assert "won it." in result.output
    assert "Announcement #1 (Monthly Mega Lottery) had nowhere to go" in result.output
    assert "ANNOUNCE_TEAMS_CHANNEL" in result.output

    env = {"DATABASE_URL": cli_url, "REWARDS_ENV_FILE": os.devnull}
    listed = CliRunner().invoke(deliveries, ["list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "announcement #1  not delivered" in listed.output
    assert "\u201cMonthly Mega Lottery\u201d" in listed.output
    assert "No deliveries yet." not in listed.output
    failed = CliRunner().invoke(deliveries, ["list", "--failed"], env=env)
    assert failed.exit_code == 1 and "Nowhere to go" in failed.output


def test_the_embedded_example_keeps_its_own_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "DBHOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REWARDS_ENV_FILE", os.devnull)
    monkeypatch.setenv("REWARD_SCHEDULER", "false")
    spec = importlib.util.spec_from_file_location(
        "embedded_example_db", ROOT / "examples" / "embedded" / "app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    app: web.Application = module.create_app()
    url = app[module.ENGINE].settings.database_url
    assert url == "sqlite+aiosqlite:///var/embedded-example.db"
    assert "var/rewards.db" not in url

    # A database the host chose is used as it is.
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'host.db'}")
    chosen = module.create_app()[module.ENGINE].settings.database_url
    assert chosen == f"sqlite+aiosqlite:///{tmp_path / 'host.db'}"


async def test_emulator_users_are_named_not_shown_by_placeholder(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana Lopez")
    async with database.write() as session:
        for user in ("29:emulator-a", "29:emulator-b"):
            session.add(
                Member(
                    email=placeholder_email("teams", user),
                    display_name="User",
                    created_at=T0,
                    updated_at=T0,
                )
            )
        session.add(
            Member(email="user@example.com", display_name="User", created_at=T0, updated_at=T0)
        )
    me = ScriptedConversation(DialogEngine(make_core(database, clock)), ana, whole_forms=True)
    await me.say("/kudos @User thanks for testing")
    assert "@User could be" in me.text
    assert ".invalid" not in me.text and "teams-" not in me.text
    assert me.text.count("User (on Teams)") == 2 and "User (user@example.com)" in me.text


async def test_nominations_status_shows_totals_and_your_part_never_who_is_ahead(
    database: Database, clock: FixedClock
) -> None:
    engine, people = await _setup(database, clock)
    campaign = await _open(engine, people)
    ana = chat(engine, people["ana"])
    await ana.say("/nominate @li.wei rescued the release")
    await chat(engine, people["bo"]).say("/nominate @cy.young mentored two new hires")

    await ana.say("/nominations status")
    assert ana.screens == ["nomination_status"]
    assert f"#{campaign}" in ana.text and "Star of the Month" in ana.text
    assert "2 nominations for 2 people so far" in ana.text

    await _to_voting(engine, clock)
    bo = chat(engine, people["bo"])
    await bo.say("/vote 1")
    await bo.say("/nominations status")
    assert "2 candidates · 1 person has voted · you have voted" in bo.text
    await ana.say("/nominations")
    status = to_text(ana.card)
    assert "2 candidates · 1 person has voted · you have not voted yet: /vote" in status
    # Blind until the close: no candidate is named, nobody's count is shown.
    assert "Li Wei" not in status and "Cy Young" not in status and "1 vote" not in status

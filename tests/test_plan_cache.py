"""Which turns may run on generic plans (PostgreSQL).

asyncpg prepares every statement. Under PostgreSQL's default plan cache mode a statement run five
times switches to a generic plan when that looks no dearer than the custom ones: for a kudos,
whose few statements look up and write the members it names, that saves planning them on every
turn (about a third of PostgreSQL's CPU per kudos). For a statement over a population or a date
window the generic plan can be far slower: the integrity report's graph query ran for minutes on
one instead of a third of a second. So the database keeps two pools: the main one plans every
statement for its values (`force_custom_plan`), and only the turns of `KEYED_COMMANDS` take a
connection from the other (`Database.unit(planned_once=True)`).
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from dialogs.engine import is_keyed
from dialogs.events import Action, Command, Text
from rewards.store.db import Database
from tests.test_slack import BOB, BOSS, LI, slack_app
from tests.test_turn_cost import keyed_pool, recording


async def _mode(database: Database, *, planned_once: bool | None) -> str:
    if planned_once is None:  # outside a unit: a session of the main pool
        async with database.read() as session:
            return str(await session.scalar(text("SHOW plan_cache_mode")))
    async with database.unit(planned_once=planned_once), database.read() as session:
        return str(await session.scalar(text("SHOW plan_cache_mode")))


async def test_only_a_keyed_unit_runs_where_plans_are_kept(database: Database) -> None:
    if database.is_sqlite:
        pytest.skip("PostgreSQL's plan cache")
    assert await _mode(database, planned_once=None) == "force_custom_plan"
    assert await _mode(database, planned_once=False) == "force_custom_plan"
    assert await _mode(database, planned_once=True) == "auto"
    async with database.write() as session:  # a write outside a unit: the main pool too
        assert await session.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"


def test_a_kudos_is_keyed_however_it_is_typed() -> None:
    assert is_keyed(Command("kudos", "@li thanks"))  # Slack's slash command, Teams' "kudos ..."
    assert is_keyed(Command("/Kudos@RewardsBot", "@li thanks"))
    assert is_keyed(Text("/kudos @li thanks"))  # typed in a chat
    assert not is_keyed(Text("kudos for the demo"))  # an answer to a dialog's question
    for other in ("leaderboard", "integrity", "export", "me", "vote"):
        assert not is_keyed(Command(other, ""))
        assert not is_keyed(Text(f"/{other}"))
    assert not is_keyed(Action("token", {}))


async def test_slack_runs_a_kudos_on_the_keyed_pool_and_reports_on_the_main_one(
    database: Database,
) -> None:
    async with slack_app(database, admins=("bo.boss@example.com",)) as slack:
        await slack.command("/kudos", f"<@{LI}> <@{BOB}> first one #teamwork")  # meets everyone
        # The event hooks run after each reply, on the main pool: held back while the turns are
        # counted (a drain landing in a count was one checkout too many, now and then).
        core = slack.bot.core
        await core.hooks.drain()
        await core.hooks.stop()
        woken = list(database.hook_listeners)
        database.hook_listeners.clear()
        with recording(database) as kudos:
            await slack.command("/kudos", f"<@{LI}> another #teamwork")
        with recording(database) as board:
            await slack.command("/leaderboard", "week")
        with recording(database) as report:
            await slack.command("/integrity", "30", user=BOSS)
        database.hook_listeners.extend(woken)
    assert kudos.pools == [keyed_pool(database)], kudos.statements
    assert board.pools and set(board.pools) == {0}, board.statements
    assert report.pools and set(report.pools) == {0}, report.statements
    assert any("kudos_receiver" in s for s in report.statements)  # the report did run

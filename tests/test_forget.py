"""`/forget me` and its admin equivalents (CLI, API), on SQLite and PostgreSQL.

The acceptance test: a member with a full history (kudos both ways, badges both ways, a
nomination each way, a redemption with a note, an announcement, an unfinished dialog of someone
else naming them, recorded API and outbox payloads) asks to be forgotten; afterwards the ledger
totals and everyone else's leaderboard lines are unchanged, and neither their name nor their
email nor their platform ids is in any text column of any table.
"""

from __future__ import annotations

import asyncio
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import JSON, String, Text, cast, func, insert, select
from sqlmodel import SQLModel

from bots.commands.members import members as members_cli
from dialogs.engine import DialogEngine
from rewards.admin.audit import Actor
from rewards.clock import FixedClock
from rewards.economy.shop.file import parse_shop
from rewards.errors import UnknownMember
from rewards.privacy.erasure import PLACEHOLDER_NAME, forget_by_email, forget_member
from rewards.services import ledger, members
from rewards.services.announcements import AnnouncedItem, announce
from rewards.services.leaderboards import Period
from rewards.store.db import Database
from rewards.store.models import (
    ApiAudit,
    ApiIdempotency,
    ApiKey,
    ConversationState,
    EventHook,
    LedgerEntry,
    Member,
    OutboxEvent,
    PlatformAccount,
)
from tests.conftest import _Backends
from tests.factories import add_member, add_reward
from tests.support.api import api_client
from tests.support.conversation import ScriptedConversation, make_core

SECRETS = ("ana lopez", "ana.lopez@example.com", "u0ana", "ana_l")
EOTM = 900


async def _texts_containing(database: Database, needles: tuple[str, ...]) -> list[str]:
    """Every (table.column) whose text, or JSON as text, contains any needle (any case)."""
    found = []
    async with database.read() as session:
        for table in SQLModel.metadata.sorted_tables:
            for column in table.columns:
                kind = column.type
                impl = getattr(kind, "impl", kind)
                if not isinstance(kind, String | Text | JSON) and not isinstance(
                    impl, String | Text | JSON
                ):
                    continue
                text = func.lower(cast(column, String))
                for needle in needles:
                    hits = await session.scalar(
                        select(func.count()).select_from(table).where(text.contains(needle))
                    )
                    if hits:
                        found.append(f"{table.name}.{column.name} ~ {needle}")
    return found


async def _history(database: Database, clock: FixedClock) -> tuple[Any, dict[str, int]]:
    settings = dict(timezone="UTC", admins=("bo.boss@example.com",))
    core = make_core(database, clock, **settings)
    people = {
        "ana": await add_member(database, "Ana Lopez", birthday=(3, 4), hired=date(2020, 1, 6)),
        "li": await add_member(database, "Li Wei"),
        "bo": await add_member(database, "Bo Boss", job_code="MANAGER"),
    }
    async with database.write() as session:
        session.add(PlatformAccount(member_id=people["ana"], platform="slack", user_id="U0ANA"))
        session.add(
            PlatformAccount(
                member_id=people["ana"], platform="telegram", user_id="4242", username="ana_l"
            )
        )
        li = await session.get(Member, people["li"])
        assert li is not None
        li.manager_id = people["ana"]
    engine = DialogEngine(core)
    ana = ScriptedConversation(engine, people["ana"], whole_forms=True)
    li_chat = ScriptedConversation(engine, people["li"], whole_forms=True)
    await ana.say("/kudos @li.wei thanks for the migration plan #teamwork")
    await li_chat.say("/kudos @ana.lopez Ana Lopez saved the release #teamwork")
    await add_reward(database, reward_id=9001, reward="Team Player", points=15, multiple=True)
    await core.awards.award(9001, people["ana"], by=people["bo"], message="Well done Ana Lopez")
    await core.awards.award(9001, people["li"], by=people["ana"], message="From Ana, with thanks")
    await add_reward(
        database,
        reward_id=EOTM,
        reward="Employee of the Month",
        reward_type="Nomination Badge",
        points=100,
        multiple=True,
        nomination_config={"nomination_duration_days": 7, "voting_duration_days": 5},
    )
    campaign = await core.nominations.open(EOTM, by=None, key="job:1")
    await core.nominations.nominate(campaign.id, people["ana"], people["li"], "Li mentors us all")
    await core.nominations.nominate(
        campaign.id, people["li"], people["ana"], "Ana Lopez (ana.lopez@example.com) led it"
    )
    await core.shop.load(parse_shop([{"item_id": 1, "name": "Coffee", "cost": 5}]))
    await core.shop.redeem(people["ana"], "Coffee", "deliver to Ana Lopez, desk 4")
    await announce(
        database,
        core.settings,
        key="birthday:ana",
        kind="birthday",
        title="Happy birthday",
        items=[AnnouncedItem(people["ana"], "Ana Lopez", "Happy birthday, Ana Lopez!")],
        now=clock.now(),
    )
    # An admin paused Ana's giving: the audit log and the lock name her.
    boss = Actor.member("chat", people["bo"], "bo.boss@example.com")
    await core.admin.lock(people["ana"], "Ana Lopez asked for a pause", boss)
    await core.admin.unlock(people["ana"], boss)
    await core.admin.lock(people["ana"], "Ana Lopez, again", boss)
    # Li starts a badge for Ana and leaves it at the confirmation: the state names her.
    await li_chat.say("/badge")
    await li_chat.fill({"badge": "9001", "recipient": "@ana.lopez", "message": ""})
    assert li_chat.screens == ["badge_confirm"], li_chat.text
    async with database.write() as session:
        key = ApiKey(name="hr", key_hash="0" * 64, scope="admin")
        session.add(key)
        await session.flush()
        assert key.id is not None
        await session.execute(
            insert(ApiIdempotency).values(
                api_key_id=key.id,
                key="k1",
                route="POST /rewards/api/v1/kudos",
                status=201,
                body={"receivers": [{"name": "Ana Lopez", "email": "ana.lopez@example.com"}]},
            )
        )
        await session.execute(
            insert(ApiAudit).values(
                api_key_id=key.id, method="PUT", path="/rewards/api/v1/people/ana.lopez@example.com"
            )
        )
        await session.execute(
            insert(OutboxEvent).values(
                event_id="e1", type="kudos.given", payload={"receiver": "ana.lopez@example.com"}
            )
        )
        await session.execute(
            insert(EventHook).values(
                name="kudos", member_id=people["ana"], payload={"giver_name": "Ana Lopez"}
            )
        )
    return core, people


async def _board(core: Any) -> dict[str, int]:
    board = await core.leaderboards.leaderboard("points", Period.ALL, limit=50)
    return {row.display_name: row.value for row in board.rows}


async def _ledger_total(database: Database) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.sum(LedgerEntry.points))) or 0)


async def test_forget_me_keeps_every_total_and_leaves_no_trace(
    database: Database, clock: FixedClock
) -> None:
    core, people = await _history(database, clock)
    assert await _texts_containing(database, SECRETS)  # the grep sees what it looks for
    board_before = await _board(core)
    total_before = await _ledger_total(database)
    li_before = await ledger.summary(database, people["li"])
    ana_points = (await ledger.summary(database, people["ana"])).balance
    assert board_before["Ana Lopez"] == ana_points > 0

    engine = DialogEngine(core)
    ana = ScriptedConversation(engine, people["ana"], whole_forms=True)
    await ana.say("/forget")
    assert "/forget me" in ana.text  # the command names what it does before anything happens
    await ana.say("/forget me")
    assert ana.screens == ["forget_confirm"] and "cannot be undone" in ana.text
    confirm = ana.button("Forget me")
    await ana.click(confirm)
    assert ana.screens == ["forgotten"], ana.text
    await ana.click(confirm)  # a double click: nothing more happens
    assert "out of date" in ana.text

    assert await _texts_containing(database, SECRETS) == []
    assert await _ledger_total(database) == total_before
    board_after = await _board(core)
    assert "Ana Lopez" not in board_after and PLACEHOLDER_NAME not in board_after
    assert board_after == {k: v for k, v in board_before.items() if k != "Ana Lopez"}
    assert await ledger.summary(database, people["ana"]) is not None
    assert (await ledger.summary(database, people["ana"])).balance == ana_points
    assert (await ledger.summary(database, people["li"])).balance == li_before.balance
    li = ScriptedConversation(engine, people["li"], whole_forms=True)
    await li.say("/leaderboard all")
    assert "Li Wei" in li.text and "Ana" not in li.text
    await li.say("/me")
    assert "Kudos from Former member" in li.text  # her kudos still counts, anonymously

    async with database.read() as session:
        placeholder = await session.get(Member, people["ana"])
        assert placeholder is not None
        assert (placeholder.display_name, placeholder.active) == (PLACEHOLDER_NAME, False)
        assert placeholder.birthday_month is None and placeholder.hire_date is None
        assert placeholder.forgotten_at is not None
        li_row = await session.get(Member, people["li"])
        assert li_row is not None and li_row.manager_id is None
        states = (await session.execute(select(ConversationState.dialog))).all()
        assert states == []  # Li's unfinished badge for her ended with her
    # Her accounts are free: the same Slack user starts afresh as a new member.
    newcomer = await add_member(database, "New Person")
    await members.link_account(database, newcomer, "slack", "U0ANA")
    # Forgetting again changes nothing.
    again = await forget_member(database, people["ana"], now=clock.now())
    assert again.already


async def test_admin_forget_through_the_api(database: Database, clock: FixedClock) -> None:
    ana = await add_member(database, "Ana Lopez")
    li = await add_member(database, "Li Wei")
    core = make_core(database, clock, timezone="UTC")
    await core.kudos.give(li, [ana], "thanks Ana Lopez")
    with pytest.raises(UnknownMember, match=r"No member has the email nobody@example\.com"):
        await forget_by_email(database, "nobody@example.com", now=clock.now())
    route = f"/rewards/api/v1/members/{ana}/forget"
    async with api_client(database, clock) as api:
        refused = await api.client.post(route, headers=api.auth("write"))
        assert refused.status == 403
        assert await _texts_containing(database, ("ana lopez",))
        headers = api.auth("admin", **{"Idempotency-Key": "forget-ana"})
        done = await api.client.post(route, headers=headers)
        assert done.status == 200, await done.text()
        body = await done.json()
        assert body["member_id"] == ana and body["already"] is False
        assert (await api.client.post(route, headers=headers)).status == 200  # a retry
        again = await api.client.post(route, headers=api.auth("admin"))
        assert (await again.json())["already"] is True
        missing = await api.client.post(
            "/rewards/api/v1/members/999999/forget", headers=api.auth("admin")
        )
        assert missing.status == 404
    assert await _texts_containing(database, ("ana lopez", "ana.lopez@example.com")) == []
    assert await _ledger_total(database) == 5  # the kudos points stayed


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_url(request: pytest.FixtureRequest, tmp_path: Path, _backends: _Backends) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'forget.db'}"
    return asyncio.run(_backends.create_pg_database("forget_cli"))


def test_admin_forget_from_the_command_line(cli_url: str) -> None:
    env = {"DATABASE_URL": cli_url, "REWARDS_ENV_FILE": os.devnull, "TIMEZONE": "UTC"}
    runner = CliRunner()
    assert runner.invoke(members_cli, ["list"], env=env).exit_code == 0  # migrates

    async def seed() -> None:
        db = Database(cli_url)
        try:
            await add_member(db, "Ana Lopez")
        finally:
            await db.dispose()

    async def traces() -> list[str]:
        db = Database(cli_url)
        try:
            return await _texts_containing(db, ("ana lopez", "ana.lopez@example.com"))
        finally:
            await db.dispose()

    asyncio.run(seed())
    shown = runner.invoke(members_cli, ["show", "ana.lopez@example.com"], env=env)
    assert "leaderboards:    shown (default)" in shown.output
    args = ["forget", "ana.lopez@example.com"]
    refused = runner.invoke(members_cli, args, input="n\n", env=env)
    assert refused.exit_code == 1 and "Nothing was changed" in refused.output
    assert asyncio.run(traces())
    done = runner.invoke(members_cli, ["forget", "Ana.Lopez@example.com", "--yes"], env=env)
    assert done.exit_code == 0, done.output
    assert "Forgot member" in done.output
    assert asyncio.run(traces()) == []
    placeholder = runner.invoke(members_cli, ["show", "1"], env=env).output
    assert "Former member" in placeholder and "leaderboards:    hidden\n" in placeholder
    unknown = runner.invoke(members_cli, [*args, "--yes"], env=env)
    assert unknown.exit_code == 1 and "No member has the email" in unknown.output

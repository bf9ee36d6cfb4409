"""The admins' chat commands through each platform's fake server, on SQLite and PostgreSQL:
/revoke (awards and kudos), /lock and /unlock, /nominations voting|close|cancel. An admin's
command acts and is recorded; anyone else's is refused with a sentence and writes nothing; a
command sent twice at once acts once."""

from __future__ import annotations

import asyncio
import copy
import html
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event, func, select
from sqlmodel import col

from bots.server import CORE, create_app
from bots.telegram import setup as telegram_setup
from rewards.admin.locks import GivingLocked
from rewards.core import Core
from rewards.services.members import find_by_account, find_by_email, link_account
from rewards.store.db import Database
from rewards.store.models import AdminAudit, Announcement, Kudos, LedgerEntry, Member
from tests.factories import add_member, add_reward
from tests.support.teams_connector import FakeConnector
from tests.support.telegram_api import FakeBotAPI
from tests.test_slack import ANA, BOSS, LI, Slack, slack_app
from tests.test_teams import TENANT, make_app, payload, profiles, send
from tests.test_telegram import Harness, people, private_text, telegram_settings

EOTM = 900


async def _count(database: Database, model: Any, *where: Any) -> int:
    async with database.read() as session:
        query = select(func.count()).select_from(model)
        if where:
            query = query.where(*where)
        return int(await session.scalar(query) or 0)


async def _writes(database: Database) -> tuple[int, ...]:
    """Rows of every table an admin action writes (the audit, notices, the ledger, kudos)."""
    return (
        await _count(database, AdminAudit),
        await _count(database, Announcement),
        await _count(database, LedgerEntry),
        await _count(database, Kudos),
    )


async def _reversals(database: Database) -> int:
    return await _count(database, LedgerEntry, col(LedgerEntry.kind) == "reversal")


async def _actions(database: Database) -> list[str]:
    async with database.read() as session:
        rows = await session.scalars(select(col(AdminAudit.action)).order_by(col(AdminAudit.id)))
        return list(rows)


async def _campaign(core: Core, nominator: int, nominee: int) -> int:
    await add_reward(
        core.db,
        reward_id=EOTM,
        reward="Employee of the Month",
        reward_type="Nomination Badge",
        points=100,
        multiple=True,
    )
    campaign = await core.nominations.open(EOTM, by=None)
    await core.nominations.nominate(campaign.id, nominator, nominee, "saved the launch")
    return campaign.id


# ---- Slack ------------------------------------------------------------------------------------


def _answer(slack: Slack) -> str:
    """The text of the last answer to a command (ephemeral unless said otherwise)."""
    return str(slack.api.of("response_url")[-1].get("text", ""))


async def test_slack_admin_commands(database: Database) -> None:
    async with slack_app(database, admins=("bo.boss@example.com",)) as slack:
        core = slack.bot.core
        await slack.command("/kudos", f"<@{LI}> great demo")
        # Each one's first turn of the day (the example catalogue's automated badges) first.
        await slack.command("/help", user=BOSS)
        await slack.command("/help", user=LI)
        await core.hooks.drain()  # the kudos' event hooks (auto-enrolment) ran
        [kudos_id] = [k.id for k in await _kudos(database)]
        before = await _writes(database)

        # Li is no admin: each command is refused, nothing is written.
        for command, text in (
            ("/revoke", f"kudos {kudos_id} spam"),
            ("/lock", f"<@{ANA}> spam"),
            ("/unlock", f"<@{ANA}>"),
        ):
            await slack.command(command, text, user=LI)
            assert f"Only an admin can use {command}." in _answer(slack)
        assert await _writes(database) == before

        li = await find_by_account(database, "slack", LI, "T0001")
        assert li is not None
        li_points = await _points(database, li.id)
        await slack.command("/revoke", f"kudos {kudos_id} gaming the board", user=BOSS)
        said = _answer(slack)
        assert f"Revoked kudos {kudos_id} from Ana Lopez to Li Wei." in said
        assert "Reason: gaming the board" in said
        assert slack.api.of("response_url")[-1]["response_type"] == "ephemeral"
        assert await _points(database, li.id) == li_points - 5  # the kudos' points went back
        await slack.command("/revoke", f"kudos {kudos_id}", user=BOSS)
        assert f"Kudos {kudos_id} were already revoked on" in _answer(slack)
        await slack.command("/revoke", "kudos", user=BOSS)
        assert "Which kudos? Use /revoke AWARD_ID [reason]" in _answer(slack)
        await slack.command("/revoke", "banana", user=BOSS)
        assert "“banana” is not an id" in _answer(slack)

        # An award revoked twice at once: one reversal, one "already revoked".
        await add_reward(database, reward_id=7, reward="Star", points=30)
        ana = await find_by_email(database, "ana.lopez@example.com")
        assert ana is not None
        award = await core.awards.award(7, li.id, by=ana.id, message="thanks")
        await asyncio.gather(
            slack.command("/revoke", f"{award.id} duplicate", user=BOSS),
            slack.command("/revoke", f"{award.id} duplicate", user=BOSS),
        )
        answers = [str(a.get("text", "")) for a in slack.api.of("response_url")[-2:]]
        assert sum("Revoked award" in a for a in answers) == 1, answers
        assert sum("already revoked" in a for a in answers) == 1, answers
        assert await _reversals(database) == 2  # the kudos' and the award's

        # /lock: Ana can receive but not give; /lock alone lists her; /unlock lifts it.
        await slack.command("/lock", f"<@{ANA}> kudos ring", user=BOSS)
        assert "Ana Lopez's giving is locked" in _answer(slack)
        kudos = await _count(database, Kudos)
        await slack.command("/kudos", f"<@{LI}> thanks again")
        refused = _answer(slack)
        assert "An admin has paused your giving" in refused and "still receive" in refused
        assert await _count(database, Kudos) == kudos
        await slack.command("/kudos", f"<@{ANA}> thank you", user=LI)
        assert await _count(database, Kudos) == kudos + 1
        await slack.command("/lock", f"<@{ANA}> again", user=BOSS)
        assert "Ana Lopez's giving is already locked since" in _answer(slack)
        await slack.command("/lock", "", user=BOSS)
        assert "Ana Lopez" in str(slack.api.of("response_url")[-1])
        await slack.command("/unlock", f"<@{ANA}>", user=BOSS)
        assert "Ana Lopez can give again" in _answer(slack)
        await slack.command("/kudos", f"<@{LI}> back in business")
        assert await _count(database, Kudos) == kudos + 2

        # /nominations voting and close: admins only, once each.
        campaign = await _campaign(core, ana.id, li.id)
        written = await _writes(database)
        await slack.command("/nominations", f"voting {campaign}", user=LI)
        assert "Only an admin can start voting in a nomination campaign." in _answer(slack)
        assert await _writes(database) == written
        await slack.command("/nominations", f"voting {campaign}", user=BOSS)
        assert "Nominations for Employee of the Month are closed and voting is open" in _answer(
            slack
        )
        await slack.command("/nominations", f"voting {campaign}", user=BOSS)
        assert "Voting for Employee of the Month has already started." in _answer(slack)
        await core.nominations.vote(campaign, ana.id, li.id)
        await slack.command("/nominations", f"close {campaign}", user=BOSS)
        await slack.command("/nominations", f"close {campaign}", user=BOSS)
        assert f"Campaign #{campaign} was already closed on" in _answer(slack)
        await slack.command("/nominations", f"cancel {campaign}", user=LI)
        assert "Only an admin can cancel a nomination campaign." in _answer(slack)

        assert await _actions(database) == [
            "kudos.revoke",
            "award.revoke",
            "member.lock",
            "member.unlock",
            "campaign.voting",
            "campaign.close",
        ]


async def _kudos(database: Database) -> list[Kudos]:
    async with database.read() as session:
        return list(await session.scalars(select(Kudos).order_by(col(Kudos.id))))


async def _points(database: Database, member_id: int) -> int:
    async with database.read() as session:
        return int(
            await session.scalar(
                select(func.coalesce(func.sum(col(LedgerEntry.points)), 0)).where(
                    col(LedgerEntry.member_id) == member_id
                )
            )
            or 0
        )


# ---- Teams ------------------------------------------------------------------------------------

ANA_TEAMS = {
    "id": "29:1AnaLopezVn8Rk2Pq0Wz5Yt7Ux3Sd9Fg1Hj4Kl6Zx8",
    "name": "Ana Lopez",
    "aadObjectId": "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d",
}


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as fake:
        profiles(fake)
        yield fake


async def test_teams_admin_commands(database: Database, connector: FakeConnector) -> None:
    app, _ = make_app(database, admins=("sam.sender@example.com",))
    li = await add_member(database, "Li Wei")
    bo = await add_member(database, "Bo Stone")
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        core = app[CORE]
        sent = 0

        async def say(text: str, sender: dict[str, str] | None = None) -> str:
            nonlocal sent
            sent += 1
            message = payload("message_personal", connector, text=text, id=f"admin-{sent}")
            if sender is not None:
                message["from"] = dict(sender)
            connector.clear()
            response = await send(client, message)
            assert response.status == 200, await response.text()
            return " ".join(r.text + json.dumps(r.cards) for r in connector.posted())

        kudos = await core.kudos.give(li, [bo], "covered my shift")
        before = await _writes(database)
        assert "Only an admin can use /revoke." in await say(f"/revoke kudos {kudos.id}", ANA_TEAMS)
        assert "Only an admin can use /lock." in await say("/lock @li.wei@example.com", ANA_TEAMS)
        assert await _writes(database) == before

        said = await say(f"/revoke kudos {kudos.id} not a real shift")
        assert f"Revoked kudos {kudos.id} from Li Wei to Bo Stone." in said
        assert "were already revoked" in await say(f"/revoke kudos {kudos.id}")
        assert "Li Wei's giving is locked" in await say("/lock @li.wei@example.com under review")
        with pytest.raises(GivingLocked):
            await core.kudos.give(li, [bo], "while locked")
        received = await core.kudos.give(bo, [li], "still receives")
        assert received.receivers == ((li, "Li Wei"),)
        assert "Li Wei can give again" in await say("/unlock @li.wei@example.com")

        campaign = await _campaign(core, bo, li)
        said = await say(f"/nominations cancel {campaign}", ANA_TEAMS)
        assert "Only an admin can cancel a nomination campaign." in said
        said = await say(f"/nominations cancel {campaign} wrong month")
        assert "was cancelled" in said
        said = await say(f"/nominations cancel {campaign}")
        assert f"Campaign #{campaign} was already cancelled" in said
    sam = await find_by_account(database, "teams", "6f1e4c1b-0a44-4d1c-9e57-3a1d0c9b7a01", TENANT)
    assert sam is not None
    async with database.read() as session:
        rows = (await session.scalars(select(AdminAudit).order_by(col(AdminAudit.id)))).all()
    assert [(r.action, r.actor, r.via, r.actor_member_id) for r in rows] == [
        ("kudos.revoke", "sam.sender@example.com", "chat", sam.id),
        ("member.lock", "sam.sender@example.com", "chat", sam.id),
        ("member.unlock", "sam.sender@example.com", "chat", sam.id),
        ("campaign.cancel", "sam.sender@example.com", "chat", sam.id),
    ]
    assert rows[1].reason == "under review" and rows[3].reason == "wrong month"


# ---- Telegram ---------------------------------------------------------------------------------


@pytest.fixture
async def admin_telegram(database: Database) -> AsyncIterator[tuple[Harness, Core]]:
    """Telegram with Ana (ANA's private chat) as the admin."""
    api = await FakeBotAPI().start()
    settings = telegram_settings(database, api).model_copy(
        update={"admins": ("ana.lopez@example.com",)}
    )
    app = create_app(settings, platforms=False)
    assert telegram_setup(app, settings) is True
    async with TestClient(TestServer(app)) as client:
        yield Harness(api, client, database), app[CORE]
    await api.close()


def _from_stranger(update: dict[str, Any]) -> dict[str, Any]:
    """The same message from Zed, someone else in a private chat with the bot."""
    changed = copy.deepcopy(update)
    who = {"id": 333333333, "is_bot": False, "first_name": "Zed", "username": "zed"}
    changed["message"]["from"] = who
    changed["message"]["chat"] = {"id": 333333333, "first_name": "Zed", "type": "private"}
    return changed


async def test_telegram_admin_commands(
    admin_telegram: tuple[Harness, Core], database: Database
) -> None:
    telegram, core = admin_telegram
    ids = await people(database)
    kudos = await core.kudos.give(ids["li"], [ids["ana"]], "great review")
    zed = await add_member(database, "Zed Zhou")
    await link_account(database, zed, "telegram", "333333333", username="zed")
    # Zed's first turn of the day first, so the refusals below are the only change.
    await telegram.deliver(_from_stranger(private_text(9000, "/help")))
    await core.hooks.drain()
    telegram.api.clear()

    def last() -> str:
        return html.unescape(str(telegram.sent()[-1]["text"]))

    before = await _writes(database)
    await telegram.deliver(_from_stranger(private_text(9001, f"/revoke kudos {kudos.id}")))
    assert "Only an admin can use /revoke." in last()
    await telegram.deliver(_from_stranger(private_text(9002, "/lock @li_wei spam")))
    assert "Only an admin can use /lock." in last()
    assert await _writes(database) == before

    # Sent twice at once (a double tap): one reversal, one "already revoked".
    await asyncio.gather(
        telegram.deliver(private_text(9003, f"/revoke kudos {kudos.id} duplicate")),
        telegram.deliver(private_text(9004, f"/revoke kudos {kudos.id} duplicate")),
    )
    texts = [html.unescape(str(m["text"])) for m in telegram.sent()[-2:]]
    assert sum(f"Revoked kudos {kudos.id}" in t for t in texts) == 1, texts
    assert sum("already revoked" in t for t in texts) == 1, texts
    assert await _reversals(database) == 1

    await telegram.deliver(private_text(9005, "/lock @li_wei under review"))
    assert "Li Wei's giving is locked" in last()
    async with database.read() as session:
        li = await session.get(Member, ids["li"])
        assert li is not None and li.giving_locked_at is not None
    await telegram.deliver(private_text(9006, "/unlock @li_wei"))
    assert "Li Wei can give again" in last()

    campaign = await _campaign(core, ids["li"], ids["ana"])
    await telegram.deliver(_from_stranger(private_text(9007, f"/nominations voting {campaign}")))
    assert "Only an admin can start voting in a nomination campaign." in last()
    await telegram.deliver(private_text(9008, f"/nominations voting {campaign}"))
    assert "voting is open" in last()
    assert await _actions(database) == [
        "kudos.revoke",
        "member.lock",
        "member.unlock",
        "campaign.voting",
    ]


async def test_a_locked_giver_is_refused_without_a_statement_of_its_own(
    database: Database,
) -> None:
    """The lock is a column read with the member the Slack turn already looks up (the
    account look-up): no statement of the refused /kudos reads it on its own, and nothing of
    the kudos is written."""
    async with slack_app(database, admins=("bo.boss@example.com",)) as slack:
        core = slack.bot.core
        await slack.command("/kudos", f"<@{LI}> first one")  # meets everyone
        await slack.command("/help", user=BOSS)
        await core.hooks.drain()
        await slack.command("/lock", f"<@{ANA}> review", user=BOSS)
        kudos = await _count(database, Kudos)
        seen: list[str] = []

        def on_execute(*args: Any) -> None:
            seen.append(" ".join(str(args[2]).split()))

        engines = [engine.sync_engine for engine in database.engines()]
        for engine in engines:
            event.listen(engine, "before_cursor_execute", on_execute)
        try:
            await slack.command("/kudos", f"<@{LI}> one more")
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", on_execute)
        assert "An admin has paused your giving" in _answer(slack)
        assert await _count(database, Kudos) == kudos
        reading_the_lock = [s for s in seen if "giving_locked_at" in s]
        assert reading_the_lock and all(
            s.startswith("SELECT held.user_id") for s in reading_the_lock
        )
        assert not [s for s in seen if s.startswith(("INSERT INTO kudos", "INSERT INTO ledger"))]

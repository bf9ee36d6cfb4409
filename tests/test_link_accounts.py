"""Acceptance: `/link` joins a Telegram account to a Slack member, and `/me` on both shows one
ledger.

One app serves Slack (slack-bolt against the fake Web API, signed requests) and Telegram
(python-telegram-bot against the fake Bot API), on SQLite and PostgreSQL, with a clock the test
moves. Ana is a member of the Slack workspace; on Telegram she is a stranger (not imported, in no
allowed chat) until she sends there the code Slack gave her. A spent, expired or wrong code, sent
by a stranger, is refused politely and writes nothing; in a Telegram group `/link` gives no code.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bots import slack, telegram
from bots.server import create_app
from bots.slack import SLACK
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.membership import LINK_TTL, not_a_member_sentence
from rewards.membership.linking import BAD_CODE
from rewards.services.members import find_by_account, link_account
from rewards.settings import Settings
from rewards.store.db import Database
from tests.factories import add_member
from tests.support.rowcounts import assert_unchanged, table_counts
from tests.support.slack_api import FakeSlackApi
from tests.support.telegram_api import TOKEN, FakeBotAPI
from tests.test_slack import ANA, BOT_TOKEN, LI, SECRET, TEAM, Slack
from tests.test_telegram import GROUP, HOOK_URL, Harness
from tests.test_telegram import SECRET as TG_SECRET
from tests.test_telegram_membership import TEAM_CHAT, message

ANA_DM = "D0ANA0001"
ANA_ON_TELEGRAM: dict[str, Any] = {
    "id": 444000444,
    "is_bot": False,
    "first_name": "Ana",
    "username": "ana_tg",
}
BO_ON_TELEGRAM: dict[str, Any] = {
    "id": 222222222,
    "is_bot": False,
    "first_name": "Bo",
    "last_name": "Boss",
}
STRANGER: dict[str, Any] = {"id": 555000555, "is_bot": False, "first_name": "Mallory"}
CODE = re.compile(r"link code is ([A-Z2-9]{4}-[A-Z2-9]{4})")
REFUSAL = not_a_member_sentence("telegram")
POINTS = re.compile(r"Points\W+(\d+)")


@dataclass
class World:
    slack: Slack
    telegram: Harness
    core: Core
    clock: FixedClock
    database: Database

    async def slack_link(self) -> str:
        """Ana sends `/link` to the bot in her Slack DM; returns the code she alone was shown."""
        self.slack.api.calls.clear()
        body = self.slack.command_body(
            "/link", "", user=ANA, channel_id=ANA_DM, channel_name="directmessage"
        )
        response = await self.slack.post(body, "application/x-www-form-urlencoded")
        assert response.status == 200, await response.text()
        self.slack.api.answered(await response.text())
        await self.slack.bot.drain()
        [answer] = [c for c in self.slack.api.of("response_url") if "code" in str(c.get("text"))]
        assert answer["response_type"] == "ephemeral"  # only Ana sees it
        found = CODE.search(str(answer["text"]))
        assert found is not None, answer
        return found.group(1)

    async def slack_points(self) -> int:
        """What `/myrewards` shows Ana on Slack."""
        self.slack.api.calls.clear()
        body = self.slack.command_body(
            "/myrewards", "", user=ANA, channel_id=ANA_DM, channel_name="directmessage"
        )
        response = await self.slack.post(body, "application/x-www-form-urlencoded")
        assert response.status == 200, await response.text()
        self.slack.api.answered(await response.text())
        await self.slack.bot.drain()
        [posted] = self.slack.api.of("response_url")  # the command's answer, to Ana alone
        assert posted["response_type"] == "ephemeral"
        fields = [f["text"] for b in posted["blocks"] for f in b.get("fields", [])]
        [points] = [f.removeprefix("*Points*\n") for f in fields if f.startswith("*Points*")]
        return int(points)

    async def telegram_says(self, update: dict[str, Any]) -> list[str]:
        """Deliver `update`; what the bot answered on Telegram, as people read it."""
        sent = len(self.telegram.sent())
        await self.telegram.deliver(update)
        return [
            html.unescape(re.sub(r"<[^>]+>", "", str(p["text"])))
            for p in self.telegram.sent()[sent:]
        ]


@asynccontextmanager
async def world(database: Database, clock: FixedClock) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        slack_api = await stack.enter_async_context(FakeSlackApi())
        slack_api.add_user(ANA, "Ana Lopez", "ana.lopez@example.com")
        slack_api.add_user(LI, "Li Wei", "li.wei@example.com")
        telegram_api = await FakeBotAPI().start()
        stack.push_async_callback(telegram_api.close)
        settings = Settings(
            database_url=database.url,
            catalog_files=(),  # no automated badges: the points are the kudos'
            reward_scheduler=False,  # no job_run rows in the "wrote nothing" checks
            slack_team_ids=(TEAM,),
            telegram_allowed_chats=(str(GROUP),),
            extra={
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": slack_api.api_url,
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_URL": telegram_api.url,
                "TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
                "TELEGRAM_WEBHOOK_URL": HOOK_URL,
            },
        )
        core = Core(settings=settings, db=database, clock=clock)
        app = create_app(settings, core, platforms=False)
        assert slack.setup(app, settings) and telegram.setup(app, settings)
        client = await stack.enter_async_context(TestClient(TestServer(app, host="127.0.0.1")))
        bo = await add_member(database, "Bo Boss")  # imported with his Telegram id
        await link_account(database, bo, "telegram", str(BO_ON_TELEGRAM["id"]))
        telegram_api.clear()
        yield World(
            Slack(client, slack_api, app[SLACK], database),
            Harness(telegram_api, client, database),
            core,
            clock,
            database,
        )


@pytest.fixture
async def linked_world(database: Database, clock: FixedClock) -> AsyncIterator[World]:
    async with world(database, clock) as w:
        yield w


async def test_link_joins_a_telegram_account_to_a_slack_member(linked_world: World) -> None:
    w = linked_world
    code = await w.slack_link()
    ana = await find_by_account(w.database, "slack", ANA, tenant=TEAM)
    assert ana is not None  # admitted in the Slack workspace on first sight

    # On Telegram Ana is a stranger: refused, until she sends the code
    assert await w.telegram_says(message(ANA_ON_TELEGRAM, "/me")) == [REFUSAL]
    assert len(w.telegram.api.chat_member_calls()) == 1  # the team chat does not know her
    [done] = await w.telegram_says(message(ANA_ON_TELEGRAM, f"/link {code}"))
    assert done.startswith("Done: this Telegram account is now part of Ana Lopez's rewards")
    on_telegram = await find_by_account(w.database, "telegram", str(ANA_ON_TELEGRAM["id"]))
    assert on_telegram is not None and on_telegram.id == ana.id
    assert len(w.telegram.api.chat_member_calls()) == 1  # the code let her in, not a chat

    # kudos from Telegram (Bo names her Telegram account) and from Slack (Li names her there)
    said = await w.telegram_says(
        message(BO_ON_TELEGRAM, "/kudos Ana for the demo", mentions=[ANA_ON_TELEGRAM])
    )
    assert "Ana Lopez" in said[0]
    await w.slack.command("/kudos", f"<@{ANA}|ana> thanks for the review", user=LI)

    # one ledger: /myrewards on Slack and /me on Telegram show the same points
    [me] = await w.telegram_says(message(ANA_ON_TELEGRAM, "/me"))
    found = POINTS.search(me)
    assert found is not None, me
    assert int(found.group(1)) == await w.slack_points() == 2 * w.core.settings.kudos_points


async def test_a_spent_an_expired_and_a_wrong_code_are_refused(linked_world: World) -> None:
    w = linked_world
    spent = await w.slack_link()
    await w.telegram_says(message(ANA_ON_TELEGRAM, f"/link {spent}"))
    expired = await w.slack_link()  # a new code (and the only valid one) for Ana
    w.clock.advance(LINK_TTL + timedelta(seconds=1))

    for code in (spent, expired, "ABCD-EFGH", "not a code"):
        before = await table_counts(w.database)
        said = await w.telegram_says(message(STRANGER, f"/link {code}"))
        assert said == [BAD_CODE], code
        assert_unchanged(before, await table_counts(w.database))
    assert await find_by_account(w.database, "telegram", str(STRANGER["id"])) is None
    # nor did Mallory cost a getChatMember call: a link code is not a reason to ask the chats
    assert w.telegram.api.chat_member_calls(STRANGER["id"]) == []


async def test_a_code_made_on_telegram_is_not_redeemed_on_telegram(linked_world: World) -> None:
    """Ana, linked, asks for a code in her Telegram DM; the same platform cannot redeem it."""
    w = linked_world
    await w.telegram_says(message(ANA_ON_TELEGRAM, f"/link {await w.slack_link()}"))
    [given] = await w.telegram_says(message(ANA_ON_TELEGRAM, "/link"))
    found = CODE.search(given)
    assert found is not None, given
    before = await table_counts(w.database)
    [said] = await w.telegram_says(message(STRANGER, f"/link {found.group(1)}"))
    assert said.startswith("That code was made on Telegram")
    assert_unchanged(before, await table_counts(w.database))


async def test_link_in_a_telegram_group_reveals_no_code(linked_world: World) -> None:
    w = linked_world
    await w.telegram_says(message(ANA_ON_TELEGRAM, f"/link {await w.slack_link()}"))
    codes = (await table_counts(w.database))["link_code"]
    said = await w.telegram_says(message(ANA_ON_TELEGRAM, "/link", chat=TEAM_CHAT))
    assert len(said) == 1 and "direct message" in said[0]
    assert CODE.search(said[0]) is None
    assert (await table_counts(w.database))["link_code"] == codes

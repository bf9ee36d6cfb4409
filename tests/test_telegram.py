"""Telegram end to end: recorded updates in, python-telegram-bot against a fake Bot API out.

The app is the real one (`create_app` + `bots.telegram.setup`); the Bot API is
`tests.support.telegram_api.FakeBotAPI` on 127.0.0.1 (`TELEGRAM_API_URL`), so PTB's own request
code (form-encoded bodies) runs unchanged.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bots.gateway import ChannelGateway
from bots.server import create_app
from bots.telegram import SECRET_HEADER, TELEGRAM, WEBHOOK_PATH, setup
from bots.telegram.gateway import TelegramGateway
from cards.actions import choice_token, encode
from cards.screens import notice
from dialogs.commands import COMMANDS
from dialogs.engine import STALE
from rewards.services.channels import find_channel
from rewards.services.members import find_by_account, link_account
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Award, InboundEvent, Kudos, KudosReceiver, Member
from tests.factories import add_member, add_reward
from tests.support.telegram_api import TOKEN, FakeBotAPI

PAYLOADS = Path(__file__).parent / "payloads" / "telegram"
SECRET = "s3cret-Token_for-tests"
HOOK_URL = "https://rewards.example.com/telegram/webhook"
ANA = 111111111
BO = 222222222  # named by a text_mention in kudos_group; not imported, a member of the team chat
GROUP = -1001234567890


def payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    return data


def private_text(update_id: int, text: str) -> dict[str, Any]:
    """A message from Ana in her private chat, with the entities Telegram would attach."""
    update = payload("command_private")
    update["update_id"] = update_id
    message = update["message"]
    message["message_id"] = update_id % 10000
    message["text"] = text
    entities = []
    if text.startswith("/"):
        entities.append({"offset": 0, "length": len(text.split()[0]), "type": "bot_command"})
    for found in re.finditer(r"(?<!\S)@[A-Za-z0-9_]+", text):
        entities.append({"offset": found.start(), "length": len(found[0]), "type": "mention"})
    message["entities"] = entities
    if not entities:
        del message["entities"]
    return update


def click(update_id: int, data: str, message_id: int) -> dict[str, Any]:
    update = payload("callback_private")
    update["update_id"] = update_id
    query = update["callback_query"]
    query["id"] = f"cbq-{update_id}"
    query["data"] = data
    query["message"]["message_id"] = message_id
    return update


def buttons(params: dict[str, Any]) -> dict[str, str]:
    """{title: callback_data} of a sendMessage/editMessageText call."""
    rows = (params.get("reply_markup") or {}).get("inline_keyboard", [])
    return {b["text"]: b.get("callback_data", "") for row in rows for b in row}


async def count(database: Database, model: Any) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@dataclass
class Harness:
    api: FakeBotAPI
    client: TestClient  # type: ignore[type-arg]
    database: Database

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> ClientResponse:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        return await self.client.post(WEBHOOK_PATH, json=update, headers=headers)

    async def deliver(self, update: dict[str, Any]) -> None:
        response = await self.post(update)
        assert response.status == 200, await response.text()

    def sent(self) -> list[dict[str, Any]]:
        return self.api.params("sendMessage")

    def last_message_id(self) -> int:
        return 1000 + len(self.sent()) - 1  # the fake numbers messages from 1000


def telegram_settings(
    database: Database,
    api: FakeBotAPI,
    *,
    chats: tuple[str, ...] = (str(GROUP),),
    membership: str = "open",
    **extra: str,
) -> Settings:
    """The team chat (GROUP) is an allowed chat (TELEGRAM_CHAT_ID): its members may take part."""
    values = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_WEBHOOK_URL": HOOK_URL,
        "TELEGRAM_API_URL": api.url,
    }
    values.update(extra)
    return Settings(
        database_url=database.url,
        catalog_files=(),
        reward_scheduler=False,  # its job_run rows would land in the "wrote nothing" checks
        telegram_allowed_chats=chats,
        membership=membership,
        extra={k: v for k, v in values.items() if v},
    )


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    fake = await FakeBotAPI().start()
    yield fake
    await fake.close()


@pytest.fixture
async def telegram(database: Database, api: FakeBotAPI) -> AsyncIterator[Harness]:
    settings = telegram_settings(database, api)
    app = create_app(settings, platforms=False)
    assert setup(app, settings) is True
    api.set_chat_member(GROUP, BO)  # Bo is not imported: the team chat vouches for him
    async with TestClient(TestServer(app)) as client:
        yield Harness(api, client, database)


async def people(database: Database) -> dict[str, int]:
    """Ana (known on Telegram) and Li Wei (imported with only a pending @li_wei account)."""
    ana = await add_member(database, "Ana Lopez", job_code="MANAGER")
    await link_account(database, ana, "telegram", str(ANA), username="ana_lopez")
    li = await add_member(database, "Li Wei")
    await link_account(database, li, "telegram", "@li_wei", username="li_wei")
    return {"ana": ana, "li": li}


# --- start-up ------------------------------------------------------------------------------------


async def test_start_sends_commands_and_sets_the_webhook(telegram: Harness) -> None:
    methods = telegram.api.methods()
    assert methods[0] == "getMe"
    [commands] = telegram.api.params("setMyCommands")
    assert commands["commands"] == [
        {"command": c.name, "description": c.description} for c in COMMANDS
    ]
    [hook] = telegram.api.params("setWebhook")
    assert hook["url"] == HOOK_URL and hook["secret_token"] == SECRET
    assert "getUpdates" not in methods


def test_setup_is_off_without_a_token(database: Database) -> None:
    settings = Settings(database_url=database.url, catalog_files=())
    app = create_app(settings, platforms=False)
    assert setup(app, settings) is False
    assert TELEGRAM not in app


async def test_long_polling_without_a_webhook_url_and_no_route_without_a_secret(
    database: Database, api: FakeBotAPI
) -> None:
    await people(database)
    settings = telegram_settings(database, api, TELEGRAM_WEBHOOK_URL="", TELEGRAM_WEBHOOK_SECRET="")
    app = create_app(settings, platforms=False)
    assert setup(app, settings)
    app[TELEGRAM].poll_timeout = 1
    api.queue_update(private_text(900001, "/help"))
    async with TestClient(TestServer(app)) as client:
        await api.wait_for("sendMessage")
        assert "deleteWebhook" in api.methods() and "setWebhook" not in api.methods()
        assert "Here is what I can do" in api.params("sendMessage")[0]["text"]
        response = await client.post(WEBHOOK_PATH, json=private_text(900002, "/help"))
        assert response.status in (404, 405)  # not mounted without a secret
    # the poller stopped with the app: no getUpdates after shutdown
    calls = len(api.calls)
    await asyncio.sleep(0.5)
    assert len(api.calls) == calls


# --- authenticity and deduplication --------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, "", "wrong-secret"], ids=["missing", "empty", "wrong"])
async def test_a_bad_secret_is_403_and_nothing_is_written(
    telegram: Harness, secret: str | None
) -> None:
    telegram.api.clear()
    response = await telegram.post(payload("kudos_group"), secret=secret)
    assert response.status == 403
    assert await count(telegram.database, InboundEvent) == 0
    assert await count(telegram.database, Member) == 0
    assert await count(telegram.database, Kudos) == 0
    assert telegram.api.calls == []


async def test_the_same_update_twice_is_processed_once(telegram: Harness) -> None:
    await people(telegram.database)
    update = payload("kudos_group")
    await telegram.deliver(update)
    await telegram.deliver(update)
    assert len(telegram.sent()) == 1
    assert await count(telegram.database, Kudos) == 1


async def test_garbage_is_400(telegram: Harness) -> None:
    response = await telegram.client.post(
        WEBHOOK_PATH, data=b"not json", headers={SECRET_HEADER: SECRET}
    )
    assert response.status == 400
    response = await telegram.client.post(
        WEBHOOK_PATH, json={"hello": 1}, headers={SECRET_HEADER: SECRET}
    )
    assert response.status == 400


# --- commands ------------------------------------------------------------------------------------


async def test_kudos_in_a_group_with_a_username_and_a_text_mention(telegram: Harness) -> None:
    ids = await people(telegram.database)
    telegram.api.clear()
    await telegram.deliver(payload("kudos_group"))

    [sent] = telegram.sent()
    assert int(sent["chat_id"]) == GROUP and sent["parse_mode"] == "HTML"
    assert "<b>" in sent["text"] and "Li Wei" in sent["text"] and "Bo Boss" in sent["text"]
    async with telegram.database.read() as session:
        column = KudosReceiver.__table__.c.member_id  # type: ignore[attr-defined]
        receivers = set((await session.scalars(select(column))).all())
    bo = await find_by_account(telegram.database, "telegram", str(BO))
    assert bo is not None and bo.email == "telegram-222222222@telegram.invalid"
    assert receivers == {ids["li"], bo.id}
    # Bo was admitted because the team chat has him as a member; asked once, about him only
    assert [int(c["user_id"]) for c in telegram.api.chat_member_calls()] == [BO]
    # the pending @li_wei account is still Li's; the group is remembered as a group
    channel = await find_channel(telegram.database, "telegram", str(GROUP))
    assert channel is not None and channel.kind == "group" and channel.member_id is None
    assert channel.reference == {"chat_id": GROUP}


async def test_user_text_is_html_escaped_in_a_kudos_reply_and_a_card(telegram: Harness) -> None:
    """Re-check (issue 15): Telegram's HTML mode gets every piece of user text escaped, so a
    message or a name can neither format, link, nor break the reply."""
    await people(telegram.database)
    zed = await add_member(telegram.database, "Zed <b>Bold</b> & Co")
    await link_account(telegram.database, zed, "telegram", "@zed_x", username="zed_x")
    telegram.api.clear()
    typed = 'if a<b and c>d <a href="https://evil.example">x</a> & <i>'
    await telegram.deliver(private_text(750001, f"/kudos @zed_x {typed}"))
    [sent] = telegram.sent()
    assert sent["parse_mode"] == "HTML"
    assert (
        "if a&lt;b and c&gt;d &lt;a href=&quot;https://evil.example&quot;&gt;x&lt;/a&gt;"
        in (sent["text"])
    )
    assert "Zed &lt;b&gt;Bold&lt;/b&gt; &amp; Co" in sent["text"]
    assert 'href="https://evil.example"' not in sent["text"] and "&amp; &lt;i&gt;" in sent["text"]

    await telegram.deliver(private_text(750002, "/leaderboard week"))  # a card with Zed's name
    board = telegram.sent()[-1]
    assert "Zed &lt;b&gt;Bold&lt;/b&gt; &amp; Co" in board["text"], board
    assert "<b>Bold</b>" not in board["text"]


async def test_a_command_for_another_bot_and_group_chatter_are_ignored(
    telegram: Harness,
) -> None:
    await people(telegram.database)
    telegram.api.clear()
    other = payload("kudos_group")
    other["message"]["text"] = other["message"]["text"].replace("RewardsBot", "OtherBot_")
    await telegram.deliver(other)
    chatter = copy.deepcopy(payload("kudos_group"))
    chatter["update_id"] += 1
    chatter["message"]["text"] = "lunch anyone?"
    del chatter["message"]["entities"]
    await telegram.deliver(chatter)
    assert telegram.sent() == []
    assert await count(telegram.database, Kudos) == 0


async def test_unknown_username_is_explained(telegram: Harness) -> None:
    await people(telegram.database)
    await telegram.deliver(private_text(700001, "/kudos @nobody_here thanks"))
    [sent] = telegram.sent()
    assert "@nobody_here" in sent["text"]
    assert await count(telegram.database, Kudos) == 0


async def test_leaderboard(telegram: Harness) -> None:
    await people(telegram.database)
    await telegram.deliver(private_text(700010, "/leaderboard@RewardsBot"))
    [sent] = telegram.sent()
    assert sent["parse_mode"] == "HTML" and "🏆" in sent["text"]
    channel = await find_channel(telegram.database, "telegram", str(ANA))
    assert channel is not None and channel.kind == "personal"


# --- guided /badge, buttons, double and stale clicks ---------------------------------------------


async def test_guided_badge_field_by_field(telegram: Harness) -> None:
    ids = await people(telegram.database)
    await add_reward(telegram.database, reward_id=9001, reward="Team Player", multiple=True)
    telegram.api.clear()

    await telegram.deliver(private_text(710001, "/badge"))
    intro, question = telegram.sent()
    assert "Give a badge" in intro["text"] and "Cancel" in buttons(intro)
    choices = buttons(question)
    assert choices["Team Player"] == choice_token("badge", 0)
    assert question["parse_mode"] == "HTML"

    # pick the badge with its button: answered, keyboard dropped, next field asked
    await telegram.deliver(click(710002, choices["Team Player"], telegram.last_message_id()))
    [answer] = telegram.api.params("answerCallbackQuery")
    assert answer["callback_query_id"] == "cbq-710002" and "text" not in answer
    assert len(telegram.api.params("editMessageReplyMarkup")) == 1
    assert len(telegram.sent()) == 3

    await telegram.deliver(private_text(710003, "@li_wei"))  # resolved by username
    await telegram.deliver(private_text(710004, "Always there for the team"))
    confirm = telegram.sent()[-1]
    assert "Li Wei" in confirm["text"] and "Give badge" in buttons(confirm)
    assert await count(telegram.database, Award) == 0

    confirm_id = telegram.last_message_id()
    give = buttons(confirm)["Give badge"]
    await telegram.deliver(click(710005, give, confirm_id))
    [edited] = telegram.api.params("editMessageText")
    assert int(edited["message_id"]) == confirm_id
    assert "Li Wei received Team Player from Ana Lopez" in edited["text"]
    assert await count(telegram.database, Award) == 1

    # the double click: answered politely, nothing written or posted twice
    sent_before = len(telegram.sent())
    await telegram.deliver(click(710006, give, confirm_id))
    answers = telegram.api.params("answerCallbackQuery")
    assert len(answers) == 3 and answers[-1]["text"] == STALE
    assert await count(telegram.database, Award) == 1
    assert len(telegram.sent()) == sent_before
    assert len(telegram.api.params("editMessageText")) == 1
    assert ids["li"]


async def test_a_stale_card_is_answered_and_changes_nothing(telegram: Harness) -> None:
    await people(telegram.database)
    old = encode("badge", "submit", "oldNonce")
    await telegram.deliver(click(720001, old, 4242))
    [answer] = telegram.api.params("answerCallbackQuery")
    assert answer["text"] == STALE
    assert telegram.sent() == [] and await count(telegram.database, Award) == 0
    # a button that is not ours at all is answered too
    await telegram.deliver(click(720002, "something-else", 4242))
    assert len(telegram.api.params("answerCallbackQuery")) == 2


async def test_a_button_click_cancels_the_form(telegram: Harness) -> None:
    await people(telegram.database)
    await add_reward(telegram.database, reward_id=9001, reward="Team Player", multiple=True)
    await telegram.deliver(private_text(730001, "/badge"))
    intro = telegram.sent()[0]
    intro_id = telegram.last_message_id() - 1
    await telegram.deliver(click(730002, buttons(intro)["Cancel"], intro_id))
    [edited] = telegram.api.params("editMessageText")
    assert int(edited["message_id"]) == intro_id and "cancelled" in edited["text"]
    assert len(telegram.api.params("answerCallbackQuery")) == 1


# --- gateway -------------------------------------------------------------------------------------


async def test_the_gateway_posts_updates_and_dms_a_remembered_chat(telegram: Harness) -> None:
    ids = await people(telegram.database)
    await telegram.deliver(private_text(740001, "/help"))
    await telegram.deliver(payload("kudos_group"))
    found = telegram.client.app[TELEGRAM].gateway
    assert isinstance(found, TelegramGateway)
    gateway: ChannelGateway = found  # satisfies the protocol
    telegram.api.clear()

    channel = await find_channel(telegram.database, "telegram", str(GROUP))
    assert channel is not None
    posted = await gateway.post(channel.chat_id, notice("Lottery draw at <5pm> & cake"))
    assert posted.platform == "telegram" and posted.chat_id == str(GROUP)
    [sent] = telegram.sent()
    assert int(sent["chat_id"]) == GROUP and "&lt;5pm&gt; &amp; cake" in sent["text"]

    await gateway.update(posted, notice("Drawn!"))
    [edited] = telegram.api.params("editMessageText")
    assert int(edited["message_id"]) == int(posted.message_id)

    direct = await gateway.direct(ids["ana"], notice("You won"))
    assert direct is not None and direct.chat_id == str(ANA)
    assert await gateway.direct(ids["li"], notice("never met")) is None


async def test_start_greets_with_help_and_a_failed_edit_posts_instead(telegram: Harness) -> None:
    await people(telegram.database)
    await add_reward(telegram.database, reward_id=9001, reward="Team Player", multiple=True)
    await telegram.deliver(private_text(750001, "/start"))
    assert "Here is what I can do" in telegram.sent()[0]["text"]

    await telegram.deliver(private_text(750002, "/badge"))
    intro = telegram.sent()[1]
    telegram.api.failures["editMessageText"] = (400, "Bad Request: message to edit not found")
    await telegram.deliver(click(750003, buttons(intro)["Cancel"], 1001))
    assert len(telegram.api.params("editMessageText")) == 1
    assert "cancelled" in telegram.sent()[-1]["text"]
    assert len(telegram.api.params("answerCallbackQuery")) == 1

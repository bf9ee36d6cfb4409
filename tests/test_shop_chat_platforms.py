"""The shop and its approvals on each platform, through the real app and the fake servers.

One app runs the Teams, Slack and Telegram adapters and the notifier, with REDEMPTIONS_CHANNEL
naming the team channel on each. On each platform: a member types /shop and gets the card with
Redeem buttons (an Adaptive Card invoke, a Slack `block_actions`, a Telegram callback query);
Redeem asks first and its confirmation, clicked twice, spends once; the notifier posts the
approval card in the channel and in the admins' direct chats; a member who is not an admin is
refused; the admin's Approve redraws the card with the decision and a second click is told who
decided; the notifier tells the member. A second redemption is rejected with a reason (a form on
Teams, a modal on Slack, a typed answer on Telegram), which refunds it.
"""

from __future__ import annotations

import copy
import html
import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlmodel import col

from bots import notifier as notifier_setup
from bots import slack, teams, telegram
from bots.server import create_app
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.economy.shop.file import parse_shop
from rewards.services.members import link_account
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Announcement, Delivery
from tests.factories import add_member
from tests.support.slack_api import FakeSlackApi
from tests.support.teams_connector import FakeConnector, current_sdk
from tests.support.telegram_api import TOKEN, FakeBotAPI
from tests.test_nominations_platforms import (
    GROUP,
    PEOPLE,
    SLACK_CHANNEL,
    SLACK_TEAM,
    TG_SECRET,
    Driver,
    World,
    driver_for,
    number_of,
)
from tests.test_slack import Slack
from tests.test_teams import TEAM, TENANT, payload, profiles

ITEMS = [
    {"item_id": 1, "name": "Coffee", "cost": 30, "icon": "☕"},
    {"item_id": 2, "name": "Day off", "cost": 100, "approval": True, "icon": "🏖️"},
]
TOKEN_RE = re.compile(r"rw1\|[a-z_]+\|[a-z_]+\|[A-Za-z0-9_.~-]*")


@asynccontextmanager
async def world(database: Database, clock: FixedClock) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        connector = await stack.enter_async_context(FakeConnector())
        profiles(connector)
        slack_api = await stack.enter_async_context(FakeSlackApi())
        telegram_api = await FakeBotAPI().start()
        stack.push_async_callback(telegram_api.close)
        settings = Settings(
            database_url=database.url,
            catalog_files=(),
            reward_scheduler=False,
            teams_sdk=current_sdk(),
            admins=("ada.admin@example.com",),
            telegram_bot_token=TOKEN,
            redemptions_channel=(
                "teams:Engineering",
                f"slack:{SLACK_CHANNEL}",
                f"telegram:{GROUP}",
            ),
            extra={
                "SLACK_BOT_TOKEN": "xoxb-0000000000-test-token",
                "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
                "SLACK_API_URL": slack_api.api_url,
                "TELEGRAM_API_URL": telegram_api.url,
                "TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
                "TELEGRAM_WEBHOOK_URL": "https://rewards.example.com/telegram/webhook",
            },
        )
        core = Core(settings=settings, db=database, clock=clock)
        app = create_app(settings, core, platforms=False)
        teams.setup(app, settings)
        assert slack.setup(app, settings) and telegram.setup(app, settings)
        notifier_setup.setup(app, settings, run=False, interval=3600)
        client = await stack.enter_async_context(TestClient(TestServer(app, host="127.0.0.1")))
        response = await client.post(
            "/api/messages", json=payload("conversation_update_team", connector)
        )
        assert response.status == 200, await response.text()
        members: dict[str, int] = {}
        for number, name in enumerate(PEOPLE, start=1):
            member = await add_member(database, name)
            members[name] = member
            await link_account(database, member, "teams", f"aad-{number}", tenant=TENANT)
            await link_account(database, member, "slack", f"U0PERSON{number}", tenant=SLACK_TEAM)
            await link_account(database, member, "telegram", str(500 + number))
        await core.shop.load(parse_shop(ITEMS))
        await core.shop.grant(members["Ana Lopez"], 250, reason="Welcome to the shop")
        connector.clear()
        telegram_api.clear()
        yield World(client, core, clock, connector, slack_api, telegram_api, members)


def everything_since(w: World, marks: tuple[int, int, int]) -> str:
    """All the fake servers received since `marks`, as one text (cards, keyboards, modals)."""
    teams_sent, slack_calls, telegram_calls = marks
    parts = [
        s.text + json.dumps(s.cards, ensure_ascii=False) for s in w.connector.sent[teams_sent:]
    ]
    parts += [json.dumps(c.params, ensure_ascii=False) for c in w.slack.calls[slack_calls:]]
    parts += [json.dumps(c.params, ensure_ascii=False) for c in w.telegram.calls[telegram_calls:]]
    return html.unescape("\n".join(parts))


def marks(w: World) -> tuple[int, int, int]:
    return len(w.connector.sent), len(w.slack.calls), len(w.telegram.calls)


def tokens(text: str, dialog: str, verb: str) -> list[str]:
    return [t for t in TOKEN_RE.findall(text) if t.split("|")[1:3] == [dialog, verb]]


async def command(d: Driver, who: str, text: str) -> str:
    start = marks(d.w)
    said = await d.command(who, text)
    return said + everything_since(d.w, start)


async def click(d: Driver, who: str, token: str, message: str) -> tuple[str, str]:
    """(what only the clicker saw, everything the click produced)."""
    start = marks(d.w)
    clicked = await d.click(who, token, message)
    return clicked.private, clicked.card + everything_since(d.w, start)


async def channel_message(w: World, platform: str, kind: str) -> str:
    """The platform's message id of the notification of `kind` posted in the channel."""
    query = (
        select(col(Delivery.message_ref))
        .join(Announcement, col(Announcement.id) == col(Delivery.announcement_id))
        .where(
            col(Announcement.kind) == kind,
            col(Delivery.channel) == platform,
            col(Delivery.target).not_like("member:%"),
            col(Delivery.status) == "sent",
        )
        .order_by(col(Delivery.id).desc())
    )
    async with w.core.db.read() as session:
        ref = await session.scalar(query)
    assert ref, f"no {kind} posted in the {platform} channel"
    return str(ref).rsplit(":", 1)[-1]


async def teams_submit(w: World, who: str, value: dict[str, Any]) -> str:
    """An Action.Submit from the team channel: a message activity carrying the card's data."""
    start = marks(w)
    activity = copy.deepcopy(payload("message_submit", w.connector))
    number = number_of(who)
    activity["id"] = f"1763479{number:06d}"
    activity["from"] = {"id": f"29:{who}", "name": who, "aadObjectId": f"aad-{number}"}
    activity["conversation"] = {
        "isGroup": True,
        "conversationType": "channel",
        "tenantId": TENANT,
        "id": TEAM,
    }
    activity["channelData"] = {"tenant": {"id": TENANT}, "team": {"id": TEAM}}
    activity["value"] = value
    response = await w.client.post("/api/messages", json=activity)
    assert response.status == 200, await response.text()
    return everything_since(w, start)


async def reject_with_reason(d: Driver, token: str, message: str, reason: str) -> str:
    """Ada presses Reject and gives the reason as her platform asks for it."""
    w = d.w
    if d.name == "telegram":  # the question is a message in the chat: not the driver's click
        seen = await telegram_update(w, {"callback_query": _callback(token, message)})
        assert "Reason for the rejection" in seen, seen
        return await telegram_update(w, {"message": _text_message(reason)})
    private, seen = await click(d, "Ada Admin", token, message)
    assert "Reason for the rejection" in private + seen, (private, seen)
    start = marks(w)
    if d.name == "teams":
        [submit] = sorted(set(tokens(private + seen, "approval", "submit")))
        activity = copy.deepcopy(payload("invoke_execute", w.connector))
        activity["id"] = f"f:{uuid.uuid4()}"
        number = number_of("Ada Admin")
        activity["from"] = {"id": "29:ada", "name": "Ada Admin", "aadObjectId": f"aad-{number}"}
        activity["conversation"] = {
            "isGroup": True,
            "conversationType": "channel",
            "tenantId": TENANT,
            "id": f"{TEAM};messageid={message}",
        }
        activity["replyToId"] = message
        activity["value"]["action"]["verb"] = submit
        activity["value"]["action"]["data"] = {"token": submit, "reason": reason}
        response = await w.client.post("/api/messages", json=activity)
        assert response.status == 200, await response.text()
        return json.dumps(await response.json(), ensure_ascii=False) + everything_since(w, start)
    if d.name == "slack":
        [opened] = [c for c in w.slack.calls if c.method == "views.open"][-1:]
        view = opened.params["view"]
        view = json.loads(view) if isinstance(view, str) else view
        helper = Slack(w.client, w.slack, w.client.app[slack.SLACK], w.core.db)
        [block] = [b["block_id"] for b in view["blocks"] if b["type"] == "input"]
        await helper.submit(view, {block: reason}, user=f"U0PERSON{number_of('Ada Admin')}")
        return everything_since(w, start)
    raise AssertionError(d.name)


ADA = {"id": 500 + number_of("Ada Admin"), "is_bot": False, "first_name": "Ada"}
CHAT = {"id": GROUP, "title": "Engineering", "type": "supergroup"}
_updates = iter(range(990000, 999999))


def _callback(token: str, message: str) -> dict[str, Any]:
    bot = {"id": 123456, "is_bot": True, "first_name": "Rewards"}
    return {
        "id": f"cbq-{uuid.uuid4().hex}",
        "from": ADA,
        "message": {"message_id": int(message), "from": bot, "chat": CHAT, "date": 1795100470},
        "chat_instance": "-7811112223334445556",
        "data": token,
    }


def _text_message(text: str) -> dict[str, Any]:
    return {"message_id": 9901, "from": ADA, "chat": CHAT, "date": 1795100480, "text": text}


async def telegram_update(w: World, update: dict[str, Any]) -> str:
    start = marks(w)
    response = await w.client.post(
        telegram.WEBHOOK_PATH,
        json={"update_id": next(_updates), **update},
        headers={telegram.SECRET_HEADER: TG_SECRET},
    )
    assert response.status == 200, await response.text()
    return everything_since(w, start)


@pytest.mark.parametrize("platform", ["teams", "slack", "telegram"])
async def test_shop_and_approvals(database: Database, clock: FixedClock, platform: str) -> None:
    async with world(database, clock) as w:
        d = driver_for(platform, w)
        ana = w.members["Ana Lopez"]

        # The shop card with a Redeem button per item Ana can afford.
        seen = await command(d, "Ana Lopez", "/shop")
        assert "Rewards shop" in seen and "250 points" in seen
        buy = tokens(seen, "redeem", "buy")
        assert sorted(set(buy)) == ["rw1|redeem|buy|1", "rw1|redeem|buy|2"], seen

        # Redeem asks first; its confirmation clicked twice spends once.
        private, seen = await click(d, "Ana Lopez", "rw1|redeem|buy|2", "4242")
        assert "Redeem Day off for 100 points?" in private + seen, (private, seen)
        [confirm] = sorted(set(tokens(private + seen, "redeem", "submit")))
        private, seen = await click(d, "Ana Lopez", confirm, "4242")
        assert "Day off is waiting for approval" in private + seen, (private, seen)
        private, seen = await click(d, "Ana Lopez", confirm, "4242")
        assert "That card is out of date" in private + seen
        assert (await w.core.shop.balance(ana)).spent == 100
        [pending] = await w.core.shop.list(state="requested")

        # The approval card goes to the channel and to Ada's direct chat.
        report = await w.notifier.deliver_due()
        assert report.failed == 0 and report.sent >= 2, report
        message = await channel_message(w, platform, "redemption_requested")
        posted = everything_since(w, (0, 0, 0))
        assert "Ana Lopez would like Day off" in posted
        approve = f"rw1|approval|ok|{pending.id}"
        assert approve in posted and f"rw1|approval|no|{pending.id}" in posted

        # Only an admin; one decision however often it is pressed.
        private, seen = await click(d, "Li Wei", approve, message)
        assert "Only an admin can approve or reject redemptions." in private
        private, seen = await click(d, "Ada Admin", approve, message)
        assert "You approved Ana Lopez's Day off" in private, (private, seen)
        assert "Approved by Ada Admin" in seen and approve not in seen
        private, _ = await click(d, "Ada Admin", approve, message)
        assert "already approved by Ada Admin" in private, private
        if platform == "teams":  # clients without Action.Execute send an Action.Submit message
            said = await teams_submit(w, "Ada Admin", {"token": approve})
            assert "already approved by Ada Admin" in said, said
        assert (await w.core.shop.get(pending.id)).state == "approved"

        # The member is told, in their direct chat.
        start = marks(w)
        report = await w.notifier.deliver_due()
        assert report.failed == 0 and report.sent >= 1, report
        told = everything_since(w, start)
        assert "Day off was approved" in told and "Good news, Ana!" in told
        # ...and the approval cards posted earlier are redrawn with the decision, no buttons.
        assert "Ana Lopez would like Day off" in told and approve not in told

        # A second one is rejected with a reason, which refunds it and is told.
        again = await w.core.shop.redeem(ana, "Day off", "for the 24th")
        await w.notifier.deliver_due()
        message = await channel_message(w, platform, "redemption_requested")
        seen = await reject_with_reason(
            d, f"rw1|approval|no|{again.id}", message, "Already off that week"
        )
        assert "You rejected Ana Lopez's Day off" in seen, seen
        rejected = await w.core.shop.get(again.id)
        assert (rejected.state, rejected.reason) == ("rejected", "Already off that week")
        assert (await w.core.shop.balance(ana)).spendable == 150
        start = marks(w)
        await w.notifier.deliver_due()
        told = everything_since(w, start)
        assert "Day off was not approved" in told and "Already off that week" in told

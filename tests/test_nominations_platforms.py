"""A nomination campaign end to end on each platform, through the real app and the fake servers.

One app runs the Teams, Slack and Telegram adapters and the notifier. On each platform: an admin
opens the campaign by command; the notifier posts the open card with its "Nominate" button;
people nominate (a self-nomination and one over the limit are refused in sentences); the clock
moves past the nominations and `advance` opens the vote; the notifier posts the ballot with a
button per candidate; five members click (one twice, one not eligible); the clicked ballot is
redrawn with only the number of voters, and each voter alone is told their vote; the admin
closes the campaign; the winner is awarded once and the winners card is posted; closing again
awards nothing more.
"""

from __future__ import annotations

import copy
import html
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import count as counter
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlmodel import col

from bots import notifier as notifier_setup
from bots import slack, teams, telegram
from bots.notifier import NOTIFIER, Notifier
from bots.server import create_app
from bots.slack import SLACK
from bots.telegram import SECRET_HEADER, WEBHOOK_PATH
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.services.members import link_account
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Award
from tests.factories import add_member, add_reward
from tests.support.slack_api import FakeSlackApi
from tests.support.teams_connector import FakeConnector, current_sdk
from tests.support.telegram_api import TOKEN, FakeBotAPI
from tests.test_slack import PAYLOADS as SLACK_PAYLOADS
from tests.test_slack import sign
from tests.test_teams import TEAM, TENANT, payload, profiles

REWARD = 7001
SLACK_CHANNEL = "C0TEAM001"
SLACK_TEAM = "T0001"
GROUP = -1001234567890
TG_SECRET = "s3cret"
PEOPLE = ("Ada Admin", "Ana Lopez", "Li Wei", "Bo Smith", "Cy Young", "Tim Temp")
_ids = counter(1)


def _n() -> int:
    return next(_ids)


@dataclass
class World:
    client: TestClient  # type: ignore[type-arg]
    core: Core
    clock: FixedClock
    connector: FakeConnector
    slack: FakeSlackApi
    telegram: FakeBotAPI
    members: dict[str, int]

    @property
    def notifier(self) -> Notifier:
        return self.client.app[NOTIFIER]


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
            telegram_chat_id=str(GROUP),
            announce_teams="Engineering",
            announce_slack=SLACK_CHANNEL,
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
            job = "MANAGER" if name == "Ada Admin" else "CONTRACTOR" if name == "Tim" else None
            member = await add_member(
                database, name, job_code=job or ("CONTRACTOR" if "Tim" in name else "EMPLOYEE")
            )
            members[name] = member
            await link_account(database, member, "teams", f"aad-{number}", tenant=TENANT)
            await link_account(database, member, "slack", f"U0PERSON{number}", tenant=SLACK_TEAM)
            await link_account(database, member, "telegram", str(500 + number))
        await add_reward(
            database,
            reward_id=REWARD,
            reward="Star of the Month",
            reward_type="Nomination Badge",
            points=100,
            nomination_config={
                "max_nominations_per_user": 1,
                "eligible_voters": {"job_codes": ["EMPLOYEE", "MANAGER"]},
            },
        )
        connector.clear()
        telegram_api.clear()
        yield World(client, core, clock, connector, slack_api, telegram_api, members)


def number_of(name: str) -> int:
    return PEOPLE.index(name) + 1


# --- one driver per platform: type a command, click a button, read what was posted -------------


@dataclass
class Clicked:
    private: str  # what only the voter saw
    card: str  # the clicked card as redrawn (JSON or text), or "" when it was left alone


@dataclass
class TeamsDriver:
    w: World
    name: str = "teams"
    mark: int = 0

    async def command(self, who: str, text: str) -> str:
        activity = payload("message_channel_kudos", self.w.connector)
        activity.update(
            id=f"1763479{_n():06d}",
            text=text,
            entities=[],
            **{"from": {"id": f"29:{who}", "name": who, "aadObjectId": f"aad-{number_of(who)}"}},
        )
        start = len(self.w.connector.sent)
        response = await self.w.client.post("/api/messages", json=activity)
        assert response.status == 200, await response.text()
        return "\n".join(
            s.text + json.dumps(s.cards, ensure_ascii=False) for s in self.w.connector.sent[start:]
        )

    def channel_cards(self) -> list[tuple[str, dict[str, Any]]]:
        """(message id, card) of every card posted into the channel, oldest first."""
        out = []
        for sent in self.w.connector.posted():
            if sent.conversation == TEAM:  # the "Engineering" channel the notifier posts in
                for card in sent.cards:
                    out.append((str(len(out)), card))
        return out

    def buttons(self, card: Any) -> dict[str, str]:
        return {a["title"]: a["data"]["token"] for a in card.get("actions", []) if "data" in a}

    def redrawn(self, word: str) -> int:
        """Channel messages replaced in place by a card containing `word`."""
        return sum(
            1
            for sent in self.w.connector.updated()
            if sent.conversation == TEAM and word in json.dumps(sent.cards, ensure_ascii=False)
        )

    async def click(self, who: str, token: str, message: str) -> Clicked:
        activity = copy.deepcopy(payload("invoke_execute", self.w.connector))
        activity["id"] = f"f:{uuid.uuid4()}"
        activity["from"] = {"id": f"29:{who}", "name": who, "aadObjectId": f"aad-{number_of(who)}"}
        activity["conversation"] = {
            "isGroup": True,
            "conversationType": "channel",
            "tenantId": TENANT,
            "id": f"{TEAM};messageid={message}",
        }
        activity["channelData"] = {
            "tenant": {"id": TENANT},
            "team": {"id": TEAM, "name": "Engineering"},
            "channel": {"id": TEAM, "name": "Engineering"},
        }
        activity["replyToId"] = message
        activity["value"]["action"]["verb"] = token
        activity["value"]["action"]["data"] = {"token": token}
        response = await self.w.client.post("/api/messages", json=activity)
        assert response.status == 200, await response.text()
        body = await response.json()
        if body["type"] == "application/vnd.microsoft.card.adaptive":
            card = json.dumps(body["value"], ensure_ascii=False)
            return Clicked(card, card)
        return Clicked(str(body["value"]), "")


@dataclass
class SlackDriver:
    w: World
    name: str = "slack"

    async def _post(self, body: str) -> None:
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
        response = await self.w.client.post("/slack/events", data=body, headers=headers)
        assert response.status == 200, await response.text()
        self.w.slack.answered(await response.text())  # a command's answer, as Slack posts it
        await self.w.client.app[SLACK].drain()

    def _since(self, start: int) -> str:
        calls = self.w.slack.calls[start:]
        return "\n".join(json.dumps(c.params, ensure_ascii=False) for c in calls)

    async def command(self, who: str, text: str) -> str:
        name, _, args = text[1:].partition(" ")
        raw = (SLACK_PAYLOADS / "slash_command.txt").read_text()
        body = dict(parse_qsl(raw, keep_blank_values=True))
        body.update(
            command=f"/{name}",
            text=args,
            user_id=f"U0PERSON{number_of(who)}",
            response_url=self.w.slack.response_url("command"),
            trigger_id=f"6276563421.4466731401.{uuid.uuid4().hex}",
        )
        start = len(self.w.slack.calls)
        await self._post(urlencode(body))
        return self._since(start)

    def redrawn(self, word: str) -> int:
        return sum(
            1
            for call in self.w.slack.calls
            if call.method == "chat.update"
            and call.params.get("channel") == SLACK_CHANNEL
            and word in json.dumps(call.params, ensure_ascii=False)
        )

    def channel_cards(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for call in self.w.slack.calls:
            if call.params in self.w.slack.public() and call.params.get("channel") in (
                SLACK_CHANNEL,
                None,  # a command's in_channel answer, posted where the command was typed
            ):
                blocks = call.params.get("blocks")
                if isinstance(blocks, str):
                    blocks = json.loads(blocks)
                out.append((str(len(out)), {"blocks": blocks}))
        return out

    def buttons(self, card: Any) -> dict[str, str]:
        return {
            e["text"]["text"]: e["value"]
            for b in card["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e.get("value")
        }

    async def click(self, who: str, token: str, message: str) -> Clicked:
        data = json.loads((SLACK_PAYLOADS / "block_actions.json").read_text())
        data["actions"][0].update(action_id=token, value=token)
        data["user"]["id"] = f"U0PERSON{number_of(who)}"
        data["trigger_id"] = f"6276563999.4466731401.{uuid.uuid4().hex}"
        data["response_url"] = self.w.slack.response_url("action")
        data["container"]["message_ts"] = data["message"]["ts"] = message
        start = len(self.w.slack.calls)
        await self._post(urlencode({"payload": json.dumps(data)}))
        calls = self.w.slack.calls[start:]
        private = [c for c in calls if c.method == "response_url"]
        assert all(c.params.get("response_type") == "ephemeral" for c in private), private
        assert not [c for c in calls if c.method == "chat.postMessage"], calls
        updates = [c for c in calls if c.method == "chat.update"]
        assert all(c.params.get("ts") == message for c in updates)
        return Clicked(
            " ".join(str(c.params.get("text")) for c in private),
            " ".join(json.dumps(c.params, ensure_ascii=False) for c in updates),
        )


@dataclass
class TelegramDriver:
    w: World
    name: str = "telegram"
    update_ids: Any = field(default_factory=lambda: counter(900000))

    async def _deliver(self, update: dict[str, Any]) -> None:
        response = await self.w.client.post(
            WEBHOOK_PATH, json=update, headers={SECRET_HEADER: TG_SECRET}
        )
        assert response.status == 200, await response.text()

    def _user(self, who: str) -> dict[str, Any]:
        first, _, last = who.partition(" ")
        return {"id": 500 + number_of(who), "is_bot": False, "first_name": first, "last_name": last}

    def _chat(self) -> dict[str, Any]:
        return {"id": GROUP, "title": "Engineering", "type": "supergroup"}

    async def command(self, who: str, text: str) -> str:
        update_id = next(self.update_ids)
        update = {
            "update_id": update_id,
            "message": {
                "message_id": update_id % 10000,
                "from": self._user(who),
                "chat": self._chat(),
                "date": 1795100460,
                "text": text,
                "entities": [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}],
            },
        }
        start = len(self.w.telegram.calls)
        await self._deliver(update)
        calls = self.w.telegram.calls[start:]
        return html.unescape("\n".join(json.dumps(c.params, ensure_ascii=False) for c in calls))

    def redrawn(self, word: str) -> int:
        return sum(
            1
            for call in self.w.telegram.calls
            if call.method == "editMessageText"
            and str(call.params.get("chat_id")) == str(GROUP)
            and word in json.dumps(call.params, ensure_ascii=False)
        )

    def channel_cards(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for call in self.w.telegram.calls:
            if call.method == "sendMessage" and str(call.params.get("chat_id")) == str(GROUP):
                out.append((str(len(out)), call.params))
        return out

    def buttons(self, params: Any) -> dict[str, str]:
        markup = params.get("reply_markup") or {}
        if isinstance(markup, str):
            markup = json.loads(markup)
        return {
            b["text"]: b.get("callback_data", "")
            for row in markup.get("inline_keyboard", [])
            for b in row
        }

    async def click(self, who: str, token: str, message: str) -> Clicked:
        update_id = next(self.update_ids)
        update = {
            "update_id": update_id,
            "callback_query": {
                "id": f"cbq-{update_id}",
                "from": self._user(who),
                "message": {
                    "message_id": int(message),
                    "from": {"id": 123456, "is_bot": True, "first_name": "Rewards"},
                    "chat": self._chat(),
                    "date": 1795100470,
                    "text": "ballot",
                },
                "chat_instance": "-7811112223334445556",
                "data": token,
            },
        }
        start = len(self.w.telegram.calls)
        await self._deliver(update)
        calls = self.w.telegram.calls[start:]
        assert not [c for c in calls if c.method == "sendMessage"], calls  # nothing in the chat
        [answer] = [c for c in calls if c.method == "answerCallbackQuery"]
        edits = [c for c in calls if c.method == "editMessageText"]
        assert all(int(c.params["message_id"]) == int(message) for c in edits)
        return Clicked(
            str(answer.params.get("text") or ""),
            html.unescape(" ".join(json.dumps(c.params, ensure_ascii=False) for c in edits)),
        )


Driver = TeamsDriver | SlackDriver | TelegramDriver


def driver_for(name: str, w: World) -> Driver:
    return {"teams": TeamsDriver, "slack": SlackDriver, "telegram": TelegramDriver}[name](w)


async def awards(database: Database) -> int:
    query = select(func.count()).select_from(Award).where(col(Award.reward_id) == REWARD)
    async with database.read() as session:
        return int(await session.scalar(query) or 0)


def last_card_with(driver: Driver, word: str) -> tuple[str, Any]:
    found = [(m, c) for m, c in driver.channel_cards() if word in json.dumps(c, ensure_ascii=False)]
    assert found, f"no channel card with {word!r} on {driver.name}"
    return found[-1]


@pytest.mark.parametrize("platform", ["teams", "slack", "telegram"])
async def test_a_full_campaign(database: Database, clock: FixedClock, platform: str) -> None:
    async with world(database, clock) as w:
        d = driver_for(platform, w)

        # Only an admin opens.
        said = await d.command("Ana Lopez", f"/nominations open {REWARD}")
        assert "Only an admin can open a nomination campaign." in said
        said = await d.command("Ada Admin", f"/nominations open {REWARD}")
        assert "for Star of the Month is open" in said
        [campaign] = await w.core.nominations.open_campaigns()

        report = await w.notifier.deliver_due()
        assert report.failed == 0 and report.sent >= 3, report
        _, opened = last_card_with(d, "Nominations are open")
        assert "Nominate" in d.buttons(opened)

        # Nominations: two accepted, a self-nomination and one over the limit refused.
        said = await d.command("Ana Lopez", "/nominate @li.wei rescued the release")
        assert "You nominated Li Wei for Star of the Month." in said
        said = await d.command("Li Wei", "/nominate @li.wei I am great")
        assert "You can't nominate yourself for Star of the Month." in said
        said = await d.command("Ana Lopez", "/nominate @bo.smith also great")
        assert "You have already made 1 nomination for Star of the Month, the most allowed." in (
            said
        )
        said = await d.command("Bo Smith", "/nominate @cy.young mentored two new hires")
        assert "You nominated Cy Young for Star of the Month." in said

        # The nominations close; voting opens with a ballot in the channel.
        w.clock.advance(timedelta(days=8))
        await w.core.nominations.advance(w.clock.now())
        report = await w.notifier.deliver_due()
        assert report.failed == 0, report
        _, ballot = last_card_with(d, "Vote Li Wei")
        recorded = (await w.core.nominations.get(campaign.id)).messages
        [message] = [
            str(m["message_id"])
            for m in recorded
            if m["platform"] == platform and m["kind"] == "nomination_voting"
        ]
        votes = d.buttons(ballot)
        assert set(votes) == {"Vote Li Wei", "Vote Cy Young"}
        text = json.dumps(ballot, ensure_ascii=False)
        assert "rescued the release" in text and "mentored two new hires" in text

        # Four members click, Bo twice (changing the vote); the candidates vote for each other
        # (not for themselves: `allow_self_vote` is off); Tim is not eligible.
        clicks = [
            ("Ana Lopez", "Vote Li Wei", "You voted for Li Wei"),
            ("Bo Smith", "Vote Cy Young", "You voted for Cy Young"),
            ("Bo Smith", "Vote Li Wei", "You changed your vote to Li Wei"),
            ("Li Wei", "Vote Cy Young", "You voted for Cy Young"),
            ("Cy Young", "Vote Li Wei", "You voted for Li Wei"),
        ]
        voters = set()
        for who, button, expected in clicks:
            clicked = await d.click(who, votes[button], message)
            assert expected in clicked.private, (who, clicked)
            voters.add(who)
            n = len(voters)
            assert f"{n} {'person has' if n == 1 else 'people have'} voted" in clicked.card
            assert "3 votes" not in clicked.card and "2 votes" not in clicked.card
        himself = await d.click("Li Wei", votes["Vote Li Wei"], message)
        assert "can't vote for yourself" in himself.private and himself.card == "", himself
        refused = await d.click("Tim Temp", votes["Vote Li Wei"], message)
        assert "Only people with" in refused.private and "can vote" in refused.private
        assert refused.card == ""

        stats = await w.core.nominations.stats(campaign.id)
        assert stats.voters == 4

        # The admin closes: Li wins once; the winners card has the tallies.
        said = await d.command("Ana Lopez", f"/nominations close {campaign.id}")
        assert "Only an admin can close a nomination campaign." in said
        said = await d.command("Ada Admin", f"/nominations close {campaign.id}")
        assert "Li Wei won Star of the Month!" in said
        assert await awards(database) == 1
        report = await w.notifier.deliver_due()
        assert report.failed == 0, report
        _, won = last_card_with(d, "won Star of the Month")
        text = json.dumps(won, ensure_ascii=False)
        assert "Li Wei" in text and "3 votes" in text and "1 vote" in text
        # The open card and the ballot are redrawn as the result: no buttons left to press.
        assert d.redrawn("won Star of the Month") == 2

        # Closing again awards nothing more and announces nothing new.
        await d.command("Ada Admin", f"/nominations close {campaign.id}")
        await w.core.nominations.advance(w.clock.now())
        assert await awards(database) == 1
        assert (await w.notifier.deliver_due()).sent == 0

        # Every posted channel card was recorded on the campaign.
        recorded = (await w.core.nominations.get(campaign.id)).messages
        kinds = {m["kind"] for m in recorded if m["platform"] == platform}
        assert kinds == {"nomination_open", "nomination_voting", "nomination_winners"}

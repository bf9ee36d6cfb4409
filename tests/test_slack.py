"""The Slack adapter end to end: signed requests into the real aiohttp app and slack-bolt, a fake
Slack Web API on 127.0.0.1 behind `SLACK_API_URL`, and the `database` fixture (SQLite and
PostgreSQL). Payloads are recorded Slack bodies from `tests/payloads/slack/`."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select
from sqlmodel import col

from bots.gateway import PostedMessage
from bots.server import create_app
from bots.slack import SLACK, SlackBot, SlackGateway, setup
from bots.slack.bot import COMMAND_BUDGET, command_answer, error_field, state_values
from bots.slack.gate import form_fields
from cards.actions import encode
from cards.screens import notice
from dialogs.engine import STALE, DialogEngine
from rewards.core import Core
from rewards.services import conversations
from rewards.services.channels import find_channel
from rewards.services.conversations import ConversationKey
from rewards.services.members import ensure_member_for_account, find_by_account
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Award, ChannelReference, InboundEvent, Kudos, KudosReceiver, Member
from tests.factories import add_member, add_reward
from tests.support.slack_api import FakeSlackApi

PAYLOADS = Path(__file__).parent / "payloads" / "slack"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-0000000000-test-token"
TEAM = "T0001"
CHANNEL = "C0TEAM001"
ANA, LI, BOB, BOSS = "U0ANA0001", "U0LI00001", "U0BOB0001", "U0BOSS001"


def sign(body: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body) or ""
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


@dataclass
class Slack:
    client: TestClient[Any, Any]
    api: FakeSlackApi
    bot: SlackBot
    db: Database

    async def post(
        self, body: str, content_type: str, headers: dict[str, str] | None = None
    ) -> ClientResponse:
        all_headers = {"Content-Type": content_type, **sign(body), **(headers or {})}
        return await self.client.post("/slack/events", data=body, headers=all_headers)

    def command_body(self, command: str, text: str, *, user: str = ANA, **fields: str) -> str:
        body = dict(parse_qsl((PAYLOADS / "slash_command.txt").read_text(), keep_blank_values=True))
        body.update(
            command=command,
            text=text,
            user_id=user,
            response_url=self.api.response_url("command"),
            trigger_id=f"6276563421.4466731401.{uuid.uuid4().hex}",
            **fields,
        )
        return urlencode(body)

    async def command(self, command: str, text: str = "", *, user: str = ANA) -> ClientResponse:
        response = await self.post(
            self.command_body(command, text, user=user), "application/x-www-form-urlencoded"
        )
        assert response.status == 200, await response.text()
        self.api.answered(await response.text())
        await self.bot.drain()
        return response

    async def interact(self, payload: dict[str, Any]) -> ClientResponse:
        body = urlencode({"payload": json.dumps(payload)})
        response = await self.post(body, "application/x-www-form-urlencoded")
        assert response.status == 200, await response.text()
        await self.bot.drain()
        return response

    async def click(
        self, token: str, *, user: str = ANA, ts: str = "1763990000.000001", ephemeral: bool = False
    ) -> None:
        payload = json.loads((PAYLOADS / "block_actions.json").read_text())
        payload["actions"][0].update(action_id=token, value=token)
        payload["container"]["is_ephemeral"] = ephemeral
        payload["user"]["id"] = user
        payload["trigger_id"] = f"6276563999.4466731401.{uuid.uuid4().hex}"
        payload["response_url"] = self.api.response_url("action")
        payload["container"]["message_ts"] = payload["message"]["ts"] = ts
        await self.interact(payload)

    async def submit(self, view: dict[str, Any], values: dict[str, Any], *, user: str) -> Any:
        """Fill the modal `view` (as sent to views.open) and submit it; returns the JSON answer.
        A users select takes a user id (several, as a list, for `multi_users_select`)."""
        payload = json.loads((PAYLOADS / "view_submission.json").read_text())
        state: dict[str, Any] = {}
        for block in view["blocks"]:
            if block["type"] != "input":
                continue
            element = block["element"]
            value = values.get(block["block_id"])
            entry: dict[str, Any] = {"type": element["type"]}
            if element["type"] == "static_select":
                chosen = [o for o in element["options"] if o["value"] == value]
                entry["selected_option"] = chosen[0] if chosen else None
            elif element["type"] == "multi_static_select":
                entry["selected_options"] = [
                    o for o in element["options"] if o["value"] in (value or [])
                ]
            elif element["type"] == "users_select":
                entry["selected_user"] = value
            elif element["type"] == "multi_users_select":
                entry["selected_users"] = list(value or [])
            else:
                entry["value"] = value
            state[block["block_id"]] = {element["action_id"]: entry}
        payload["user"]["id"] = user
        payload["trigger_id"] = f"6276564100.4466731401.{uuid.uuid4().hex}"
        payload["view"].update(
            callback_id=view["callback_id"],
            private_metadata=view["private_metadata"],
            blocks=view["blocks"],
            state={"values": state},
        )
        response = await self.interact(payload)
        text = await response.text()
        return json.loads(text) if text else None


@asynccontextmanager
async def slack_app(database: Database, **fields: Any) -> AsyncIterator[Slack]:
    """The app with Slack mounted against a fake Web API whose token belongs to `TEAM`; `fields`
    are further settings (e.g. `slack_team_ids`, `membership`)."""
    async with FakeSlackApi(team_id=TEAM) as api:
        api.add_user(ANA, "Ana Lopez", "ana.lopez@example.com")
        api.add_user(LI, "Li Wei", "li.wei@example.com", tz="Asia/Shanghai")
        api.add_user(BOB, "Bob Stone", "bob.stone@example.com")
        api.add_user(BOSS, "Bo Boss", "bo.boss@example.com")
        # No scheduler: its job_run bookkeeping would land at random in the tests that prove a
        # refused request wrote nothing; no Slack test needs a scheduled job.
        fields.setdefault("reward_scheduler", False)
        settings = Settings(
            database_url=database.url,
            extra={
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": api.api_url,
            },
            **fields,
        )
        app = create_app(settings, Core(settings=settings, db=database), platforms=False)
        assert setup(app, settings) is True
        async with TestClient(TestServer(app)) as client:
            bot = app[SLACK]
            # What a test asserts of an answer must not depend on how busy the machine is: the
            # 2-second budgets are for Slack; the tests of the slow paths set their own.
            bot.command_budget = bot.view_budget = 30.0
            yield Slack(client, api, bot, database)


async def count(database: Database, model: Any) -> int:
    """Rows of `model`; for awards, only those given by people (the example catalogue's automated
    badges fire on each member's first turn of the day, which these tests do not count)."""
    query = select(func.count()).select_from(model)
    if model is Award:
        query = query.where(col(Award.giver_id).is_not(None))
    async with database.read() as session:
        return int(await session.scalar(query) or 0)


async def add_badges(database: Database) -> None:
    await add_member(database, "Bo Boss", job_code="MANAGER")
    await add_member(database, "Li Wei")
    await add_reward(
        database,
        reward_id=1005,
        reward="Employee of the Month",
        points=200,
        assigner=[{"job_code": ["MANAGER"]}],
        awardee=[{"job_code": ["EMPLOYEE"]}],
    )


def button(blocks: list[dict[str, Any]], title: str) -> str:
    for block in blocks:
        for element in block.get("elements", []):
            if element.get("type") == "button" and element["text"]["text"] == title:
                return str(element["value"])
    raise AssertionError(f"no button {title!r} in {blocks!r}")


# --- setup ---------------------------------------------------------------------------------------


def test_setup_needs_token_and_secret() -> None:
    app = create_app(Settings(), platforms=False)
    assert setup(app, Settings()) is False
    assert setup(app, Settings(extra={"SLACK_BOT_TOKEN": BOT_TOKEN})) is False
    assert not [r for r in app.router.routes() if r.resource and "/slack" in r.resource.canonical]


def test_state_values_and_error_field() -> None:
    values = state_values(
        {
            "badge": {"badge": {"type": "static_select", "selected_option": {"value": "7"}}},
            "tags": {"tags": {"type": "multi_static_select", "selected_options": [{"value": "a"}]}},
            "message": {"message": {"type": "plain_text_input", "value": None}},
            "ok": {"ok": {"type": "checkboxes", "selected_options": [{"value": "true"}]}},
        }
    )
    assert values == {"badge": "7", "tags": ["a"], "message": "", "ok": "true"}
    from cards.model import Action as CardAction
    from cards.model import Card, Field, Form

    form = Card(
        "f",
        "F",
        "F",
        form=Form(
            (Field("badge", "Badge"), Field("recipient", "Recipient")), CardAction("Go", "t")
        ),
    )
    assert error_field(form, {"recipient": "@nobody"}, "I don't know anyone called @nobody.") == (
        "recipient"
    )
    assert error_field(form, {}, "Something else.") == "badge"
    assert notice("x").screen == "notice"


# --- commands ------------------------------------------------------------------------------------


async def test_kudos_with_mentions(database: Database) -> None:
    async with slack_app(database) as slack:
        await slack.command("/kudos", f"<@{LI}> <@{BOB}|bob> great demo #teamwork")

        users_info = [p["user"] for p in slack.api.of("users.info")]
        assert sorted(users_info) == sorted([ANA, LI, BOB])  # each unknown user once
        # The kudos are the command's answer, posted by Slack in the command's channel for
        # everyone (no Web API call); the look-ups used the bot token.
        [posted] = slack.api.public()
        assert posted["response_type"] == "in_channel" and posted["via"] == "ack"
        assert not slack.api.of("chat.postMessage")
        assert "Li Wei" in posted["text"] and "Bob Stone" in posted["text"], posted
        assert posted["blocks"][0]["type"] == "header"
        assert slack.api.calls[0].auth == f"Bearer {BOT_TOKEN}"

        li = await find_by_account(database, "slack", LI, TEAM)
        bob = await find_by_account(database, "slack", BOB, TEAM)
        assert li is not None and bob is not None
        assert li.email == "li.wei@example.com" and li.timezone == "Asia/Shanghai"
        async with database.read() as session:
            receivers = set((await session.execute(select(col(KudosReceiver.member_id)))).scalars())
        assert receivers == {li.id, bob.id}
        channel = await find_channel(database, "slack", CHANNEL, tenant=TEAM)
        assert channel is not None and channel.kind == "channel"
        assert channel.reference["channel"] == CHANNEL

        # Known people are not looked up again. (/myrewards is how the manifest registers /me.)
        await slack.bot.core.hooks.drain()  # the kudos' event hooks (auto-enrolment) ran
        await slack.command("/myrewards")
        assert len(slack.api.of("users.info")) == 3
        # /me, then a progress card for the example catalogue's auto-enrolled workflow: both for
        # Ana alone; the kudos are the only public post.
        assert len(slack.api.public()) == 1
        mine, progress = slack.api.of("response_url")
        assert mine["response_type"] == progress["response_type"] == "ephemeral"
        assert "Ana Lopez" in mine["text"]
        assert "Product Knowledge" in json.dumps(progress["blocks"])


async def test_same_email_on_teams_and_slack_is_one_member(database: Database) -> None:
    teams = await ensure_member_for_account(
        database, "teams", "29:1abc", tenant="tid", email="li.wei@example.com", display_name="Li"
    )
    async with slack_app(database) as slack:
        await slack.command("/kudos", f"<@{LI}> thanks for the review")
        slack_li = await find_by_account(database, "slack", LI, TEAM)
        assert slack_li is not None and slack_li.id == teams.id
        assert {a.platform for a in slack_li.accounts} == {"teams", "slack"}
        assert await count(database, Member) == 2  # Li and the sender Ana


async def test_personal_answers_refusals_and_help_are_ephemeral(database: Database) -> None:
    """Only the team's news is posted in the channel: someone's own rewards, help, look-ups and
    refusals are the ephemeral answer of their command, which no one else sees."""
    async with slack_app(database) as slack:
        await slack.command("/kudos", f"<@{LI}> great demo")  # public: the team should see it
        await slack.bot.core.hooks.drain()
        [kudos] = slack.api.public()
        assert "Ana Lopez gave kudos to Li Wei" in kudos["text"]
        answers = len(slack.api.of("response_url"))

        await slack.command("/myrewards", user=LI)  # "Li Wei: 5 points" is Li's business
        await slack.command("/help")
        await slack.command("/leaderboard")
        await slack.command("/kudos", "thanks, nobody")  # refused: nobody named
        await slack.command("/kudos", f"<@{ANA}> me, myself and I")  # refused: oneself

        assert len(slack.api.public()) == 1  # still only the kudos
        assert not slack.api.of("chat.update")
        said = slack.api.of("response_url")[answers:]
        assert said and all(a["response_type"] == "ephemeral" for a in said), said
        shown = json.dumps(said, ensure_ascii=False)
        assert "Li Wei" in shown and "5 points" in shown  # /myrewards, to Li alone
        assert "/kudos" in shown and "/leaderboard" in shown  # the help
        assert "Who are the kudos for?" in shown
        assert all(a["blocks"] and a["text"] for a in said if "blocks" in a)


async def test_private_cards_in_a_dm_and_after_a_modal(database: Database) -> None:
    """Without a response URL a private card is a DM message (in the bot's DM) or
    chat.postEphemeral (in a channel, after a modal); never a channel post."""
    async with slack_app(database) as slack:
        event = json.loads((PAYLOADS / "app_mention.json").read_text())
        event["event"].update(
            type="message", channel_type="im", channel="D0ANA0001", text="help", ts="1.2"
        )
        event["event_id"] = "Ev0HELPDM1"
        assert (await slack.post(json.dumps(event), "application/json")).ok
        await slack.bot.drain()
        [dm] = slack.api.of("chat.postMessage")
        assert dm["channel"] == "D0ANA0001" and "/kudos" in json.dumps(dm["blocks"])

        await slack.command("/kudos")  # the kudos form opens as a modal
        view = slack.api.of("views.open")[0]["view"]
        typed = {"recipients__custom": "@nobody", "message": "hi"}
        answer = await slack.submit(view, typed, user=ANA)
        assert answer["response_action"] == "errors"  # the refusal stays in the modal
        assert len(slack.api.of("chat.postMessage")) == 1 and not slack.api.of("chat.postEphemeral")


async def test_cancel_says_so_ephemerally(database: Database) -> None:
    async with slack_app(database) as slack:
        await slack.command("/cancel")
        [said] = slack.api.of("response_url")
        assert said["response_type"] == "ephemeral" and "nothing to cancel" in said["text"]


# --- modals and buttons --------------------------------------------------------------------------


async def test_guided_badge_modal_confirm_award_and_double_click(database: Database) -> None:
    await add_badges(database)
    async with slack_app(database) as slack:
        await slack.command("/badge", user=BOSS)
        [opened] = slack.api.of("views.open")
        view = opened["view"]
        assert opened["trigger_id"].startswith("6276563421.")
        assert view["type"] == "modal" and view["callback_id"].startswith("rw1|badge|submit|")
        metadata = json.loads(view["private_metadata"])
        assert metadata == {"channel": CHANNEL, "team": TEAM, "step": "pick"}
        assert not slack.api.of("chat.postMessage")

        answer = await slack.submit(
            view,
            {"badge": "1005", "recipient__custom": "@li.wei", "message": "Stellar month"},
            user=BOSS,
        )
        assert answer == {"response_action": "clear"}
        # The confirmation is for the giver alone.
        [confirm] = slack.api.of("chat.postEphemeral")
        assert confirm["channel"] == CHANNEL and confirm["user"] == BOSS
        assert "Li Wei" in json.dumps(confirm["blocks"])
        assert not slack.api.of("chat.postMessage")
        assert await count(database, Award) == 0

        # "Give badge" on that ephemeral message: the confirmation goes, the award is posted.
        give = button(confirm["blocks"], "Give badge")
        await slack.click(give, user=BOSS, ephemeral=True)
        [gone] = slack.api.of("response_url")
        assert gone["delete_original"] is True
        [posted] = slack.api.of("chat.postMessage")
        assert posted["channel"] == CHANNEL
        assert "Li Wei received Employee of the Month from Bo Boss" in json.dumps(posted)
        assert not slack.api.of("chat.update")  # an ephemeral message cannot be edited
        assert await count(database, Award) == 1

        # A second click on the same button: polite, nothing written twice.
        await slack.click(give, user=BOSS, ephemeral=True)
        assert await count(database, Award) == 1
        assert len(slack.api.of("chat.postMessage")) == 1
        said = slack.api.of("response_url")[-1]
        assert said["text"] == STALE and said["response_type"] == "ephemeral"


async def test_modal_validation_errors(database: Database) -> None:
    await add_badges(database)
    async with slack_app(database) as slack:
        await slack.command("/badge", user=BOSS)
        view = slack.api.of("views.open")[0]["view"]

        answer = await slack.submit(
            view, {"badge": "1005", "recipient__custom": "@nobody", "message": ""}, user=BOSS
        )
        assert answer["response_action"] == "errors"
        assert list(answer["errors"]) == ["recipient__custom"]  # under the typed input
        assert "@nobody" in answer["errors"]["recipient__custom"]
        assert "pick them from the list" in answer["errors"]["recipient__custom"]

        answer = await slack.submit(
            view,
            {"badge": "1005", "recipient__custom": "bo.boss@example.com", "message": ""},
            user=BOSS,
        )
        assert answer["response_action"] == "errors"
        [sentence] = answer["errors"].values()
        assert sentence == "You can't give Employee of the Month to yourself."
        input_blocks = {b["block_id"] for b in view["blocks"] if b["type"] == "input"}
        assert set(answer["errors"]) <= input_blocks
        assert not slack.api.of("chat.postMessage")
        assert await count(database, Award) == 0

        # The same modal, corrected, goes through (the refusal moved the conversation on).
        answer = await slack.submit(
            view, {"badge": "1005", "recipient__custom": "@li.wei", "message": ""}, user=BOSS
        )
        assert answer == {"response_action": "clear"}
        assert "Give badge" in json.dumps(slack.api.of("chat.postEphemeral")[0]["blocks"])


async def test_stale_and_foreign_buttons_are_polite(database: Database) -> None:
    async with slack_app(database) as slack:
        await slack.click(encode("badge", "submit", "old-nonce"))
        await slack.click("not-one-of-ours")
        said = [p["text"] for p in slack.api.of("response_url")]
        assert said[0] == STALE
        assert "don't recognise that button" in said[1]
        assert not slack.api.of("chat.update") and not slack.api.of("chat.postMessage")


# --- authenticity, retries, timing ---------------------------------------------------------------


async def _nothing_written(database: Database) -> None:
    for model in (Member, ChannelReference, InboundEvent, Kudos):
        assert await count(database, model) == 0, model


async def test_forged_missing_and_stale_signatures_are_401(database: Database) -> None:
    async with slack_app(database) as slack:
        body = slack.command_body("/kudos", f"<@{LI}> great demo")
        forged = {**sign(body), "X-Slack-Signature": "v0=" + "0" * 64}
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        response = await slack.client.post("/slack/events", data=body, headers={**form, **forged})
        assert response.status == 401
        response = await slack.client.post("/slack/events", data=body, headers=form)
        assert response.status == 401
        old = sign(body, int(time.time()) - 6 * 60)
        response = await slack.client.post("/slack/events", data=body, headers={**form, **old})
        assert response.status == 401
        # Signed for another body (tampered text).
        tampered = body.replace("great", "awful")
        response = await slack.client.post(
            "/slack/events", data=tampered, headers={**form, **sign(body)}
        )
        assert response.status == 401
        await slack.bot.drain()
        assert slack.api.calls == []
        await _nothing_written(database)


async def test_retries_are_processed_once(database: Database) -> None:
    async with slack_app(database) as slack:
        event = (PAYLOADS / "app_mention.json").read_text()
        for retry in ("", "1", "2"):
            headers = {"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"}
            response = await slack.post(event, "application/json", headers if retry else None)
            assert response.status == 200
            await slack.bot.drain()
        assert await count(database, Kudos) == 1
        [posted] = slack.api.of("chat.postMessage")
        assert "Li Wei" in posted["text"]

        # A slash command delivered twice (same trigger id) also runs once.
        body = slack.command_body("/help", "")
        for retry in ("", "1"):
            retried = {"X-Slack-Retry-Num": retry} if retry else None
            answer = await slack.post(body, "application/x-www-form-urlencoded", retried)
            assert answer.ok
            slack.api.answered(await answer.text())  # the retry's answer is empty
            await slack.bot.drain()
        assert len(slack.api.of("response_url")) == 1


async def test_ack_within_three_seconds_despite_a_slow_database(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = DialogEngine.handle

    async def slow(self: DialogEngine, turn: Any, event: Any) -> Any:
        await asyncio.sleep(5)
        return await original(self, turn, event)

    monkeypatch.setattr(DialogEngine, "handle", slow)
    async with slack_app(database) as slack:
        slack.bot.command_budget = COMMAND_BUDGET
        body = slack.command_body("/kudos", f"<@{LI}> great demo")
        started = time.monotonic()
        response = await slack.post(body, "application/x-www-form-urlencoded")
        elapsed = time.monotonic() - started
        assert response.status == 200 and elapsed < 3, elapsed
        assert not slack.api.of("chat.postMessage")
        await slack.bot.drain()
        [posted] = slack.api.of("chat.postMessage")
        assert "Li Wei" in posted["text"]


async def test_a_command_is_answered_in_its_ack(database: Database) -> None:
    """The HTTP answer of a slash command carries its reply, which Slack posts: the kudos for the
    whole channel (`in_channel`), anything else for the sender alone (`ephemeral`), with no Web
    API call; a form still opens as a modal (the answer is then empty)."""
    async with slack_app(database) as slack:
        response = await slack.post(
            slack.command_body("/kudos", f"<@{LI}> great demo"),
            "application/x-www-form-urlencoded",
        )
        answer = json.loads(await response.text())
        assert answer["response_type"] == "in_channel"
        assert answer["text"] == "Ana Lopez gave kudos to Li Wei"
        assert answer["blocks"][0]["type"] == "header"
        await slack.bot.drain()
        assert await count(database, Kudos) == 1
        assert set(slack.api.methods()) == {"users.info"}  # the look-ups, no post

        help_answer = await slack.post(
            slack.command_body("/help", ""), "application/x-www-form-urlencoded"
        )
        private = json.loads(await help_answer.text())
        assert private["response_type"] == "ephemeral" and private["blocks"]

        refused = await slack.post(
            slack.command_body("/kudos", f"<@{ANA}> me"), "application/x-www-form-urlencoded"
        )
        said = json.loads(await refused.text())
        assert said["response_type"] == "ephemeral" and "yourself" in json.dumps(said)

        form = await slack.post(
            slack.command_body("/kudos", ""), "application/x-www-form-urlencoded"
        )
        assert await form.text() == ""
        await slack.bot.drain()
        assert len(slack.api.of("views.open")) == 1
        assert not slack.api.of("chat.postMessage") and not slack.api.of("response_url")


async def test_slow_modal_submit_closes_the_modal_and_posts_later(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_badges(database)
    async with slack_app(database) as slack:
        await slack.command("/badge", user=BOSS)
        view = slack.api.of("views.open")[0]["view"]
        slack.bot.view_budget = 0.2
        original = DialogEngine.handle

        async def slow(self: DialogEngine, turn: Any, event: Any) -> Any:
            await asyncio.sleep(0.6)
            return await original(self, turn, event)

        monkeypatch.setattr(DialogEngine, "handle", slow)
        answer = await slack.submit(
            view, {"badge": "1005", "recipient__custom": "@li.wei", "message": ""}, user=BOSS
        )
        assert answer == {"response_action": "clear"}
        [confirm] = slack.api.of("chat.postEphemeral")
        assert "Give badge" in json.dumps(confirm["blocks"])


# --- gateway -------------------------------------------------------------------------------------


async def test_gateway_post_update_direct(database: Database) -> None:
    async with FakeSlackApi() as api:
        client = AsyncWebClient(token=BOT_TOKEN, base_url=api.api_url)
        core = Core(settings=Settings(database_url=database.url), db=database)
        gateway = SlackGateway(core, client)
        card = notice("Lottery drawn", title="News")

        posted = await gateway.post(CHANNEL, card, tenant=TEAM)
        assert posted == PostedMessage("slack", CHANNEL, posted.message_id, TEAM)
        assert api.of("chat.postMessage")[0]["text"] == card.summary
        await gateway.update(posted, notice("Closed", title="News"))
        assert api.of("chat.update")[0]["ts"] == posted.message_id

        li = await ensure_member_for_account(database, "slack", LI, tenant=TEAM, email="l@x.io")
        dm = await gateway.direct(li.id, card)
        assert dm is not None and dm.chat_id.startswith("D")
        assert api.of("conversations.open")[0]["users"] == LI
        teams_only = await ensure_member_for_account(database, "teams", "29:x", email="t@x.io")
        assert await gateway.direct(teams_only.id, card) is None


async def test_url_verification_challenge(database: Database) -> None:
    async with slack_app(database) as slack:
        body = json.dumps(
            {
                "token": "x",
                "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                "type": "url_verification",
            }
        )
        response = await slack.post(body, "application/json")
        assert response.status == 200
        assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in await response.text()


async def test_closing_the_modal_ends_the_dialog(database: Database) -> None:
    await add_badges(database)
    async with slack_app(database) as slack:
        await slack.command("/badge", user=BOSS)
        view = slack.api.of("views.open")[0]["view"]
        key = ConversationKey("slack", TEAM, CHANNEL, BOSS)
        assert await conversations.load(database, key, datetime.now(UTC)) is not None
        payload = json.loads((PAYLOADS / "view_submission.json").read_text())
        payload["type"] = "view_closed"
        payload["is_cleared"] = False
        del payload["trigger_id"]
        payload["user"]["id"] = BOSS
        payload["view"].update(
            callback_id=view["callback_id"], private_metadata=view["private_metadata"]
        )
        await slack.interact(payload)
        assert await conversations.load(database, key, datetime.now(UTC)) is None
        assert not slack.api.of("chat.postMessage") and not slack.api.of("response_url")


# --- escaping and failing Web API answers ---------------------------------------------------------

EVE = "U0EVE0001"


async def test_text_fallbacks_are_escaped_like_the_blocks(database: Database) -> None:
    """Slack reads `text` as markup too: a name or a message with `<!channel>` or a forged link
    must never ping the channel or link anywhere, in a post or in an ephemeral answer."""
    async with slack_app(database) as slack:
        slack.api.add_user(EVE, "<!channel> <https://evil.example|Eve>", "eve@example.com")
        await slack.command("/kudos", f"<@{EVE}> thanks <!here> & <https://evil.example|read>")
        [posted] = slack.api.public()  # the command's answer
        for markup in (posted["text"], json.dumps(posted["blocks"])):
            assert "<!channel>" not in markup and "<!here>" not in markup
            assert "<https://evil.example" not in markup
        assert posted["text"] == (
            "Ana Lopez gave kudos to &lt;!channel&gt; &lt;https://evil.example|Eve&gt;"
        )

        # A sentence (here from a direct message) is escaped too...
        event = json.loads((PAYLOADS / "app_mention.json").read_text())
        event["event"].update(type="message", channel_type="im", channel="D0ANA0001", ts="1.3")
        event["event"]["text"] = "/<!channel> <https://evil.example|x>"
        event["event_id"] = "Ev0ESCAPE1"
        assert (await slack.post(json.dumps(event), "application/json")).ok
        await slack.bot.drain()
        said = slack.api.of("chat.postMessage")[-1]
        assert said["channel"] == "D0ANA0001"
        assert said["text"].startswith("I don't know /&lt;!channel&gt;"), said
        # ...while the adapter's own mentions of people stay mentions.
        await slack.command("/kudos", "<@U0NOBODY1> thanks")
        refusal = slack.api.of("response_url")[-1]
        assert refusal["text"].startswith("<@U0NOBODY1> isn't in this rewards programme")


@pytest.mark.parametrize(
    "answer",
    [
        (502, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>"),
        (503, "text/plain", "upstream connect error or disconnect/reset before headers"),
        (500, "application/json", '{"ok": false, "error": "internal_er'),
    ],
    ids=["html", "plain", "truncated-json"],
)
async def test_a_web_api_answer_that_is_not_json_keeps_the_fallbacks(
    database: Database, answer: tuple[int, str, str]
) -> None:
    async with slack_app(database) as slack:
        # A command whose turn outlasts its budget is answered later with chat.postMessage.
        # The post fails without Slack's JSON: the command's response_url still carries it.
        slack.bot.command_budget = 0
        slack.api.broken["chat.postMessage"] = answer
        await slack.command("/kudos", f"<@{LI}> great demo")
        assert len(slack.api.of("chat.postMessage")) == 1
        [fallback] = slack.api.of("response_url")
        assert fallback["response_type"] == "in_channel"
        assert fallback["text"] == "Ana Lopez gave kudos to Li Wei" and fallback["blocks"]
        assert await count(database, Kudos) == 1

        # users.info fails the same way: the sender hears why, nothing is written for Bob.
        slack.api.broken["users.info"] = answer
        await slack.command("/kudos", f"<@{BOB}> thanks")
        said = slack.api.of("response_url")[-1]
        assert said["response_type"] == "ephemeral"
        assert (
            said["text"] == f"I couldn't look up <@{BOB}> just now. Please try again in a moment."
        )
        assert await count(database, Kudos) == 1


def test_a_command_form_reads_as_parse_qsl_reads_it() -> None:
    """The command's form is read without `parse_qsl` (it is on every command's path): the same
    fields, whatever the quoting, blanks and repeats."""
    forms = [
        urlencode({"command": "/kudos", "text": "<@U1> thanks & more 100% + \u00e9", "a": ""}),
        "command=%2Fkudos&text=a+b%2Bc&&flag&flag=2&=x&empty=&%E2%9C%93=ok&bad=%zz%E2",
        "",
        "payload=%7B%22type%22%3A%22block_actions%22%7D",
    ]
    for form in forms:
        assert form_fields(form) == dict(parse_qsl(form, keep_blank_values=True))


async def test_a_command_answer_is_what_bolt_would_send() -> None:
    """The command's HTTP answer is built directly, as bolt's adapter would build it."""
    for status, answer in ((200, {"text": "ok", "blocks": []}), (200, ""), (500, "")):
        ours = command_answer(answer, status=status)
        theirs = await to_aiohttp_response(BoltResponse(status=status, body=answer))
        assert (ours.status, ours.text, dict(ours.headers)) == (
            theirs.status,
            theirs.text,
            dict(theirs.headers),
        )

"""Teams: recorded activities through POST /api/messages, a fake Bot Connector for the replies."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from multidict import CIMultiDict
from sqlalchemy import func, select

from bots.server import CORE, create_app
from bots.teams import GATEWAY, is_loopback_request, make_adapter, make_handler, setup
from bots.teams.bot import RewardsTeamsBot, parse_text
from cards.screens import notice
from dialogs.events import Command, Text
from rewards.services.channels import find_channel
from rewards.services.members import ensure_member_for_account, find_by_account
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import (
    Award,
    ChannelReference,
    ConversationState,
    InboundEvent,
    Kudos,
    KudosReceiver,
    Member,
)
from tests.factories import add_reward
from tests.support.teams_connector import FakeConnector

PAYLOADS = Path(__file__).parent / "payloads" / "teams"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SAM_ID = "29:1SamSenderQx7Jt0Ezj3f2s9cL8-hQkZ_2Vn6oJ5nHq"
SAM_AAD = "6f1e4c1b-0a44-4d1c-9e57-3a1d0c9b7a01"
PERSONAL = "a:1Xk9vQ2mR7sT4uW8yZ0bC3dE6fG9hJ2kL5nP8qS1tV4wX7zA0cD3fG6iK9mN"
CHANNEL = "19:c9f2a4d1e0b64a1f8a3e2f1b0c9d8e7f@thread.tacv2"
TEAM = "19:a1b2c3d4e5f60718293a4b5c6d7e8f90@thread.tacv2"


def payload(name: str, connector: FakeConnector, **changes: Any) -> dict[str, Any]:
    raw = (PAYLOADS / f"{name}.json").read_text().replace("{SERVICE_URL}", connector.url)
    data: dict[str, Any] = json.loads(raw)
    data.update(changes)
    return data


def with_token(data: dict[str, Any], token: str, **values: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    if out["type"] == "invoke":
        out["value"]["action"]["verb"] = token
        out["value"]["action"]["data"] = {"token": token, **values}
    else:
        out["value"] = {"token": token, **values}
    return out


def profiles(connector: FakeConnector) -> None:
    connector.add_profile(
        SAM_ID, name="Sam Sender", aadObjectId=SAM_AAD, email="sam.sender@example.com"
    )
    connector.add_profile(
        "29:1AnaLopezVn8Rk2Pq0Wz5Yt7Ux3Sd9Fg1Hj4Kl6Zx8",
        name="Ana Lopez",
        aadObjectId="0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d",
        email="ana.lopez@example.com",
    )
    connector.add_profile(
        "29:1LiWeiTq4Bn7Mc2Xv9Za5Sd8Fg3Hj6Kl1Pq0Wo4Ei",
        name="Li Wei",
        aadObjectId="1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d",
        email="li.wei@example.com",
    )


async def count(database: Database, model: Any) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as fake:
        profiles(fake)
        yield fake


def make_app(database: Database, **settings: Any) -> tuple[web.Application, Settings]:
    openid = settings.pop("openid", None)
    # No scheduler: its own bookkeeping (job_run rows) would land at random in the tests that
    # prove a refused activity wrote nothing; no Teams test needs a scheduled job.
    settings.setdefault("reward_scheduler", False)
    config = Settings(database_url=database.url, catalog_files=(), **settings)
    app = create_app(config, platforms=False)
    setup(app, config, openid_metadata_url=openid)
    return app, config


@pytest.fixture
async def client(database: Database) -> AsyncIterator[TestClient]:
    app, _ = make_app(database)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


async def send(client: TestClient, activity: dict[str, Any], **headers: str) -> web.Response:
    return await client.post("/api/messages", json=activity, headers=headers)  # type: ignore[return-value]


def buttons(card: dict[str, Any]) -> dict[str, str]:
    return {a["title"]: a["data"]["token"] for a in card.get("actions", []) if "data" in a}


def card_text(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


# --- messages -----------------------------------------------------------------------------------


async def test_kudos_with_two_mentions(database, client, connector):
    response = await send(client, payload("message_channel_kudos", connector))
    assert response.status == 200, await response.text()

    assert await count(database, Kudos) == 1
    assert await count(database, KudosReceiver) == 2
    [reply] = connector.posted()
    assert reply.conversation.startswith(CHANNEL)  # the reply goes into the thread
    [card] = reply.cards
    text = card_text(card)
    assert "Ana Lopez" in text and "Li Wei" in text
    # Everyone was created from what Teams told us, emails fetched from the roster.
    ana = await find_by_account(database, "teams", "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d", TENANT)
    assert ana is not None and ana.email == "ana.lopez@example.com"
    sam = await find_by_account(database, "teams", SAM_AAD, TENANT)
    assert sam is not None and sam.email == "sam.sender@example.com"
    # ... and the channel (not the thread) is remembered for proactive posts.
    channel = await find_channel(database, "teams", CHANNEL, tenant=TENANT)
    assert channel is not None and channel.kind == "channel" and channel.name == "Kudos"


async def test_a_redelivered_message_is_handled_once(database, client, connector):
    activity = payload("message_channel_kudos", connector)
    assert (await send(client, activity)).status == 200
    assert (await send(client, activity)).status == 200
    assert await count(database, Kudos) == 1
    assert len(connector.posted()) == 1


async def test_leaderboard_without_a_slash_and_a_button(database, client, connector):
    await send(client, payload("message_channel_kudos", connector))
    connector.clear()
    message = payload("message_personal", connector, text="leaderboard", id="1763478060001")
    assert (await send(client, message)).status == 200
    [reply] = connector.posted()
    [card] = reply.cards
    assert "Ana Lopez" in card_text(card)
    assert reply.conversation == PERSONAL
    # A button on that card, pressed (Action.Execute): answered with a card, nothing left open.
    token = next(iter(buttons(card).values()))
    response = await send(client, with_token(payload("invoke_execute", connector), token))
    assert response.status == 200
    body = await response.json()
    assert body["statusCode"] == 200
    assert body["type"] in (
        "application/vnd.microsoft.card.adaptive",
        "application/vnd.microsoft.activity.message",
    )


async def test_chatter_gets_a_text_reply(database, client, connector):
    message = payload("message_personal", connector, text="hello there")
    assert (await send(client, message)).status == 200
    [reply] = connector.posted()
    assert reply.body["type"] == "message" and "/help" in reply.text
    assert reply.cards == []


def emulator_message(connector: FakeConnector, text: str) -> dict[str, Any]:
    """A personal message as the Bot Framework Emulator sends it (no Teams channel data)."""
    message = payload("message_personal", connector, text=text, channelId="emulator")
    message["from"] = {"id": "5a7f1c2e-emulator-user", "name": "User"}
    message["conversation"] = {"id": "8e4f2a60-emulator-conv|livechat"}
    message.pop("channelData")
    return message


async def test_the_emulator_gets_action_submit_cards(database, client, connector):
    assert (await send(client, emulator_message(connector, "help"))).status == 200
    [reply] = connector.posted()
    [card] = reply.cards
    assert {a["type"] for a in card.get("actions", [])} <= {"Action.Submit", "Action.OpenUrl"}
    member = await find_by_account(database, "teams", "5a7f1c2e-emulator-user")
    assert member is not None and member.display_name == "User"


def test_command_words() -> None:
    assert parse_text("/kudos @a thanks") == Text("/kudos @a thanks")
    assert parse_text("Kudos @a thanks") == Command("kudos", "@a thanks")
    assert parse_text("thanks a lot") == Text("thanks a lot")


# --- guided /badge ------------------------------------------------------------------------------


async def _badge_setup(database: Database) -> None:
    await add_reward(database, reward_id=9001, reward="Team Player", multiple=True)
    await ensure_member_for_account(
        database,
        "teams",
        "li-aad",
        tenant=TENANT,
        email="li.wei@example.com",
        display_name="Li Wei",
    )


async def _start_badge(
    client: TestClient, connector: FakeConnector, activity_id: str = "1763478060000"
) -> dict[str, Any]:
    message = payload("message_personal", connector, id=activity_id)
    assert (await send(client, message)).status == 200
    [reply] = connector.posted()
    [card] = reply.cards
    connector.clear()
    return card


FORM = {"badge": "9001", "recipient": "@li.wei@example.com", "message": "Always helps"}


async def test_guided_badge_with_action_execute(database, client, connector):
    await _badge_setup(database)
    picker = await _start_badge(client, connector)
    assert picker["actions"][0]["type"] == "Action.Execute"
    submit = picker["actions"][0]["data"]["token"]

    response = await send(client, with_token(payload("invoke_execute", connector), submit, **FORM))
    assert response.status == 200
    body = await response.json()
    assert body["type"] == "application/vnd.microsoft.card.adaptive", body
    confirm = body["value"]
    assert "Li" in card_text(confirm) and "Always helps" in card_text(confirm)
    assert await count(database, Award) == 0

    give = buttons(confirm)["Give badge"]
    click = with_token(payload("invoke_execute", connector), give)
    response = await send(client, click)
    body = await response.json()
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    assert "Team Player" in card_text(body["value"])
    assert await count(database, Award) == 1

    # A double click: the second press is answered politely and changes nothing.
    click["id"] = "f:second-click"
    response = await send(client, click)
    assert response.status == 200
    body = await response.json()
    assert body["type"] == "application/vnd.microsoft.activity.message"
    assert "out of date" in body["value"]
    assert await count(database, Award) == 1


async def test_guided_badge_with_action_submit(database, client, connector):
    await _badge_setup(database)
    picker = await _start_badge(client, connector)
    submit = picker["actions"][0]["data"]["token"]

    message = with_token(payload("message_submit", connector), submit, **FORM)
    assert (await send(client, message)).status == 200
    [update] = connector.updated()
    assert update.activity_id == "1763478061000"  # the clicked card is replaced
    [confirm] = update.cards
    assert "Always helps" in card_text(confirm)
    connector.clear()

    click = with_token(
        payload("message_submit", connector, id="1763478130000"), buttons(confirm)["Give badge"]
    )
    assert (await send(client, click)).status == 200
    assert await count(database, Award) == 1
    [awarded] = connector.updated()
    assert "Team Player" in card_text(awarded.cards[0])


async def _start_kudos(client: TestClient, connector: FakeConnector, activity_id: str) -> str:
    """`/kudos` in the personal chat: the kudos form; returns its submit token."""
    message = payload("message_personal", connector, id=activity_id, text="/kudos")
    assert (await send(client, message)).status == 200
    [reply] = connector.posted()
    [form] = reply.cards
    assert [i["id"] for i in form["body"] if i["type"].startswith("Input.")][:3] == [
        "recipients",  # the people picker
        "recipients__custom",  # typed @name or email
        "message",
    ]
    connector.clear()
    return str(form["actions"][0]["data"]["token"])


KUDOS_FORM = {"recipients": "@li.wei@example.com", "message": "if a<b and c>d, *great*"}


async def test_a_submitted_kudos_form_is_replaced_by_its_result(database, client, connector):
    """Like the badge flow, the kudos form is replaced by the kudos it sent (it stayed live, and a
    second press sent nothing but an out-of-date notice), whichever way the card submits; the
    message shows as typed (escaped for Teams markdown)."""
    await _badge_setup(database)  # Li is a member
    submit = await _start_kudos(client, connector, "1763478070000")
    response = await send(
        client, with_token(payload("invoke_execute", connector), submit, **KUDOS_FORM)
    )
    body = await response.json()
    assert body["type"] == "application/vnd.microsoft.card.adaptive", body  # replaces the form
    kudos = card_text(body["value"])
    assert "Li Wei" in kudos and r"if a\\<b and c\\>d, \\*great\\*" in kudos, kudos
    assert connector.posted() == [] and await count(database, Kudos) == 1

    submit = await _start_kudos(client, connector, "1763478070001")  # Action.Submit
    message = with_token(payload("message_submit", connector), submit, **KUDOS_FORM)
    assert (await send(client, message)).status == 200
    [update] = connector.updated()
    assert update.activity_id == "1763478061000"  # the submitted form is replaced
    assert "Li Wei" in card_text(update.cards[0])
    assert connector.posted() == [] and await count(database, Kudos) == 2


async def test_a_stale_card_changes_nothing(database, client, connector):
    await _badge_setup(database)
    old = await _start_badge(client, connector)
    await _start_badge(client, connector, "1763478060009")  # the picker again: a new nonce
    old_submit = old["actions"][0]["data"]["token"]
    response = await send(
        client, with_token(payload("invoke_execute", connector), old_submit, **FORM)
    )
    body = await response.json()
    assert body["type"] == "application/vnd.microsoft.activity.message"
    assert "out of date" in body["value"]
    async with database.read() as session:
        state = (await session.execute(select(ConversationState))).scalar_one()
    assert state.dialog == "badge"  # the open picker is kept
    assert await count(database, Award) == 0


async def test_an_unknown_token_is_answered(database, client, connector):
    response = await send(client, with_token(payload("invoke_execute", connector), "garbage"))
    assert response.status == 200
    body = await response.json()
    assert body["statusCode"] == 200 and body["type"].endswith("activity.message")


# --- install and identity -----------------------------------------------------------------------


async def test_install_stores_the_conversation_reference(database, client, connector):
    response = await send(client, payload("installation_update_personal", connector))
    assert response.status == 200
    personal = await find_channel(database, "teams", PERSONAL, tenant=TENANT)
    assert personal is not None and personal.kind == "personal"
    sam = await find_by_account(database, "teams", SAM_AAD, TENANT)
    assert sam is not None and personal.member_id == sam.id
    assert personal.reference["serviceUrl"] == connector.url
    assert personal.reference["conversation"]["id"] == PERSONAL

    response = await send(client, payload("conversation_update_team", connector))
    assert response.status == 200
    team = await find_channel(database, "teams", TEAM, tenant=TENANT)
    assert team is not None and team.kind == "channel" and team.name == "Engineering"
    assert connector.posted() == []


async def test_same_email_on_slack_and_teams_is_one_member(database, client, connector):
    slack = await ensure_member_for_account(
        database, "slack", "U024BE7LH", tenant="T01", email="Sam.Sender@example.com"
    )
    message = payload("message_personal", connector, text="/me")
    assert (await send(client, message)).status == 200
    teams = await find_by_account(database, "teams", SAM_AAD, TENANT)
    assert teams is not None and teams.id == slack.id
    assert await count(database, Member) == 1


# --- the gateway --------------------------------------------------------------------------------


async def test_gateway_posts_updates_and_dms_proactively(database, client, connector):
    await send(client, payload("conversation_update_team", connector))
    await send(client, payload("installation_update_personal", connector))
    gateway = client.app[GATEWAY]
    core = client.app[CORE]

    posted = await gateway.post(TEAM, notice("Lottery winner: Ana", title="Lottery"), tenant=TENANT)
    [sent] = connector.posted()
    assert sent.conversation == TEAM and posted.message_id
    assert "Lottery winner: Ana" in card_text(sent.cards[0])

    await gateway.update(posted, notice("Closed", title="Lottery"))
    [update] = connector.updated()
    assert update.activity_id == posted.message_id

    sam = await find_by_account(core.db, "teams", SAM_AAD, TENANT)
    assert sam is not None
    dm = await gateway.direct(sam.id, notice("Happy birthday!"))
    assert dm is not None and dm.chat_id == PERSONAL
    assert connector.posted()[-1].conversation == PERSONAL
    assert await gateway.direct(sam.id + 999, notice("nobody")) is None


# --- authenticity -------------------------------------------------------------------------------


def _token(connector: FakeConnector, *, forged: bool = True) -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer = key if forged else connector.key
    now = int(time.time())
    claims = {
        "iss": "https://api.botframework.com",
        "aud": "00000000-1111-2222-3333-444444444444",
        "serviceurl": connector.url,
        "nbf": now - 10,
        "exp": now + 3600,
    }
    return jwt.encode(claims, signer, algorithm="RS256", headers={"kid": connector.kid})


async def _rows(database: Database) -> int:
    total = 0
    for model in (Member, ChannelReference, InboundEvent, Kudos, ConversationState):
        total += await count(database, model)
    return total


async def test_bad_tokens_are_401_and_write_nothing(database, connector):
    app, _ = make_app(
        database,
        bot_app_id="00000000-1111-2222-3333-444444444444",
        bot_app_secret="s3cret",
        openid=connector.openid_url,
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        activity = payload("message_channel_kudos", connector)
        for headers in (
            {},
            {"Authorization": "Bearer abc"},
            {"Authorization": "Basic dXNlcjpwYXNz"},
            {"Authorization": "Bearer " + _token(connector)},
        ):
            response = await send(test_client, activity, **headers)
            assert response.status == 401, (headers, await response.text())
        assert await _rows(database) == 0
        assert connector.sent == []

        # The control: the same check lets a token signed with the published key through.
        install = payload("conversation_update_team", connector)
        valid = {"Authorization": "Bearer " + _token(connector, forged=False)}
        assert (await send(test_client, install, **valid)).status == 200
        assert await find_channel(database, "teams", TEAM, tenant=TENANT) is not None


async def test_without_an_app_id_only_loopback_is_served(database, client, connector):
    activity = payload("message_channel_kudos", connector)
    response = await send(client, activity, **{"X-Forwarded-For": "203.0.113.7"})
    assert response.status == 401
    assert await _rows(database) == 0

    # A direct peer that is not this machine.
    settings = Settings(database_url=database.url)
    handler = make_handler(make_adapter(settings), RewardsTeamsBot(lambda: None), settings)  # type: ignore[arg-type,return-value]

    class Transport:
        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return ("10.1.2.3", 50000) if name == "peername" else default

    request = make_mocked_request(
        "POST",
        "/api/messages",
        headers={"Content-Type": "application/json"},
        transport=Transport(),
    )
    assert (await handler(request)).status == 401


@pytest.mark.parametrize(
    ("remote", "headers", "expected"),
    [
        ("127.0.0.1", {}, True),
        ("::1", {}, True),
        ("10.0.0.5", {}, False),
        (None, {}, False),
        ("127.0.0.1", {"X-Forwarded-For": "198.51.100.4"}, False),
        ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1"}, True),
        ("127.0.0.1", {"Forwarded": 'for="[2001:db8::1]:443"'}, False),
        ("127.0.0.1", {"Forwarded": 'for="[::1]:443";proto=http'}, True),
        ("127.0.0.1", {"Forwarded": "for=unknown"}, False),
    ],
)
def test_loopback_check(remote: str | None, headers: dict[str, str], expected: bool) -> None:
    assert is_loopback_request(remote, CIMultiDict(headers)) is expected
    assert is_loopback_request(remote, headers) is expected  # a plain mapping works too


async def test_malformed_bodies_are_refused(database, client, connector):
    for body, content_type, status in (
        (b"not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'{"text": "no type"}', "application/json", 400),
        (b"{}", "text/plain", 415),
    ):
        response = await client.post(
            "/api/messages", data=body, headers={"Content-Type": content_type}
        )
        assert response.status == status, body
    assert await _rows(database) == 0

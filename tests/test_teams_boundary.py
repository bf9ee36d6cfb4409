"""Teams: the tenant boundary, the Emulator's serviceUrl, membership and bounded mentions.

Every refused case goes through the real SDK's adapter (`TEAMS_SDK`; with an app id and a token
signed by the fake Bot Connector's published key, and without one as the Emulator does), writes
no row in any table (delivery-dedup markers aside) and is answered politely.
"""

from __future__ import annotations

import copy
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from botframework.connector.auth.microsoft_app_credentials import MicrosoftAppCredentials

from bots.server import CORE
from bots.teams import ADAPTER, GATEWAY
from bots.teams.bot import RewardsTeamsBot
from bots.teams.boundary import is_loopback_url, refusal_invoke_body
from cards.screens import notice
from rewards.errors import NotFound
from rewards.membership import BOT_REFUSAL, OUTSIDE_REFUSAL, not_a_member_sentence
from rewards.services.channels import find_channel, remember_channel
from rewards.services.members import (
    ensure_member_for_account,
    find_by_account,
    find_by_email,
)
from rewards.store.db import Database
from rewards.store.models import Kudos, Member
from tests.factories import add_member
from tests.support.rowcounts import assert_unchanged, table_counts
from tests.support.teams_connector import FakeConnector
from tests.test_teams import (
    BOTH_SDKS,
    CHANNEL,
    PERSONAL,
    SAM_AAD,
    SAM_ID,
    TENANT,
    _token,
    count,
    make_app,
    payload,
    profiles,
    send,
    with_token,
)

APP_ID = "00000000-1111-2222-3333-444444444444"
BOT_ID = f"28:{APP_ID}"
FOREIGN = "0badc0de-0000-4000-8000-00000000f00d"
ANA_ID = "29:1AnaLopezVn8Rk2Pq0Wz5Yt7Ux3Sd9Fg1Hj4Kl6Zx8"
MESSAGE_TYPE = "application/vnd.microsoft.activity.message"
MAX_RECEIVERS = 10


# --- helpers --------------------------------------------------------------------------------------


def in_tenant(activity: dict[str, Any], tenant: str) -> dict[str, Any]:
    """The activity as if sent from `tenant` (Teams names it in both places)."""
    out = copy.deepcopy(activity)
    out.setdefault("channelData", {})["tenant"] = {"id": tenant}
    out["conversation"]["tenantId"] = tenant
    return out


def mention(account_id: str, name: str) -> dict[str, Any]:
    return {
        "mentioned": {"id": account_id, "name": name},
        "text": f"<at>{name}</at>",
        "type": "mention",
    }


def kudos_to(
    connector: FakeConnector, people: list[tuple[str, str]], **changes: Any
) -> dict[str, Any]:
    """A channel message `@Kudos Bot kudos @A @B ... thanks` mentioning `people` (id, name)."""
    activity = payload("message_channel_kudos", connector, **changes)
    names = " ".join(f"<at>{name}</at>" for _, name in people)
    activity["text"] = f"<at>Kudos Bot</at> kudos {names} thanks for the demo"
    activity["entities"] = [mention(BOT_ID, "Kudos Bot")] + [mention(i, n) for i, n in people]
    return activity


def this_machines_other_address() -> str | None:
    """A non-loopback IPv4 address of this machine (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@dataclass
class Mode:
    """A server as deployed: with an app id (signed requests) or as for the Emulator."""

    name: str
    client: TestClient
    connector: FakeConnector

    def headers(self) -> dict[str, str]:
        if self.name == "emulator":
            return {}
        return {"Authorization": "Bearer " + _token(self.connector, forged=False)}

    async def send(self, activity: dict[str, Any]) -> aiohttp.ClientResponse:
        return await send(self.client, activity, **self.headers())  # type: ignore[return-value]


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as fake:
        profiles(fake)
        yield fake


@pytest.fixture(autouse=True)
def outbound_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """With an app id the bot asks Azure AD for a token to reply with; the fake Bot Connector
    does not check it, so no sign-in is needed (inbound tokens are still fully validated)."""
    monkeypatch.setattr(MicrosoftAppCredentials, "get_access_token", lambda self, *a, **k: "t")


def app_settings(mode: str, **settings: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"tenant_ids": (TENANT,), "bot_tenant_id": TENANT, **settings}
    if mode == "app id":
        values.update(bot_app_id=APP_ID, bot_app_secret="s3cret")
    return values


@pytest.fixture(params=["app id", "emulator"])
async def mode(
    request, database: Database, connector: FakeConnector, teams_sdk: str
) -> AsyncIterator[Mode]:
    openid = connector.openid_url if request.param == "app id" else None
    app, _ = make_app(database, openid=openid, **app_settings(request.param))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield Mode(request.param, client, connector)


@pytest.fixture
async def client(database: Database, teams_sdk: str) -> AsyncIterator[TestClient]:
    """The Emulator-mode server with REWARDS_TENANT_ID set (loopback connector)."""
    app, _ = make_app(database, tenant_ids=(TENANT,))
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


@pytest.fixture
async def directory(database: Database) -> AsyncIterator[TestClient]:
    app, _ = make_app(database, tenant_ids=(TENANT,), membership="directory")
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


# --- another tenant ------------------------------------------------------------------------------


@BOTH_SDKS
async def test_a_message_from_another_tenant_is_refused_and_writes_nothing(database, mode):
    await add_member(database, "Ana Lopez")
    before = await table_counts(database)
    activity = in_tenant(payload("message_channel_kudos", mode.connector), FOREIGN)
    response = await mode.send(activity)
    assert response.status == 200, await response.text()

    assert_unchanged(before, await table_counts(database))
    [reply] = mode.connector.posted()
    assert reply.text == OUTSIDE_REFUSAL and reply.cards == []
    assert reply.conversation.startswith(CHANNEL)  # answered where it was asked
    assert mode.connector.lookups == []  # nobody of that tenant was looked up


@BOTH_SDKS
async def test_a_card_action_from_another_tenant_is_refused(database, mode):
    before = await table_counts(database)
    click = in_tenant(with_token(payload("invoke_execute", mode.connector), "anything"), FOREIGN)
    response = await mode.send(click)
    assert response.status == 200
    assert await response.json() == {
        "statusCode": 200,
        "type": MESSAGE_TYPE,
        "value": OUTSIDE_REFUSAL,
    }
    assert_unchanged(before, await table_counts(database))
    assert mode.connector.sent == [] and mode.connector.lookups == []


@pytest.mark.parametrize("name", ["conversation_update_team", "installation_update_personal"])
async def test_an_install_in_another_tenant_writes_nothing(database, mode, name):
    before = await table_counts(database)
    response = await mode.send(in_tenant(payload(name, mode.connector), FOREIGN))
    assert response.status == 200
    assert_unchanged(before, await table_counts(database))
    assert mode.connector.sent == [] and mode.connector.lookups == []
    assert await find_channel(database, "teams", PERSONAL) is None


async def test_a_foreign_roster_email_never_merges_into_our_member(database, mode):
    """Someone in another tenant whose roster says sam.sender@example.com is not our Sam."""
    ours = await ensure_member_for_account(
        database, "slack", "U024BE7LH", tenant="T01", email="sam.sender@example.com"
    )
    before = await table_counts(database)
    message = in_tenant(payload("message_personal", mode.connector, text="/me"), FOREIGN)
    assert (await mode.send(message)).status == 200

    assert_unchanged(before, await table_counts(database))
    assert await find_by_account(database, "teams", SAM_AAD) is None
    sam = await find_by_email(database, "sam.sender@example.com")
    assert sam is not None and sam.id == ours.id and [a.platform for a in sam.accounts] == ["slack"]
    assert [s.text for s in mode.connector.posted()] == [OUTSIDE_REFUSAL]


async def test_two_different_tenants_in_one_activity_are_refused(database, mode):
    activity = payload("message_personal", mode.connector, text="/me")
    activity["conversation"]["tenantId"] = FOREIGN  # channelData still names ours
    before = await table_counts(database)
    assert (await mode.send(activity)).status == 200
    assert_unchanged(before, await table_counts(database))
    assert [s.text for s in mode.connector.posted()] == [OUTSIDE_REFUSAL]


async def test_our_tenant_is_served_in_both_modes(database, mode):
    """The control: the same activities from our tenant work, however the id is spelt."""
    activity = payload("message_channel_kudos", mode.connector)
    activity["channelData"]["tenant"]["id"] = TENANT.upper()
    activity["conversation"]["tenantId"] = TENANT.upper()
    assert (await mode.send(activity)).status == 200
    assert await count(database, Kudos) == 1
    [reply] = mode.connector.posted()
    assert "Ana Lopez" in str(reply.cards)


async def test_an_activity_without_a_tenant(database, mode):
    """Signed Teams traffic always names a tenant; only the Emulator may leave it out."""
    activity = payload("message_personal", mode.connector, text="/me")
    activity.pop("channelData")
    activity["conversation"].pop("tenantId")
    before = await table_counts(database)
    assert (await mode.send(activity)).status == 200
    [reply] = mode.connector.posted()
    if mode.name == "app id":
        assert reply.text == OUTSIDE_REFUSAL
        assert_unchanged(before, await table_counts(database))
    else:
        assert reply.text != OUTSIDE_REFUSAL
        assert await count(database, Member) == 1


async def test_with_an_app_id_and_no_tenant_list_a_warning_is_logged(database, caplog):
    caplog.set_level(logging.INFO, logger="bots.teams")
    make_app(database, bot_app_id=APP_ID, bot_app_secret="s3cret")
    assert "any tenant can use this bot" in caplog.text
    caplog.clear()
    make_app(database, bot_app_id=APP_ID, bot_app_secret="s3cret", tenant_ids=(TENANT,))
    make_app(database)  # the Emulator: its own warning, at the first request
    assert "any tenant can use this bot" not in caplog.text


def test_refused_invokes_are_answered_in_their_own_shape() -> None:
    assert refusal_invoke_body("task/fetch", "No.") == (
        200,
        {"task": {"type": "message", "value": "No."}},
    )
    status, body = refusal_invoke_body("composeExtension/query", "No.")
    assert status == 200 and body["composeExtension"]["text"] == "No."
    status, body = refusal_invoke_body("signin/verifyState", "No.")
    assert status == 403 and body["error"]["message"] == "No."


# --- the Emulator's serviceUrl --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:3978/", True),
        ("https://127.8.9.10/", True),
        ("http://localhost:55123", True),
        ("http://LOCALHOST./x", True),
        ("http://[::1]:9000/", True),
        ("http://192.0.2.2:3978/", False),
        ("https://smba.trafficmanager.net/amer/", False),
        ("http://127.0.0.1@attacker.example/", False),
        ("http://attacker.example\\@127.0.0.1/", False),
        ("http://127.0.0.1.nip.io/", False),
        ("http://2130706433/", False),
        ("http://0.0.0.0:3978/", False),
        ("ftp://127.0.0.1/", False),
        ("http://127.0.0.1:notaport/", False),
        ("", False),
        (None, False),
    ],
)
def test_loopback_urls(url: str | None, expected: bool) -> None:
    assert is_loopback_url(url) is expected


@pytest.fixture
async def wide_connector() -> AsyncIterator[tuple[FakeConnector, str]]:
    """A connector reachable through a non-loopback address of this machine."""
    address = this_machines_other_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    async with FakeConnector(host="0.0.0.0") as fake:
        profiles(fake)
        yield fake, fake.url_on(address)


@BOTH_SDKS
@pytest.mark.parametrize(
    "name", ["message_channel_kudos", "invoke_execute", "conversation_update_team"]
)
async def test_without_an_app_id_a_non_loopback_service_url_is_never_called(
    database, wide_connector, name, teams_sdk
):
    connector, elsewhere = wide_connector
    app, _ = make_app(database)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        before = await table_counts(database)
        activity = payload(name, connector, serviceUrl=elsewhere)
        response = await send(client, activity)
        assert response.status == 403
        assert "serviceUrl" not in OUTSIDE_REFUSAL  # (the 403 is for the Emulator's developer)
        assert connector.requests == 0
        assert_unchanged(before, await table_counts(database))
        assert await find_channel(database, "teams", CHANNEL) is None

        # The bot itself drops it too, should anything hand it over without the HTTP check.
        bot = RewardsTeamsBot(lambda: app[CORE])
        backend = app[ADAPTER]
        await backend.process("", backend.parse(activity), bot.on_turn)
        assert connector.requests == 0
        assert_unchanged(before, await table_counts(database))

        # The controls: that address does reach the connector, and a loopback serviceUrl works.
        probe_url = elsewhere + "v3/conversations/c/members/nobody"
        async with aiohttp.ClientSession() as session, session.get(probe_url) as probe:
            assert probe.status == 404
        assert connector.requests == 1
        here = payload("message_channel_kudos", connector, serviceUrl=connector.url_on("127.0.0.1"))
        assert (await send(client, here)).status == 200
        assert connector.posted()


@BOTH_SDKS
async def test_the_gateway_never_posts_outside_the_boundary(database, client, connector):
    """References stored before REWARDS_TENANT_ID was set, or (Emulator) with a remote
    serviceUrl, are never used."""
    reference = {"serviceUrl": connector.url, "conversation": {"id": "19:old@thread.tacv2"}}
    await remember_channel(database, "teams", "19:old@thread.tacv2", reference, tenant=FOREIGN)
    remote = {"serviceUrl": "https://smba.example.net/", "conversation": {"id": "19:far"}}
    await remember_channel(database, "teams", "19:far", remote, tenant=TENANT)
    gateway = client.app[GATEWAY]
    with pytest.raises(NotFound):
        await gateway.post("19:old@thread.tacv2", notice("Hello"), tenant=FOREIGN)
    with pytest.raises(NotFound):
        await gateway.post("19:far", notice("Hello"), tenant=TENANT)
    member = await add_member(database, "Ana Lopez")
    await remember_channel(
        database, "teams", "a:far", remote, tenant=TENANT, kind="personal", member_id=member
    )
    assert await gateway.direct(member, notice("Hello")) is None
    assert connector.requests == 0


# --- mentions ------------------------------------------------------------------------------------


async def test_fifty_unknown_mentions_are_refused_at_once(database, client, connector):
    people = [(f"29:1Unknown{n:03d}", f"Person {n}") for n in range(50)]
    before = await table_counts(database)
    assert (await send(client, kudos_to(connector, people))).status == 200
    [reply] = connector.posted()
    assert reply.text == f"Kudos can go to at most {MAX_RECEIVERS} people at once."
    assert connector.lookups == []
    assert_unchanged(before, await table_counts(database))


async def test_kudos_to_a_bot_is_refused(database, client, connector):
    other_bot = ("28:99999999-8888-7777-6666-555555555555", "Polly")
    before = await table_counts(database)
    activity = kudos_to(connector, [(ANA_ID, "Ana Lopez"), other_bot])
    assert (await send(client, activity)).status == 200
    [reply] = connector.posted()
    assert reply.text == BOT_REFUSAL
    assert connector.lookups == []
    assert_unchanged(before, await table_counts(database))


async def test_a_channel_mention_is_not_a_person(database, client, connector):
    before = await table_counts(database)
    activity = kudos_to(connector, [("19:general@thread.tacv2", "General")])
    assert (await send(client, activity)).status == 200
    [reply] = connector.posted()
    assert "General" in reply.text and "one by one" in reply.text
    assert connector.lookups == []
    assert_unchanged(before, await table_counts(database))


@BOTH_SDKS
async def test_each_person_is_looked_up_once(database, client, connector):
    """Real mentions carry only the `29:` id; people are stored by their AAD object id."""
    activity = kudos_to(connector, [(ANA_ID, "Ana Lopez"), (ANA_ID, "Ana Lopez")])
    assert (await send(client, activity)).status == 200
    assert sorted(connector.lookups) == sorted([SAM_ID, ANA_ID])  # once each, in one request
    assert await count(database, Member) == 2
    connector.clear()
    again = kudos_to(connector, [(ANA_ID, "Ana Lopez")], id="1763478009999")
    assert (await send(client, again)).status == 200
    assert connector.lookups == []  # known, with their emails
    assert await count(database, Member) == 2
    assert await count(database, Kudos) == 2


# --- membership ----------------------------------------------------------------------------------


async def test_directory_refuses_a_stranger_and_writes_nothing(database, directory, connector):
    await add_member(database, "Ana Lopez")
    before = await table_counts(database)
    for name in ("message_personal", "message_channel_kudos"):
        assert (await send(directory, payload(name, connector))).status == 200
    install = payload("installation_update_personal", connector)
    assert (await send(directory, install)).status == 200
    click = with_token(payload("invoke_execute", connector), "anything")
    answer = await (await send(directory, click)).json()

    sentence = not_a_member_sentence("teams")
    assert [s.text for s in connector.posted()] == [sentence] * 3
    assert answer["value"] == sentence
    assert_unchanged(before, await table_counts(database))


async def test_directory_admits_an_imported_person(database, directory, connector):
    """Sam was imported from HR by email; the roster's email links his Teams account."""
    sam = await add_member(database, "Sam Sender")
    message = payload("message_personal", connector, text="/me")
    assert (await send(directory, message)).status == 200
    linked = await find_by_account(database, "teams", SAM_AAD, TENANT)
    assert linked is not None and linked.id == sam
    [reply] = connector.posted()
    assert reply.text != not_a_member_sentence("teams")
    assert await count(database, Member) == 1


async def test_directory_refuses_a_mentioned_stranger(database, directory, connector):
    await add_member(database, "Sam Sender")
    assert (await send(directory, payload("message_personal", connector, text="/me"))).status == 200
    connector.clear()
    before = await table_counts(database)
    activity = kudos_to(connector, [(ANA_ID, "Ana Lopez")])
    assert (await send(directory, activity)).status == 200
    [reply] = connector.posted()
    assert reply.text.startswith("Ana Lopez isn't in this rewards programme yet")
    assert connector.lookups == [ANA_ID]
    assert_unchanged(before, await table_counts(database))


# --- private turns -------------------------------------------------------------------------------


async def test_link_codes_are_given_in_the_personal_chat_only(database, client, connector):
    channel = kudos_to(connector, [])
    channel["text"] = "<at>Kudos Bot</at> /link"
    assert (await send(client, channel)).status == 200
    [reply] = connector.posted()
    assert "direct message" in reply.text
    connector.clear()
    personal = payload("message_personal", connector, text="/link", id="1763478060077")
    assert (await send(client, personal)).status == 200
    [reply] = connector.posted()
    assert "Your link code is" in reply.text

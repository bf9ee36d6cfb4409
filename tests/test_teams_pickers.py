"""The Teams people picker, end to end: recorded activities through POST /api/messages and a fake
Bot Connector (the roster), on SQLite and PostgreSQL.

Forms sent to Teams pick people with the Adaptive Card people picker (valid 1.5 plus Teams'
`choices.data`); what it submits, Azure AD object ids, is resolved to members through the
accounts we hold and the roster, and refused when neither knows the id or it belongs to another
tenant, before anything is written. Typed `@name or email` still works beside it, and the
Emulator gets the typed input alone."""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlmodel import col

from bots.teams.pickers import NOT_FOUND, OUTSIDE
from rewards.services.members import ensure_member_for_account, find_by_account
from rewards.store.db import Database
from rewards.store.models import Award, Kudos, KudosReceiver, Member
from tests import test_teams
from tests.support.teams_connector import FakeConnector
from tests.test_cards_adaptive import errors
from tests.test_teams import (
    TENANT,
    _badge_setup,
    card_text,
    count,
    emulator_message,
    payload,
    send,
    with_token,
)

client = test_teams.client  # the app, and the fake Bot Connector with its roster (fixtures)
connector = test_teams.connector

LI_AAD = "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"  # a member whose Teams account we hold
ANA_AAD = "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"  # known to the roster only
EVE_AAD = "9e8d7c6b-5a49-4c3d-8e2f-1a0b9c8d7e6f"  # someone of another tenant
NOBODY_AAD = "00000000-0000-4000-8000-000000000000"  # no one knows this id


async def setup_people(database: Database, connector: FakeConnector) -> int:
    """Li holds a Teams account by AAD id; Ana and Eve are in the roster; returns Li's id."""
    li = await ensure_member_for_account(
        database, "teams", LI_AAD, tenant=TENANT, email="li.wei@example.com", display_name="Li Wei"
    )
    connector.add_profile(
        ANA_AAD, name="Ana Lopez", aadObjectId=ANA_AAD, email="ana.lopez@example.com"
    )
    connector.add_profile(
        EVE_AAD,
        name="Eve Outsider",
        aadObjectId=EVE_AAD,
        email="eve@elsewhere.example",
        tenantId="0f0f0f0f-1111-4222-8333-444444444444",
    )
    return li.id


FORMS = itertools.count(1763478090000)


async def open_form(client: TestClient, connector: FakeConnector, text: str) -> dict[str, Any]:
    message = payload("message_personal", connector, id=str(next(FORMS)), text=text)
    assert (await send(client, message)).status == 200
    [reply] = connector.posted()
    [card] = reply.cards
    connector.clear()
    return card


async def execute(
    client: TestClient, connector: FakeConnector, token: str, **values: str
) -> dict[str, Any]:
    response = await send(client, with_token(payload("invoke_execute", connector), token, **values))
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


def inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for i in card["body"] if i["type"].startswith("Input.")}


async def receivers(database: Database) -> set[int]:
    async with database.read() as session:
        return set((await session.execute(select(col(KudosReceiver.member_id)))).scalars())


async def test_the_forms_carry_the_people_picker(database, client, connector):
    await _badge_setup(database)
    kudos = await open_form(client, connector, "/kudos")
    picker = inputs(kudos)["recipients"]
    assert picker["type"] == "Input.ChoiceSet" and picker["isMultiSelect"] is True
    assert picker["choices.data"] == {"type": "Data.Query", "dataset": "graph.microsoft.com/users"}
    assert inputs(kudos)["recipients__custom"]["type"] == "Input.Text"  # typed, as a fallback
    assert errors(kudos) == []  # Adaptive Card 1.5 with Teams' people picker

    badge = await open_form(client, connector, "/badge")
    assert inputs(badge)["recipient"]["isMultiSelect"] is False
    assert errors(badge) == []


async def test_the_emulator_types_people(database, client, connector):
    assert (await send(client, emulator_message(connector, "/kudos"))).status == 200
    [card] = connector.posted()[0].cards
    assert inputs(card)["recipients"]["type"] == "Input.Text"
    assert "recipients__custom" not in inputs(card)
    assert "choices.data" not in card_text(card)


async def test_picked_ids_give_kudos_to_the_right_members(database, client, connector):
    li = await setup_people(database, connector)
    form = await open_form(client, connector, "/kudos")
    body = await execute(
        client,
        connector,
        form["actions"][0]["data"]["token"],
        recipients=f"{LI_AAD},{ANA_AAD}",
        message="Shipped it",
    )
    assert body["type"] == "application/vnd.microsoft.card.adaptive", body
    assert "Li Wei and Ana Lopez" in card_text(body["value"])
    ana = await find_by_account(database, "teams", ANA_AAD, TENANT)
    assert ana is not None and ana.email == "ana.lopez@example.com"  # from the roster
    assert await receivers(database) == {li, ana.id}
    assert connector.lookups == [ANA_AAD]  # Li's account was known: no roster call


async def test_a_picked_badge_awardee_gets_the_badge(database, client, connector):
    await _badge_setup(database)
    li = await setup_people(database, connector)
    form = await open_form(client, connector, "/badge")
    submit = form["actions"][0]["data"]["token"]
    confirm = await execute(
        client, connector, submit, badge="9001", recipient=LI_AAD.upper(), message="Thanks"
    )
    assert "Li Wei" in card_text(confirm["value"])
    give = {a["title"]: a["data"]["token"] for a in confirm["value"]["actions"]}["Give badge"]
    await execute(client, connector, give)
    async with database.read() as session:
        awarded = list((await session.execute(select(col(Award.member_id)))).scalars())
    assert li in awarded


async def test_unknown_and_foreign_ids_are_refused_and_nothing_written(database, client, connector):
    await setup_people(database, connector)
    form = await open_form(client, connector, "/kudos")
    submit = form["actions"][0]["data"]["token"]
    members = await count(database, Member)
    for picked, sentence in [
        (f"{ANA_AAD},{NOBODY_AAD}", NOT_FOUND),
        (EVE_AAD, OUTSIDE),
    ]:
        body = await execute(client, connector, submit, recipients=picked, message="hi")
        assert body == {
            "statusCode": 200,
            "type": "application/vnd.microsoft.activity.message",
            "value": sentence,
        }
    assert await count(database, Kudos) == 0
    assert await count(database, Member) == members  # not even Ana, picked alongside
    assert connector.posted() == []

    # The same card, corrected, still works: a pick plus someone typed.
    await ensure_member_for_account(
        database, "teams", "bo-aad", tenant=TENANT, email="bo@example.com", display_name="Bo"
    )
    body = await execute(
        client,
        connector,
        submit,
        recipients=LI_AAD,
        recipients__custom="@bo@example.com",
        message="Thanks both",
    )
    assert body["type"] == "application/vnd.microsoft.card.adaptive", body
    assert "Li Wei and Bo" in card_text(body["value"])


async def test_typed_mentions_still_work_with_action_submit(database, client, connector):
    await setup_people(database, connector)
    form = await open_form(client, connector, "/kudos")
    submit = form["actions"][0]["data"]["token"]
    message = with_token(
        payload("message_submit", connector),
        submit,
        recipients="",
        recipients__custom="@li.wei@example.com",
        message="Typed",
    )
    assert (await send(client, message)).status == 200
    [update] = connector.updated()
    assert "Li Wei" in card_text(update.cards[0])
    assert await count(database, Kudos) == 1

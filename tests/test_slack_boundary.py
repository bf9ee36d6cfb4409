"""The Slack adapter's trust boundary and membership, tried as an outsider would: signed requests
(real slack-bolt, real `AsyncWebClient`) from other workspaces, Grid orgs, Slack Connect guests,
bots and strangers, against the fake Web API in `tests/support/slack_api.py`, on SQLite and
PostgreSQL. Every refusal must leave every table as it was (delivery markers aside) and be
answered with a short sentence only the person who asked can see."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import ClientResponse

from bots.slack.bot import UNAVAILABLE
from bots.slack.boundary import OwnApp, inside, origin
from rewards.membership import BOT_REFUSAL, OUTSIDE_REFUSAL, Boundary, issue_code
from rewards.membership.errors import not_a_member_sentence
from rewards.services.members import ensure_member_for_account, find_by_account
from rewards.store.db import Database
from rewards.store.models import Kudos, Member
from tests.factories import add_member
from tests.support.rowcounts import assert_unchanged, table_counts
from tests.support.slack_api import BOT_USER
from tests.test_slack import ANA, BOB, CHANNEL, LI, PAYLOADS, TEAM, Slack, count, slack_app

OTHER = "T0OTHER01"  # a workspace that is not ours
GUEST = "U0GUEST01"  # a Slack Connect guest from another organisation
HELPER = "U0HELPER1"  # a bot user of another app
APPUSER = "U0APPUSR1"  # an app user
STRANGER = "U0STRANGE"  # a person of our workspace who was never imported
LIMIT_SENTENCE = "Kudos can go to at most 10 people at once."


@asynccontextmanager
async def boundary_app(database: Database, **fields: Any) -> AsyncIterator[Slack]:
    async with slack_app(database, **fields) as slack:
        slack.api.add_user(GUEST, "Gus Guest", "gus@other.example", team_id=OTHER)
        slack.api.add_user(HELPER, "Helper Bot", "", is_bot=True)
        slack.api.add_user(APPUSER, "Some App", "", is_app_user=True)
        slack.api.add_user(STRANGER, "Sam Stranger", "sam.stranger@example.com")
        yield slack


async def command(
    slack: Slack, name: str, text: str = "", *, user: str = ANA, **fields: str
) -> ClientResponse:
    """A signed slash command (fields override the body, e.g. team_id); waits for its turn."""
    body = slack.command_body(name, text, user=user, **fields)
    response = await slack.post(body, "application/x-www-form-urlencoded")
    assert response.status == 200, await response.text()
    slack.api.answered(await response.text())
    await slack.bot.drain()
    return response


async def ack_json(response: ClientResponse) -> Any:
    text = await response.text()
    return json.loads(text) if text else None


def said(slack: Slack) -> list[str]:
    """Every sentence sent to the response URL (all of them ephemeral)."""
    answers = slack.api.of("response_url")
    assert all(a.get("response_type") == "ephemeral" for a in answers), answers
    return [a["text"] for a in answers]


def quiet_channel(slack: Slack) -> None:
    """Nothing was posted for everyone to see, and nobody was looked up."""
    assert not slack.api.public()
    assert not slack.api.of("users.info")


def mention_event(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((PAYLOADS / "app_mention.json").read_text())
    event = changes.pop("event", {})
    payload.update(changes)
    payload["event"].update(event)
    return payload


# --- the workspace boundary ----------------------------------------------------------------------


def test_origin_reads_every_workspace_a_body_names() -> None:
    boundary = Boundary(slack_teams=frozenset({TEAM, "E0GRID01"}))
    own = OwnApp(TEAM, "", BOT_USER)
    event = mention_event()
    assert origin(event).places == ((TEAM, ""), (TEAM, ""))
    assert inside(origin(event), boundary, own)
    # An installation in another workspace, a guest, an empty body.
    other_grant = mention_event(authorizations=[{"team_id": OTHER, "enterprise_id": None}])
    assert not inside(origin(other_grant), boundary, own)
    assert not inside(origin(mention_event(event={"user_team": OTHER})), boundary, own)
    assert not inside(origin({}), boundary, own)
    # A Grid org's person (user_team E…) inside a listed org; another org's person outside.
    grid = {"team": {"id": "T0WS0002"}, "enterprise": {"id": "E0GRID01"}}
    assert inside(origin(grid | {"user": {"team_id": "E0GRID01"}}), boundary, own)
    assert not inside(origin(grid | {"user": {"team_id": "E0ELSE01"}}), boundary, own)
    # Another workspace under a listed org may be the org's own: users.info decides in the turn.
    assert inside(origin(grid | {"user": {"team_id": "T0WS0003"}}), boundary, own)
    # Without SLACK_TEAM_IDS only the token's workspace, and nothing before auth.test answers.
    assert inside(origin({"team_id": TEAM}), Boundary(), own)
    assert not inside(origin({"team_id": TEAM}), Boundary(), None)
    assert not inside(origin({"team_id": OTHER}), Boundary(), own)


async def test_command_from_another_workspace_is_refused(database: Database) -> None:
    async with boundary_app(database) as slack:
        before = await table_counts(database)
        response = await command(slack, "/kudos", f"<@{LI}> great demo", team_id=OTHER)
        assert await ack_json(response) == {"response_type": "ephemeral", "text": OUTSIDE_REFUSAL}
        assert_unchanged(before, await table_counts(database))
        quiet_channel(slack)
        assert slack.api.methods() == []  # not even an ephemeral post: the ack said it
        # The boundary came from auth.test: the token's own workspace, and its bot user.
        assert slack.bot.own == OwnApp(TEAM, "", BOT_USER)

        # Our own workspace is served as before.
        await command(slack, "/kudos", f"<@{LI}> great demo")
        assert await count(database, Kudos) == 1

        # Once the token is checked, commands skip bolt: the boundary holds there too.
        before = await table_counts(database)
        response = await command(slack, "/kudos", f"<@{LI}> again", team_id=OTHER)
        assert await ack_json(response) == {"response_type": "ephemeral", "text": OUTSIDE_REFUSAL}
        assert_unchanged(before, await table_counts(database))


async def test_slack_team_ids_replace_the_token_workspace(database: Database) -> None:
    async with boundary_app(database, slack_team_ids=(TEAM, "T0SECOND")) as slack:
        slack.api.add_user("U0SECOND1", "Sue Second", "sue@example.com", team_id="T0SECOND")
        before = await table_counts(database)
        response = await command(slack, "/leaderboard", team_id="T0UNLIST")
        assert (await ack_json(response))["text"] == OUTSIDE_REFUSAL
        assert_unchanged(before, await table_counts(database))
        quiet_channel(slack)

        # A listed second workspace is served, with its own people.
        await command(slack, "/kudos", f"<@{LI}> thanks", user="U0SECOND1", team_id="T0SECOND")
        assert await count(database, Kudos) == 1
        sue = await find_by_account(database, "slack", "U0SECOND1", "T0SECOND")
        assert sue is not None and sue.display_name == "Sue Second"

    # A list without the token's own workspace: that workspace is outside too.
    async with boundary_app(database, slack_team_ids=("T0SECOND",)) as slack:
        before = await table_counts(database)
        response = await command(slack, "/help")
        assert (await ack_json(response))["text"] == OUTSIDE_REFUSAL
        assert_unchanged(before, await table_counts(database))


async def test_grid_org_listed_serves_its_workspaces(database: Database) -> None:
    async with boundary_app(database, slack_team_ids=("E0GRID01",)) as slack:
        for uid, name in (("W0GRIDANA", "Gia Grid"), ("W0GRIDLEE", "Lee Grid")):
            email = name.lower().replace(" ", ".") + "@example.com"
            slack.api.add_user(uid, name, email, team_id="T0WS0002")
        await command(
            slack,
            "/kudos",
            "<@W0GRIDLEE> shipped it",
            user="W0GRIDANA",
            team_id="T0WS0002",
            enterprise_id="E0GRID01",
        )
        assert await count(database, Kudos) == 1
        [posted] = slack.api.public()
        assert "Lee Grid" in posted["text"]

        # Someone of the org's other workspace clicks in this one: users.info vouches for them.
        # A Slack Connect guest in the same channel: users.info shows another organisation.
        slack.api.add_user(
            "W0SIBLING", "Sib Ling", "sib@example.com", team_id="T0WS0003", enterprise_id="E0GRID01"
        )
        slack.api.add_user("W0GUEST01", "Gil Guest", "gil@other.example", team_id="T0WS0404")
        before = await table_counts(database)
        for user, team in (("W0GUEST01", "T0WS0404"), ("W0SIBLING", "T0WS0003")):
            payload = json.loads((PAYLOADS / "block_actions.json").read_text())
            payload["team"]["id"] = "T0WS0002"
            payload["enterprise"] = {"id": "E0GRID01", "name": "Grid"}
            payload["user"].update(id=user, team_id=team)
            payload["trigger_id"] = f"6276563999.4466731401.{user}"
            payload["response_url"] = slack.api.response_url("action")
            payload["actions"][0].update(action_id="not-ours", value="not-ours")
            await slack.interact(payload)
            if user == "W0GUEST01":
                assert said(slack)[-1] == OUTSIDE_REFUSAL
                assert_unchanged(before, await table_counts(database))
        assert "don't recognise that button" in said(slack)[-1]
        sibling = await find_by_account(database, "slack", "W0SIBLING", "T0WS0002")
        assert sibling is not None and sibling.display_name == "Sib Ling"

        # Another Grid org is not ours.
        before = await table_counts(database)
        response = await command(
            slack, "/help", user="W0GRIDANA", team_id="T0WS0009", enterprise_id="E0ELSE01"
        )
        assert (await ack_json(response))["text"] == OUTSIDE_REFUSAL
        assert_unchanged(before, await table_counts(database))


async def test_auth_test_failing_serves_nobody_until_it_answers(database: Database) -> None:
    async with boundary_app(database) as slack:
        slack.api.auth_error = "invalid_auth"
        before = await table_counts(database)
        response = await command(slack, "/kudos", f"<@{LI}> great demo")
        assert await response.text() == UNAVAILABLE
        assert_unchanged(before, await table_counts(database))
        assert slack.bot.own is None
        quiet_channel(slack)

        slack.api.auth_error = None  # asked again on the next request
        await command(slack, "/kudos", f"<@{LI}> great demo")
        assert await count(database, Kudos) == 1
        assert slack.bot.own == OwnApp(TEAM, "", BOT_USER)
        assert len(slack.api.of("auth.test")) == 2


async def test_events_and_interactions_from_elsewhere(database: Database) -> None:
    async with boundary_app(database) as slack:
        before = await table_counts(database)
        # An event from another workspace, and one delivered for another installation: dropped.
        for body in (
            mention_event(team_id=OTHER, event_id="Ev0OTHER1", event={"team": OTHER}),
            mention_event(
                event_id="Ev0OTHER2",
                authorizations=[{"team_id": OTHER, "enterprise_id": None, "is_bot": True}],
            ),
        ):
            response = await slack.post(json.dumps(body), "application/json")
            assert response.status == 200 and await response.text() == ""
        await slack.bot.drain()

        # A button from another workspace: a polite ephemeral answer.
        payload = json.loads((PAYLOADS / "block_actions.json").read_text())
        payload["team"]["id"] = payload["user"]["team_id"] = OTHER
        payload["response_url"] = slack.api.response_url("action")
        await slack.interact(payload)
        assert said(slack) == [OUTSIDE_REFUSAL]

        # A modal submit from another workspace: the refusal shows in the modal.
        view_payload = json.loads((PAYLOADS / "view_submission.json").read_text())
        view_payload["team"]["id"] = view_payload["view"]["team_id"] = OTHER
        view_payload["view"]["blocks"] = [
            {"type": "input", "block_id": "badge", "element": {"type": "plain_text_input"}}
        ]
        answer = await ack_json(await slack.interact(view_payload))
        assert answer == {"response_action": "errors", "errors": {"badge": OUTSIDE_REFUSAL}}

        assert_unchanged(before, await table_counts(database))
        assert await table_counts(database) == before  # not even a delivery marker
        quiet_channel(slack)
        assert not slack.api.of("chat.postEphemeral")


async def test_shared_channel_guest_from_another_org(database: Database) -> None:
    async with boundary_app(database) as slack:
        before = await table_counts(database)
        # Their mention of the bot in a shared channel: dropped without a word.
        body = mention_event(event_id="Ev0GUEST1", event={"user": GUEST, "user_team": OTHER})
        response = await slack.post(json.dumps(body), "application/json")
        assert response.status == 200
        await slack.bot.drain()
        assert slack.api.methods() == []

        # Their click on a card in our workspace: refused politely.
        payload = json.loads((PAYLOADS / "block_actions.json").read_text())
        payload["user"].update(id=GUEST, team_id=OTHER)
        payload["response_url"] = slack.api.response_url("action")
        await slack.interact(payload)
        assert said(slack) == [OUTSIDE_REFUSAL]

        # Their slash command arriving with our workspace's id: users.info shows another org.
        await command(slack, "/kudos", f"<@{LI}> thanks", user=GUEST)
        assert said(slack)[-1] == OUTSIDE_REFUSAL
        assert_unchanged(before, await table_counts(database))
        assert not slack.api.of("chat.postMessage")

        # Our member naming the guest: they are not in the programme.
        await command(slack, "/kudos", f"<@{GUEST}> thanks for the review")
        assert said(slack)[-1] == (
            f"<@{GUEST}> isn't in this rewards programme yet, so I can't include them."
            " Please ask your admin to add them."
        )
        assert_unchanged(before, await table_counts(database))
        assert not slack.api.of("chat.postMessage")


# --- mentions ------------------------------------------------------------------------------------


async def test_fifty_unknown_mentions_are_refused_at_once(database: Database) -> None:
    async with boundary_app(database) as slack:
        before = await table_counts(database)
        mentions = " ".join(f"<@U0MANY{i:04d}>" for i in range(50))
        await command(slack, "/kudos", f"{mentions} thanks all")
        assert said(slack) == [LIMIT_SENTENCE]
        assert slack.api.of("users.info") == []
        assert await count(database, Member) == 0
        assert_unchanged(before, await table_counts(database))
        assert not slack.api.of("chat.postMessage")

        # Repeating one person does not count twice; ten people are fine.
        ten = " ".join(f"<@{u}>" for u in [LI, BOB] * 5)
        await command(slack, "/kudos", f"{ten} thanks both")
        assert await count(database, Kudos) == 1


async def test_unknown_mention_costs_one_lookup(database: Database) -> None:
    async with boundary_app(database) as slack:
        await command(slack, "/kudos", f"<@{LI}> <@{LI}|li> and <@U0NOBODY1> thanks")
        assert sorted(p["user"] for p in slack.api.of("users.info")) == sorted(
            [ANA, LI, "U0NOBODY1"]
        )
        # Slack does not know U0NOBODY1: nobody is made up for them.
        assert said(slack) == [
            "<@U0NOBODY1> isn't in this rewards programme yet, so I can't include them."
            " Please ask your admin to add them."
        ]
        assert await count(database, Member) == 0


async def test_a_failed_lookup_adds_nobody(database: Database) -> None:
    await ensure_member_for_account(database, "slack", ANA, tenant=TEAM, email="a@example.com")
    async with boundary_app(database) as slack:
        slack.api.users_info_error = "fatal_error"
        before = await table_counts(database)
        await command(slack, "/kudos", f"<@{LI}> thanks")
        [sentence] = said(slack)
        assert sentence == f"I couldn't look up <@{LI}> just now. Please try again in a moment."
        assert_unchanged(before, await table_counts(database))


async def test_bots_never_take_part(database: Database) -> None:
    async with boundary_app(database) as slack:
        before = await table_counts(database)
        for bot in (BOT_USER, HELPER, APPUSER, "USLACKBOT"):
            await command(slack, "/kudos", f"<@{bot}> thanks robot")
            assert said(slack)[-1] == BOT_REFUSAL, bot
        assert await count(database, Member) == 0
        assert_unchanged(before, await table_counts(database))
        assert not slack.api.of("chat.postMessage")
        # Our own bot user is known from auth.test: it is never looked up.
        assert BOT_USER not in {p["user"] for p in slack.api.of("users.info")}


async def test_known_members_cost_no_lookup(database: Database) -> None:
    await ensure_member_for_account(database, "slack", ANA, tenant=TEAM, email="a@example.com")
    await ensure_member_for_account(database, "slack", LI, tenant=TEAM, email="l@example.com")
    async with boundary_app(database, membership="directory") as slack:
        await command(slack, "/kudos", f"<@{LI}> thanks")
        assert slack.api.of("users.info") == []
        assert await count(database, Kudos) == 1


# --- membership ----------------------------------------------------------------------------------


async def test_directory_refuses_strangers_and_links_imported_people(database: Database) -> None:
    ana = await add_member(database, "Ana Lopez")  # ana.lopez@example.com, as in Slack
    li = await add_member(database, "Li Wei")
    async with boundary_app(database, membership="directory") as slack:
        before = await table_counts(database)
        await command(slack, "/kudos", f"<@{LI}> thanks", user=STRANGER)
        assert said(slack) == [not_a_member_sentence("slack")]
        assert "admin" in said(slack)[0]
        await command(slack, "/myrewards", user=STRANGER)
        assert said(slack)[-1] == not_a_member_sentence("slack")
        # An imported member naming a stranger.
        await command(slack, "/kudos", f"<@{STRANGER}> thanks")
        assert said(slack)[-1].startswith(f"<@{STRANGER}> isn't in this rewards programme yet")
        assert_unchanged(before, await table_counts(database))
        assert not slack.api.public()

        # Imported people are admitted and their Slack accounts linked by email.
        await command(slack, "/kudos", f"<@{LI}> great demo")
        slack_ana = await find_by_account(database, "slack", ANA, TEAM)
        slack_li = await find_by_account(database, "slack", LI, TEAM)
        assert slack_ana is not None and slack_ana.id == ana
        assert slack_li is not None and slack_li.id == li
        assert await count(database, Member) == 2
        assert await count(database, Kudos) == 1
        [posted] = slack.api.public()  # the command's answer, in its channel
        assert posted["response_type"] == "in_channel" and "Li Wei" in posted["text"]


async def test_directory_stranger_joins_with_a_link_code(database: Database) -> None:
    teams = await ensure_member_for_account(
        database, "teams", "29:1sam", tenant="tid", email="sam@corp.example", display_name="Sam"
    )
    async with boundary_app(database, membership="directory") as slack:
        code, _ = await issue_code(database, teams.id, "teams")
        await command(slack, "/link", code, user=STRANGER)
        assert "now part of Sam's rewards" in said(slack)[-1]
        linked = await find_by_account(database, "slack", STRANGER, TEAM)
        assert linked is not None and linked.id == teams.id


async def test_open_membership_admits_people_inside(database: Database) -> None:
    async with boundary_app(database) as slack:
        await command(slack, "/kudos", f"<@{STRANGER}> welcome aboard")
        sam = await find_by_account(database, "slack", STRANGER, TEAM)
        ana = await find_by_account(database, "slack", ANA, TEAM)
        assert sam is not None and sam.display_name == "Sam Stranger"
        assert ana is not None
        assert await count(database, Kudos) == 1

        # /link answers with a code: Slack's sentences are ephemeral, so the turn is private.
        await command(slack, "/link")
        assert said(slack)[-1].startswith("Your link code is ")


async def test_refusals_in_a_channel_are_ephemeral(database: Database) -> None:
    async with boundary_app(database) as slack:
        body = mention_event(
            event_id="Ev0BOTMEN1", event={"text": f"<@{BOT_USER}> kudos <@{HELPER}> thanks"}
        )
        response = await slack.post(json.dumps(body), "application/json")
        assert response.status == 200
        await slack.bot.drain()
        [whisper] = slack.api.of("chat.postEphemeral")
        assert whisper == {"channel": CHANNEL, "user": ANA, "text": BOT_REFUSAL}
        assert not slack.api.of("chat.postMessage")
        assert await count(database, Member) == 0


async def test_direct_message_addressed_to_the_bot(database: Database) -> None:
    async with boundary_app(database) as slack:
        await command(slack, "/help")  # the bot user is known from auth.test by now
        body = mention_event(
            event_id="Ev0DIRECT1",
            event={
                "type": "message",
                "channel_type": "im",
                "channel": "D0ANA0001",
                "text": f"<@{BOT_USER}> kudos <@{LI}> thanks for the review",
            },
        )
        response = await slack.post(json.dumps(body), "application/json")
        assert response.status == 200
        await slack.bot.drain()
        assert await count(database, Kudos) == 1


async def test_a_deactivated_slack_account_is_not_made_a_member(database: Database) -> None:
    async with boundary_app(database) as slack:
        slack.api.users[LI]["deleted"] = True  # Li left the company; Slack keeps the account
        await command(slack, "/kudos", f"<@{LI}> thanks")
        assert said(slack) == [
            f"<@{LI}> isn't in this rewards programme yet, so I can't include them."
            " Please ask your admin to add them."
        ]
        assert await count(database, Member) == 0

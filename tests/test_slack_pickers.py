"""People pickers in Slack modals, end to end: real slack-bolt and the adapter against the fake
Slack Web API on 127.0.0.1, on SQLite and PostgreSQL.

The kudos modal picks receivers with `multi_users_select`, the badge modal its awardee with
`users_select`; picked users go through the same vetting as `<@U…>` mentions (bots, deactivated
accounts and people of another workspace are refused under the field, and nothing is written).
The typed input next to each picker still takes emails, and Slack `@handles` are looked up in the
workspace's user list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlmodel import col

from bots.slack.bot import state_values
from bots.slack.pickers import FieldRefusal, HandleDirectory, picked_refusal, resolve_typed
from cards.nominations import nominate_form
from cards.render.blockkit import to_modal
from dialogs.events import Action
from rewards.membership import BOT_REFUSAL
from rewards.services.members import find_by_account
from rewards.store.db import Database
from rewards.store.models import Award, ChannelReference, Kudos, KudosReceiver, Member
from tests.factories import add_member
from tests.support.slack_api import BOT_USER, FakeSlackApi
from tests.test_slack import ANA, BOB, BOSS, LI, TEAM, add_badges, count, slack_app

OUTSIDER, ROBOT, GONE = "U0EVE0001", "U0ROBOT01", "U0GONE001"


def inputs(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The modal's input elements by block id."""
    return {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}


async def receivers(database: Database) -> set[int]:
    async with database.read() as session:
        return set((await session.execute(select(col(KudosReceiver.member_id)))).scalars())


def test_users_selects_in_state_values() -> None:
    values = state_values(
        {
            "recipients": {
                "recipients": {"type": "multi_users_select", "selected_users": [LI, "x>", BOB]}
            },
            "recipient": {"recipient": {"type": "users_select", "selected_user": None}},
            "nominee": {"nominee": {"type": "users_select", "selected_user": BOB}},
        }
    )
    # Picks read as mentions; anything that is no Slack user id is dropped.
    assert values == {
        "recipients": [f"<@{LI}>", f"<@{BOB}>"],
        "recipient": "",
        "nominee": f"<@{BOB}>",
    }
    refusal = picked_refusal(Action("t", values), f"<@{BOB}> isn't in this rewards programme", BOB)
    assert refusal == FieldRefusal(
        "The person you picked isn't in this rewards programme", field="recipients"
    )
    assert picked_refusal(Action("t", {}), "x") is None


@dataclass(frozen=True)
class Campaign:
    id: int
    reward_name: str
    status: str = "nominating"
    nominations_close_at: datetime | None = None


def test_the_nomination_modal_picks_one_person() -> None:
    card = nominate_form(
        [Campaign(7, "Star"), Campaign(8, "Mentor")],
        submit="s",
        cancel="c",
        values={"nominee": f"<@{LI}>", "campaign": "8"},
    )
    elements = inputs(to_modal(card, callback_id="s"))
    assert list(elements) == ["campaign", "nominee", "nominee__custom", "reason"]
    assert elements["nominee"]["type"] == "users_select"
    assert elements["nominee"]["initial_user"] == LI  # a one-line /nominate's pick, kept
    assert "initial_value" not in elements["nominee__custom"]


async def test_the_kudos_and_badge_modals_show_user_selects(database: Database) -> None:
    await add_badges(database)
    async with slack_app(database) as slack:
        await slack.command("/kudos")
        kudos = inputs(slack.api.of("views.open")[0]["view"])
        assert kudos["recipients"]["type"] == "multi_users_select"
        assert kudos["recipients__custom"]["type"] == "plain_text_input"  # emails, @handles
        await slack.command("/badge", user=BOSS)
        badge = inputs(slack.api.of("views.open")[1]["view"])
        assert badge["recipient"]["type"] == "users_select"
        assert list(badge) == ["badge", "recipient", "recipient__custom", "message"]


async def test_two_picked_people_get_kudos(database: Database) -> None:
    async with slack_app(database) as slack:
        await slack.command("/kudos")
        view = slack.api.of("views.open")[0]["view"]
        answer = await slack.submit(
            view, {"recipients": [LI, BOB], "message": "Great demo"}, user=ANA
        )
        assert answer == {"response_action": "clear"}
        await slack.bot.drain()

        li = await find_by_account(database, "slack", LI, TEAM)
        bob = await find_by_account(database, "slack", BOB, TEAM)
        assert li is not None and bob is not None
        assert li.email == "li.wei@example.com"  # from users.info, as for a mention
        assert await count(database, Kudos) == 1
        assert await receivers(database) == {li.id, bob.id}
        [posted] = slack.api.of("chat.postMessage")
        assert "Ana Lopez gave kudos to Li Wei and Bob Stone" in posted["text"]


async def test_a_picked_bot_outsider_or_leaver_is_refused_and_nothing_written(
    database: Database,
) -> None:
    async with slack_app(database) as slack:
        slack.api.add_user(OUTSIDER, "Eve Outsider", "eve@elsewhere.example", team_id="T0OTHER")
        slack.api.add_user(ROBOT, "Deploy Bot", "deploy@example.com", is_bot=True)
        slack.api.add_user(GONE, "Gone Person", "gone@example.com")
        slack.api.users[GONE]["deleted"] = True
        await slack.command("/kudos")
        view = slack.api.of("views.open")[0]["view"]
        members, channels = await count(database, Member), await count(database, ChannelReference)

        for picked, expected in [
            ([LI, ROBOT], BOT_REFUSAL),
            ([BOT_USER], BOT_REFUSAL),  # the rewards app itself
            ([OUTSIDER, LI], "The person you picked isn't in this rewards programme yet"),
            ([GONE], "The person you picked isn't in this rewards programme yet"),
        ]:
            answer = await slack.submit(view, {"recipients": picked, "message": "hi"}, user=ANA)
            assert answer["response_action"] == "errors", answer
            assert list(answer["errors"]) == ["recipients"]
            assert answer["errors"]["recipients"].startswith(expected), answer
            assert "<@" not in answer["errors"]["recipients"]  # plain text: no raw ids
        await slack.bot.drain()
        assert await count(database, Kudos) == 0
        assert await count(database, Member) == members  # not even Li, picked alongside
        assert await count(database, ChannelReference) == channels
        assert await find_by_account(database, "slack", LI, TEAM) is None
        assert not slack.api.of("chat.postMessage")

        # The same modal, corrected, goes through.
        answer = await slack.submit(view, {"recipients": [LI], "message": "hi"}, user=ANA)
        assert answer == {"response_action": "clear"}
        assert await count(database, Kudos) == 1


async def test_too_many_picks_are_refused_before_any_look_up(database: Database) -> None:
    async with slack_app(database, kudos_max_receivers=2) as slack:
        await slack.command("/kudos")
        view = slack.api.of("views.open")[0]["view"]
        looked_up = len(slack.api.of("users.info"))
        answer = await slack.submit(
            view, {"recipients": [LI, BOB, BOSS], "message": "hi"}, user=ANA
        )
        assert answer["response_action"] == "errors" and list(answer["errors"]) == ["recipients"]
        assert "2" in answer["errors"]["recipients"]
        assert len(slack.api.of("users.info")) == looked_up
        assert await count(database, Kudos) == 0


async def test_a_typed_slack_handle_is_looked_up(database: Database) -> None:
    async with slack_app(database) as slack:
        slack.api.users[LI].update(name="liwei")
        slack.api.users[LI]["profile"]["display_name"] = "liwei"
        await slack.command("/kudos")
        view = slack.api.of("views.open")[0]["view"]
        answer = await slack.submit(
            view, {"recipients__custom": "@LiWei", "message": "Thanks"}, user=ANA
        )
        assert answer == {"response_action": "clear"}
        li = await find_by_account(database, "slack", LI, TEAM)
        assert li is not None and await receivers(database) == {li.id}

        # Picked and typed together; the user list is read once for both submits.
        await slack.command("/kudos")
        view = slack.api.of("views.open")[1]["view"]
        answer = await slack.submit(
            view, {"recipients": [BOB], "recipients__custom": "@liwei", "message": "Both"}, user=ANA
        )
        assert answer == {"response_action": "clear"}
        assert await count(database, Kudos) == 2
        assert len(slack.api.of("users.list")) == 1


async def test_typed_emails_still_work_and_unknown_handles_are_refused(
    database: Database,
) -> None:
    await add_badges(database)  # Bo Boss and Li Wei, imported members (not yet in Slack)
    async with slack_app(database) as slack:
        await slack.command("/badge", user=BOSS)
        view = slack.api.of("views.open")[0]["view"]
        answer = await slack.submit(
            view, {"badge": "1005", "recipient__custom": "@ghost", "message": ""}, user=BOSS
        )
        assert answer["response_action"] == "errors"
        assert answer["errors"] == {
            "recipient__custom": "I can't find @ghost in this Slack workspace. Please pick them "
            "from the list, or type their email address."
        }
        answer = await slack.submit(
            view,
            {"badge": "1005", "recipient__custom": "li.wei@example.com", "message": ""},
            user=BOSS,
        )
        assert answer == {"response_action": "clear"}  # on to the confirmation
        [confirm] = slack.api.of("chat.postEphemeral")
        assert "Li Wei" in str(confirm["blocks"])
        assert await count(database, Award) == 0


async def test_a_picked_badge_awardee(database: Database) -> None:
    await add_badges(database)
    async with slack_app(database) as slack:
        await slack.command("/badge", user=BOSS)
        view = slack.api.of("views.open")[0]["view"]
        answer = await slack.submit(view, {"badge": "1005", "message": "Stellar"}, user=BOSS)
        assert answer == {
            "response_action": "errors",
            "errors": {"recipient": "Who gets it? Pick or name exactly one person."},
        }
        answer = await slack.submit(
            view, {"badge": "1005", "recipient": LI, "message": "Stellar"}, user=BOSS
        )
        assert answer == {"response_action": "clear"}
        [confirm] = slack.api.of("chat.postEphemeral")
        assert "Li Wei" in str(confirm["blocks"])
        # The imported member was linked to the picked Slack account, not duplicated.
        li = await find_by_account(database, "slack", LI, TEAM)
        assert li is not None and li.email == "li.wei@example.com"
        assert await count(database, Member) == 2


async def test_the_handle_directory(database: Database) -> None:
    """users.list read page by page, once per TTL; ambiguous, unknown and unreachable handles
    each get their own sentence; emails and members' own names are left to the dialog."""
    now = [0.0]
    async with FakeSlackApi(team_id=TEAM) as api:
        api.add_user(LI, "Li Wei", "li.wei@example.com")
        api.add_user(BOB, "Sam Smith", "sam.smith@example.com")
        api.add_user(BOSS, "Sam Smith", "sam.s@example.com")
        api.add_user(GONE, "Li Wei", "old.li@example.com")
        api.users[GONE]["deleted"] = True  # a leaver's name is no one's handle any more
        client = AsyncWebClient(token="xoxb-test", base_url=api.api_url)
        directory = HandleDirectory(client, ttl=600, clock=lambda: now[0], page_size=2)

        values = {"who__custom": "@li.wei, ana@example.com, Bob", "other": "@li.wei"}
        assert await resolve_typed(values, ["who__custom"], directory, database) is None
        assert values == {"who__custom": f"<@{LI}>, ana@example.com, Bob", "other": "@li.wei"}
        assert len(api.of("users.list")) == 2  # two pages of two

        refused = await resolve_typed({"f": "@Sam_Smith"}, ["f"], directory, database)
        assert refused == FieldRefusal(
            "Several people in Slack go by @Sam_Smith. Please pick the right one from the list.",
            field="f",
        )
        refused = await resolve_typed({"f": "@ghost"}, ["f"], directory, database)
        assert refused is not None and refused.text.startswith("I can't find @ghost")
        assert len(api.of("users.list")) == 2  # still the same snapshot

        now[0] = 601.0  # stale: read again, and a failed read is not kept
        api.broken["users.list"] = (502, "text/html", "<html>Bad gateway</html>")
        refused = await resolve_typed({"f": "@li.wei"}, ["f"], directory, database)
        assert refused is not None
        assert refused.text == (
            "I couldn't look up @li.wei in Slack just now. Please pick them from the list, or type"
            " their email address."
        )
        await add_member(database, "Li Wei")  # li.wei@example.com: a member's own name
        values = {"f": "@li.wei"}
        assert await resolve_typed(values, ["f"], directory, database) is None
        assert values == {"f": "@li.wei"}  # for the dialog to resolve
        del api.broken["users.list"]
        assert await directory.find("@li.wei") == [LI]

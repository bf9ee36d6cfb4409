"""Required and closed tags (`KUDOS_REQUIRE_TAG`, `KUDOS_TAGS=closed`) on every path: the
service, chat (Slack's slash command and form, through the fake Slack API) and the REST API."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bots.server import create_app
from cards.render.adaptive import to_adaptive
from cards.screens import kudos_form
from dialogs.engine import DialogEngine
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.errors import InvalidInput
from rewards.services.apikeys import create_key
from rewards.services.kudos import KudosService, TagView, ensure_predefined_tags, list_tags
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Kudos
from tests.factories import add_member
from tests.support.conversation import ScriptedConversation, make_core
from tests.test_slack import LI, slack_app

CLOSED = Settings(kudos_require_tag=True, kudos_tags="closed")
ALLOWED = (
    "Use one of: #Customer-First, #Helpfulness, #Innovation, #Leadership, #Learning, "
    "#Mentoring, #Ownership, #Quality, #Teamwork, #Thank-You."
)


async def kudos_count(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Kudos)) or 0)


async def test_required_and_closed_tags_in_the_service(
    database: Database, clock: FixedClock
) -> None:
    await ensure_predefined_tags(database, clock)
    ana, li = await add_member(database, "Ana"), await add_member(database, "Li")
    service = KudosService(database, CLOSED, clock)
    with pytest.raises(InvalidInput, match=r"^Kudos need a tag: .* e\.g\. #teamwork or #ownership"):
        await service.give(ana, [li], "thanks")
    with pytest.raises(InvalidInput) as refused:
        await service.give(ana, [li], "thanks", ["#teamwork", "#NightOwl"])
    assert str(refused.value) == f"#NightOwl is not one of our kudos tags. {ALLOWED}"
    assert await kudos_count(database) == 0
    assert all(tag.predefined for tag in await list_tags(database))  # no custom tag was made
    view = await service.give(ana, [li], "thanks", ["#TeamWork"])
    assert view.tags == ("teamwork",)
    # Open tags (the default) still take new ones.
    open_tags = KudosService(database, Settings(kudos_require_tag=True), clock)
    assert (await open_tags.give(ana, [li], "night shift", ["#NightOwl"])).tags == ("nightowl",)


async def test_slack_refuses_untagged_and_unknown_tags_and_the_form_requires_one(
    database: Database,
) -> None:
    await ensure_predefined_tags(database)
    async with slack_app(
        database, kudos_require_tag=True, kudos_tags="closed", kudos_allowance=5
    ) as slack:
        for text, sentence in (
            (f"<@{LI}> great demo", "Kudos need a tag"),
            (f"<@{LI}> great demo #NightOwl", "#NightOwl is not one of our kudos tags"),
        ):
            response = await slack.post(
                slack.command_body("/kudos", text), "application/x-www-form-urlencoded"
            )
            answer = json.loads(await response.text())
            assert answer["response_type"] == "ephemeral" and sentence in json.dumps(answer)
        await slack.bot.drain()
        assert await kudos_count(database) == 0

        await slack.command("/kudos")  # the guided form, as a modal
        view = slack.api.of("views.open")[0]["view"]
        blocks = {b.get("block_id"): b for b in view["blocks"]}
        assert blocks["tags"]["optional"] is False
        assert not any(str(block_id).startswith("tags__") for block_id in blocks)
        assert "Allowance left: 5 of 5 today, resets in " in json.dumps(view)

        await slack.command("/kudos", f"<@{LI}> great demo #teamwork")
        assert await kudos_count(database) == 1


async def test_the_api_answers_a_problem_with_the_sentence(
    database: Database, clock: FixedClock
) -> None:
    await ensure_predefined_tags(database, clock)
    ana, li = await add_member(database, "Ana"), await add_member(database, "Li")
    settings = Settings(
        database_url=database.url,
        catalog_files=(),
        reward_scheduler=False,
        kudos_require_tag=True,
        kudos_tags="closed",
        kudos_allowance=1,
    )
    core = Core(settings=settings, db=Database(database.url), clock=clock)
    _, key = await create_key(database, "write", "write", clock)
    headers = {"Authorization": f"Bearer {key}"}
    async with TestClient(TestServer(create_app(settings, core, platforms=False))) as client:
        for tags, sentence in (
            ([], "Kudos need a tag: what value do they recognise?"),
            (["#NightOwl"], f"#NightOwl is not one of our kudos tags. {ALLOWED}"),
        ):
            response = await client.post(
                "/kudos/api/v1/user_kudos",
                json={"giver": ana, "receivers": [li], "message": "thanks", "tags": tags},
                headers=headers,
            )
            assert response.status == 422
            assert response.content_type == "application/problem+json"
            problem = await response.json()
            assert problem["detail"].startswith(sentence), problem
        assert await kudos_count(database) == 0
        response = await client.post(
            "/kudos/api/v1/user_kudos",
            json={"giver": ana, "receivers": [li], "message": "thanks", "tags": ["ownership"]},
            headers=headers,
        )
        assert response.status == 201, await response.text()
        # The allowance (1 here) is refused the same way, as 403 `allowance-spent`.
        response = await client.post(
            "/kudos/api/v1/user_kudos",
            json={"giver": ana, "receivers": [li], "message": "again", "tags": ["ownership"]},
            headers=headers,
        )
        problem = await response.json()
        assert response.status == 403, problem
        assert problem["type"] == "urn:nav-rewards:problem:allowance-spent"
        assert problem["detail"] == "You have 0 of 1 kudos left today; it resets in 9 h."


async def test_the_guided_form_asked_field_by_field_requires_a_listed_tag(
    database: Database, clock: FixedClock
) -> None:
    """Telegram and the console ask one field at a time: the tag question takes no empty
    answer and, closed, no tag off the list."""
    await ensure_predefined_tags(database, clock)
    ana = await add_member(database, "Ana Lopez")
    await add_member(database, "Li Wei")
    core = make_core(database, clock, kudos_require_tag=True, kudos_tags="closed")
    chat = ScriptedConversation(DialogEngine(core), ana, whole_forms=False)
    await chat.say("/kudos")
    await chat.say("@li.wei")
    await chat.say("thanks for the review")
    assert "Tags" in chat.text
    await chat.say("")
    assert "I need an answer" in chat.text
    await chat.say("shipit")
    assert "“shipit” is not one of the options" in chat.text
    assert await kudos_count(database) == 0
    await chat.say("teamwork")
    assert chat.screens == ["kudos_posted"], chat.text
    assert await kudos_count(database) == 1


def test_the_teams_form_requires_a_tag_and_has_no_box_for_new_ones() -> None:
    tags = [TagView("teamwork", "Teamwork", "Worked together", True)]
    open_form = json.dumps(to_adaptive(kudos_form(tags, submit="s", cancel="c")))
    assert '"id": "tags__custom"' in open_form
    card = to_adaptive(
        kudos_form(tags, submit="s", cancel="c", tag_required=True, custom_tags=False)
    )
    inputs = {i["id"]: i for i in _inputs(card["body"])}
    assert inputs["tags"]["isRequired"] is True
    assert "tags__custom" not in inputs


def _inputs(elements: list[dict[str, object]]) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for element in elements:
        if str(element.get("type", "")).startswith("Input."):
            found.append(element)
        for key in ("items", "columns"):
            nested = element.get(key)
            if isinstance(nested, list):
                found.extend(_inputs(nested))
    return found

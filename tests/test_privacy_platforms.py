"""`/me settings` and `/forget me` through each platform's real SDK and fake server: the Teams
Adaptive Card (choice sets, Action.Execute invoke), the Slack modal (static selects,
view_submission) and buttons (block_actions), Telegram's field-by-field questions with inline
buttons (callback queries). Each ends with the double click on "Forget me" being harmless."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from dialogs.engine import STALE
from rewards.services.members import link_account
from rewards.store.db import Database
from rewards.store.models import Member, PlatformAccount
from tests.factories import add_member
from tests.support.teams_connector import FakeConnector
from tests.test_cards_adaptive import errors
from tests.test_slack import ANA as SLACK_ANA
from tests.test_slack import button, slack_app
from tests.test_teams import client, connector, payload, send, with_token  # noqa: F401
from tests.test_telegram import ANA as TELEGRAM_ANA
from tests.test_telegram import Harness, api, buttons, click, private_text, telegram  # noqa: F401


async def _member(database: Database, email: str) -> Any:
    async with database.read() as session:
        return (await session.execute(select(Member).where(Member.email == email))).scalar_one()


async def _accounts(database: Database, member_id: int) -> int:
    async with database.read() as session:
        rows = await session.execute(
            select(PlatformAccount.id).where(PlatformAccount.member_id == member_id)
        )
        return len(rows.all())


async def test_teams_settings_card_and_forget_me(database: Database, client, connector) -> None:  # noqa: F811
    connector.clear()
    message = payload("message_personal", connector, id="1763478060000", text="/me settings")
    assert (await send(client, message)).status == 200
    [reply] = connector.posted()
    [card] = reply.cards
    assert errors(card) == []  # valid against the Adaptive Cards 1.5 schema
    choice_sets = {b["id"]: b for b in _walk(card) if b.get("type") == "Input.ChoiceSet"}
    assert set(choice_sets) == {"leaderboard", "celebrations", "language"}
    assert choice_sets["leaderboard"]["value"] == "shown"
    assert [c["value"] for c in choice_sets["celebrations"]["choices"]] == [
        "public",
        "private",
        "off",
    ]
    submit = card["actions"][0]["data"]["token"]
    values = {"leaderboard": "hidden", "celebrations": "off", "language": "en"}
    invoke = with_token(payload("invoke_execute", connector), submit, **values)
    body = await (await send(client, invoke)).json()
    assert body["type"] == "application/vnd.microsoft.card.adaptive", body
    assert "Privacy settings saved" in json.dumps(body["value"])
    sam = await _member(database, "sam.sender@example.com")
    assert (sam.leaderboard_choice, sam.celebrations) == ("hidden", "off")

    connector.clear()
    message = payload("message_personal", connector, id="1763478070000", text="/forget me")
    assert (await send(client, message)).status == 200
    [reply] = connector.posted()
    [confirm] = reply.cards
    assert errors(confirm) == []
    forget = next(a for a in confirm["actions"] if a["title"] == "Forget me")["data"]["token"]
    click_forget = with_token(payload("invoke_execute", connector), forget)
    body = await (await send(client, click_forget)).json()
    assert "Your data has been erased" in json.dumps(body["value"]), body
    click_forget["id"] = "f:second-click"
    body = await (await send(client, click_forget)).json()
    assert "out of date" in body["value"]
    forgotten = await _by_id(database, sam.id)
    assert forgotten.email != "sam.sender@example.com" and forgotten.forgotten_at is not None
    assert await _accounts(database, sam.id) == 0


async def test_slack_settings_modal_and_forget_me(database: Database) -> None:
    async with slack_app(database) as slack:
        await slack.command("/myrewards", "settings", user=SLACK_ANA)
        [opened] = slack.api.of("views.open")
        view = opened["view"]
        selects = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
        assert {k: v["type"] for k, v in selects.items()} == {
            "leaderboard": "static_select",
            "celebrations": "static_select",
            "language": "static_select",
        }
        answer = await slack.submit(
            view,
            {"leaderboard": "hidden", "celebrations": "private", "language": "en"},
            user=SLACK_ANA,
        )
        assert answer == {"response_action": "clear"}
        ana = await _member(database, "ana.lopez@example.com")
        assert (ana.leaderboard_choice, ana.celebrations, ana.reply_language) == (
            "hidden",
            "private",
            "en",
        )

        await slack.command("/forget", "me", user=SLACK_ANA)
        confirm = [c for c in slack.api.calls if "Forget me" in json.dumps(c.params)][-1]
        blocks = confirm.params["blocks"]
        blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        forget = button(blocks, "Forget me")
        await slack.click(forget, user=SLACK_ANA, ephemeral=True)
        assert "Your data has been erased" in json.dumps(slack.api.calls[-1].params)
        await slack.click(forget, user=SLACK_ANA, ephemeral=True)
        said = slack.api.of("response_url")[-1]
        assert said["text"] == STALE
        gone = await _by_id(database, ana.id)
        assert gone.display_name == "Former member" and await _accounts(database, ana.id) == 0


async def test_telegram_settings_by_buttons_and_forget_me(telegram: Harness) -> None:  # noqa: F811
    database = telegram.database
    ana = await add_member(database, "Ana Lopez")
    await link_account(database, ana, "telegram", str(TELEGRAM_ANA), username="ana_lopez")
    telegram.api.clear()

    await telegram.deliver(private_text(810001, "/me settings"))
    question = telegram.sent()[-1]
    assert set(buttons(question)) >= {"Shown", "Hidden"}
    await telegram.deliver(click(810002, buttons(question)["Hidden"], telegram.last_message_id()))
    question = telegram.sent()[-1]
    assert set(buttons(question)) >= {"Public", "Private", "Off"}
    await telegram.deliver(click(810003, buttons(question)["Private"], telegram.last_message_id()))
    question = telegram.sent()[-1]
    assert set(buttons(question)) >= {"English"}
    await telegram.deliver(click(810004, buttons(question)["English"], telegram.last_message_id()))
    assert "Privacy settings saved" in telegram.sent()[-1]["text"]
    row = await _by_id(database, ana)
    assert (row.leaderboard_choice, row.celebrations) == ("hidden", "private")

    await telegram.deliver(private_text(810005, "/forget me"))
    confirm = telegram.sent()[-1]
    forget = buttons(confirm)["Forget me"]
    confirm_id = telegram.last_message_id()
    await telegram.deliver(click(810006, forget, confirm_id))
    [edited] = telegram.api.params("editMessageText")
    assert "Your data has been erased" in edited["text"]
    await telegram.deliver(click(810007, forget, confirm_id))
    # The second click comes from someone the bot no longer knows: a private chat outside the
    # team chat is not admitted, so it is refused politely and nothing is written.
    second = telegram.api.params("answerCallbackQuery")[-1]["text"]
    assert "not in this rewards programme" in second
    assert len(telegram.api.params("editMessageText")) == 1
    assert (await _by_id(database, ana)).forgotten_at is not None
    assert await _accounts(database, ana) == 0


async def _by_id(database: Database, member_id: int) -> Any:
    async with database.read() as session:
        row = await session.get(Member, member_id)
        assert row is not None
        return row


def _walk(node: Any) -> list[dict[str, Any]]:
    """Every element of an Adaptive Card, depth first."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


_ = FakeConnector

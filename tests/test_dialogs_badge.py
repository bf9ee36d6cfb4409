"""/badge through the dialog engine: pick, confirm, award; refusals; both form modes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from dialogs.engine import DialogEngine
from rewards.clock import FixedClock
from rewards.store.db import Database
from rewards.store.models import Award
from tests.factories import add_member, add_reward
from tests.support.conversation import ScriptedConversation, make_core

MODES = pytest.mark.parametrize("whole_forms", [True, False], ids=["whole", "fields"])
MANAGERS = [{"job_code": ["MANAGER", "DIRECTOR"]}]


async def _setup(database: Database, clock: FixedClock) -> tuple[DialogEngine, dict[str, int]]:
    people = {
        "boss": await add_member(database, "Bo Boss", job_code="MANAGER"),
        "li": await add_member(database, "Li Wei"),
        "exec": await add_member(database, "Eve Exec", job_code="DIRECTOR"),
    }
    await add_reward(
        database,
        reward_id=1005,
        reward="Employee of the Month",
        points=200,
        assigner=MANAGERS,
        awardee=[{"job_code": ["EMPLOYEE", "ASSOCIATE"]}],
    )
    await add_reward(database, reward_id=9001, reward="Team Player", multiple=True)
    await add_reward(database, reward_id=9002, reward="Robot", reward_type="Automated Badge")
    return DialogEngine(make_core(database, clock)), people


async def _awards(database: Database) -> int:
    """Awards given by people (the automated "Robot" badge fires on each member's first turn of
    the day, which these tests do not count)."""
    query = select(func.count()).select_from(Award).where(col(Award.giver_id).is_not(None))
    async with database.read() as session:
        return int(await session.scalar(query) or 0)


async def _confirm(chat: ScriptedConversation) -> None:
    if chat.whole_forms:
        await chat.click(chat.button("Give badge"))
    else:
        await chat.say("yes")


@MODES
async def test_give_a_badge(database: Database, clock: FixedClock, whole_forms: bool) -> None:
    engine, people = await _setup(database, clock)
    chat = ScriptedConversation(engine, people["boss"], whole_forms=whole_forms)

    await chat.say("/badge")
    if whole_forms:
        assert chat.screens == ["badge_picker"]
        choices = [c.title for c in chat.card.form.fields[0].choices]  # type: ignore[union-attr]
        assert choices == ["Employee of the Month", "Team Player"]  # not the automated badge
    else:
        assert "1) Employee of the Month" in chat.text and "Robot" not in chat.text
    await chat.fill({"badge": "1005", "recipient": "@li.wei", "message": "Stellar month"})
    assert chat.screens == ["badge_confirm"], chat.text
    assert "Li Wei" in chat.text and "Stellar month" in chat.text
    assert await _awards(database) == 0

    await _confirm(chat)
    assert chat.screens == ["badge_awarded"], chat.text
    assert "Li Wei received Employee of the Month from Bo Boss" in chat.text
    assert chat.done
    assert await _awards(database) == 1


@MODES
async def test_badge_refusals(database: Database, clock: FixedClock, whole_forms: bool) -> None:
    engine, people = await _setup(database, clock)
    employee = ScriptedConversation(engine, people["li"], whole_forms=whole_forms)
    await employee.say("/badge")
    # Employee of the Month is not offered to an employee: the choice is refused.
    if whole_forms:
        await employee.fill({"badge": "1005", "recipient": "@bo.boss", "message": ""})
        assert "not one you can give right now" in employee.text
    else:
        await employee.say("1005")
        assert "Please pick one of the options" in employee.text
    await employee.say("/cancel")
    assert "cancelled" in employee.text

    boss = ScriptedConversation(engine, people["boss"], whole_forms=whole_forms)
    await boss.say("/badge")
    await boss.fill({"badge": "1005", "recipient": "bo.boss@example.com", "message": ""})
    assert "You can't give Employee of the Month to yourself." in boss.text

    # Awardee rules are the award service's: a director cannot receive it.
    await boss.say("/badge")
    await boss.fill({"badge": "1005", "recipient": "@eve.exec", "message": ""})
    await _confirm(boss)
    assert boss.screens == ["notice"]
    assert "can only go to people with job code EMPLOYEE or ASSOCIATE" in boss.text
    assert boss.done

    # Already awarded (once-only badge).
    for _ in range(2):
        await boss.say("/badge")
        await boss.fill({"badge": "1005", "recipient": "@li.wei", "message": ""})
        await _confirm(boss)
    assert "Li Wei already has Employee of the Month." in boss.text
    assert await _awards(database) == 1


@MODES
async def test_nothing_to_give(database: Database, clock: FixedClock, whole_forms: bool) -> None:
    engine, people = await _setup(database, clock)
    await add_member(database, "Guest", job_code="GUEST")
    engine2 = engine
    chat = ScriptedConversation(engine2, people["li"], whole_forms=whole_forms)
    await chat.say("/badge")
    # Li can give the open Team Player badge, so the picker shows; a member with no givable
    # badges gets the empty picker, not an error.
    assert "Give a badge" in chat.text
    async with database.write() as session:
        from sqlalchemy import update

        from rewards.services.catalog import bump_version
        from rewards.store.models import Reward

        await session.execute(update(Reward).values(enabled=False))
        await bump_version(session)
    await chat.say("/badge")
    assert chat.screens == ["badge_picker_empty"]
    assert chat.done


async def test_double_click_on_confirm_awards_once(database: Database, clock: FixedClock) -> None:
    engine, people = await _setup(database, clock)
    chat = ScriptedConversation(engine, people["boss"], whole_forms=True)
    await chat.say("/badge")
    await chat.fill({"badge": "9001", "recipient": "@li.wei"})
    give = chat.button("Give badge")
    await chat.click(give)
    assert chat.screens == ["badge_awarded"]
    await chat.click(give)
    assert "out of date" in chat.text
    assert await _awards(database) == 1

"""/kudos through the dialog engine: one-shot and guided, in whole-form and field-by-field mode."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from dialogs.engine import DialogEngine
from dialogs.kudos import parse_kudos_line
from rewards.clock import FixedClock
from rewards.services.kudos import ensure_predefined_tags
from rewards.store.db import Database
from rewards.store.models import Kudos, KudosReceiver, Member
from tests.factories import T0, add_member
from tests.support.conversation import ScriptedConversation, make_core

MODES = pytest.mark.parametrize("whole_forms", [True, False], ids=["whole", "fields"])


async def _setup(database: Database, clock: FixedClock) -> tuple[DialogEngine, dict[str, int]]:
    await ensure_predefined_tags(database, clock)
    people = {
        "ana": await add_member(database, "Ana Lopez"),
        "li": await add_member(database, "Li Wei"),
        "lima1": await add_member(database, "Ana Lima"),
    }
    return DialogEngine(make_core(database, clock)), people


async def _kudos_count(database: Database) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Kudos)) or 0)


def test_parse_one_shot_line() -> None:
    mentions, message, tags = parse_kudos_line('@ana @"Ana Lima" great demo #teamwork #Ownership')
    assert mentions == ["@ana", '@"Ana Lima"']
    assert message == "great demo"
    assert tags == ["teamwork", "Ownership"]


@MODES
async def test_one_shot_kudos(database: Database, clock: FixedClock, whole_forms: bool) -> None:
    engine, people = await _setup(database, clock)
    chat = ScriptedConversation(engine, people["ana"], whole_forms=whole_forms)

    await chat.say("/kudos @li.wei @Ana.Lima great demo #teamwork #ownership")

    assert chat.screens == ["kudos_posted"], chat.text
    assert "Li Wei and Ana Lima" in chat.text and "great demo" in chat.text
    assert "#teamwork #ownership" in chat.text
    assert chat.done
    async with database.read() as session:
        receivers = set((await session.execute(select(col(KudosReceiver.member_id)))).scalars())
    assert receivers == {people["li"], people["lima1"]}


@MODES
async def test_guided_kudos(database: Database, clock: FixedClock, whole_forms: bool) -> None:
    engine, people = await _setup(database, clock)
    chat = ScriptedConversation(engine, people["ana"], whole_forms=whole_forms)

    await chat.say("/kudos")
    if whole_forms:
        assert chat.screens == ["kudos_form"]
        assert any(c.title == "Teamwork" for c in chat.card.form.fields[2].choices)  # type: ignore[union-attr]
    else:
        assert "Who do you want to thank?" in chat.text
    await chat.fill(
        {
            "recipients": "li.wei@example.com",
            "message": "thanks for the review",
            "tags": "teamwork, shipit",
        }
    )

    assert chat.screens == ["kudos_posted"], chat.text
    assert "#teamwork #shipit" in chat.text
    assert await _kudos_count(database) == 1
    # The conversation is over: a stray message is not taken as an answer.
    await chat.say("hello")
    assert "/help" in chat.text


async def test_field_mode_reasks_with_the_reason(database: Database, clock: FixedClock) -> None:
    engine, people = await _setup(database, clock)
    chat = ScriptedConversation(engine, people["ana"], whole_forms=False)
    await chat.say("/kudos")

    await chat.say("@nobody")
    assert "I don't know anyone called @nobody" in chat.text
    assert "Who do you want to thank?" in chat.text

    await chat.say("@ana")  # ambiguous: Ana Lopez and Ana Lima? no: local part "ana" matches none
    assert "Who do you want to thank?" in chat.text

    await chat.say("@li.wei")
    assert "What did they do?" in chat.text
    await chat.say("")  # required
    assert "I need an answer" in chat.text
    await chat.say("nice work")
    assert "Tags" in chat.text
    await chat.say("1 2")  # numbers pick the listed tags
    assert chat.screens == ["kudos_posted"], chat.text
    assert await _kudos_count(database) == 1


@MODES
async def test_refusals_are_friendly_sentences(
    database: Database, clock: FixedClock, whole_forms: bool
) -> None:
    engine, people = await _setup(database, clock)
    chat = ScriptedConversation(engine, people["ana"], whole_forms=whole_forms)

    await chat.say("/kudos @ana.lopez thanks me")
    assert chat.screens == ["notice"]
    assert "can't send kudos to yourself" in chat.text

    await chat.say('/kudos @"ana l" hi')  # no such display name
    assert "I don't know anyone called" in chat.text

    await add_member(database, "Ana Lopez Two")  # ana.lopez.two@... does not share the local part
    await chat.say("/kudos @nobody.here thanks")
    assert "I don't know anyone called @nobody.here" in chat.text

    # A typed address nobody has: no advice to type an address.
    await chat.say("/kudos @nobody@example.com thanks")
    assert "I don't know anyone with the address nobody@example.com" in chat.text
    assert "Try their email address" not in chat.text

    await chat.say("/kudos great demo")
    assert "Who are the kudos for?" in chat.text
    assert await _kudos_count(database) == 0


async def test_ambiguous_mention_lists_candidates(database: Database, clock: FixedClock) -> None:
    engine, people = await _setup(database, clock)
    async with database.write() as session:  # same display name, another email
        session.add(
            Member(email="li.w@example.com", display_name="Li Wei", created_at=T0, updated_at=T0)
        )
    chat = ScriptedConversation(engine, people["ana"], whole_forms=True)
    await chat.say('/kudos @"Li Wei" thanks')
    assert "could be Li Wei (li.wei@example.com), Li Wei (li.w@example.com)" in chat.text
    assert await _kudos_count(database) == 0


async def test_whole_form_refusal_keeps_the_form(database: Database, clock: FixedClock) -> None:
    engine, people = await _setup(database, clock)
    chat = ScriptedConversation(engine, people["ana"], whole_forms=True)
    await chat.say("/kudos")
    await chat.fill({"recipients": "ana.lopez@example.com", "message": "me!"})
    assert chat.screens == ["notice", "kudos_form"]
    assert "yourself" in chat.text
    await chat.fill({"recipients": "li.wei@example.com", "message": "you!"})
    assert chat.screens == ["kudos_posted"]


async def test_whole_form_custom_tags_come_from_the_companion_input(
    database: Database, clock: FixedClock
) -> None:
    """Teams and Slack selects cannot take typed values: typed tags arrive as `tags__custom`."""
    engine, people = await _setup(database, clock)
    chat = ScriptedConversation(engine, people["ana"], whole_forms=True)
    await chat.say("/kudos")
    assert chat.form_card is not None and chat.form_card.form is not None
    token = chat.form_card.form.submit.token
    assert token is not None
    await chat.click(
        token,
        {
            "recipients": "li.wei@example.com",
            "message": "late-night fix",
            "tags": "teamwork",
            "tags__custom": "#ShipIt, nightowl",
        },
    )
    assert chat.screens == ["kudos_posted"], chat.text
    assert "#teamwork #shipit #nightowl" in chat.text

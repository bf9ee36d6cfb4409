"""Leaderboard, /me, /help, /cancel, stale and double clicks, expiry, restarts and failures."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from cards.actions import encode
from dialogs.commands import COMMANDS
from dialogs.engine import DialogEngine
from dialogs.info import parse_board_args
from rewards.clock import FixedClock
from rewards.services import conversations
from rewards.services.conversations import ConversationKey, State
from rewards.services.leaderboards import Metric, Period
from rewards.store.db import Database
from tests.factories import add_member, add_reward
from tests.support.conversation import ScriptedConversation, make_core

MODES = pytest.mark.parametrize("whole_forms", [True, False], ids=["whole", "fields"])


async def _people(database: Database) -> dict[str, int]:
    return {
        "ana": await add_member(database, "Ana Lopez"),
        "li": await add_member(database, "Li Wei", department="Sales"),
        "boss": await add_member(database, "Bo Boss", job_code="MANAGER"),
    }


def test_leaderboard_words_in_any_order() -> None:
    query = parse_board_args("kudos_given #TeamWork week")
    assert (query.period, query.metric, query.tag, query.department) == (
        Period.WEEK,
        Metric.KUDOS_GIVEN,
        "TeamWork",
        None,
    )
    query = parse_board_args("Customer Success year")
    assert (query.period, query.metric, query.department) == (
        Period.YEAR,
        Metric.POINTS,
        "Customer Success",
    )
    assert parse_board_args("").period is Period.MONTH


@MODES
async def test_leaderboard_me_help(
    database: Database, clock: FixedClock, whole_forms: bool
) -> None:
    people = await _people(database)
    engine = DialogEngine(make_core(database, clock))
    ana = ScriptedConversation(engine, people["ana"], whole_forms=whole_forms)
    await ana.say("/kudos @li.wei thanks #teamwork")
    await add_reward(database, reward_id=9001, reward="Team Player", multiple=True)
    boss = ScriptedConversation(engine, people["boss"], whole_forms=whole_forms)
    await boss.say("/badge")
    await boss.fill({"badge": "9001", "recipient": "@li.wei", "message": ""})
    if whole_forms:
        await boss.click(boss.button("Give badge"))
    else:
        await boss.say("yes")
    assert boss.screens == ["badge_awarded"], boss.text

    await ana.say("/leaderboard")
    assert ana.screens == ["leaderboard"]
    assert "Li Wei" in ana.text and "15 pts" in ana.text
    await ana.say("/leaderboard week kudos sales")
    assert "Top kudos received this week" in ana.text and "Department: sales" in ana.text
    await ana.say("/leaderboard #teamwork all")
    assert "#teamwork" in ana.text and "Li Wei" in ana.text
    await ana.click(ana.button("Full leaderboard"))
    assert ana.screens == ["leaderboard"] and "Li Wei" in ana.text
    await ana.click(ana.button("Give kudos"))
    assert "Give kudos" in ana.text

    li = ScriptedConversation(engine, people["li"], whole_forms=whole_forms)
    await li.say("/me")
    assert li.screens == ["my_rewards"]
    assert "#1" in li.text and "Team Player" in li.text and "Kudos from Ana Lopez" in li.text
    await ana.say("/me")
    assert "Not ranked yet" in ana.text

    await ana.say("/help")
    assert ana.screens == ["help"]
    for command in COMMANDS:
        assert command.usage in ana.text


@MODES
async def test_cancel_always_works(
    database: Database, clock: FixedClock, whole_forms: bool
) -> None:
    people = await _people(database)
    engine = DialogEngine(make_core(database, clock))
    chat = ScriptedConversation(engine, people["ana"], whole_forms=whole_forms)
    await chat.say("/cancel")
    assert "nothing to cancel" in chat.text
    await chat.say("/kudos")
    await chat.say("/cancel")
    assert "cancelled" in chat.text and chat.done
    await chat.say("@li.wei")
    assert "/help" in chat.text  # no longer inside the form
    key = chat.turn.key
    assert await conversations.load(database, key, clock.now()) is None


async def test_cancel_button_and_stale_clicks(database: Database, clock: FixedClock) -> None:
    people = await _people(database)
    engine = DialogEngine(make_core(database, clock))
    chat = ScriptedConversation(engine, people["ana"], whole_forms=True)
    await chat.say("/kudos")
    old_submit = chat.button("Send kudos")
    await chat.say("/kudos")  # a new form: the first card is now stale
    cancel = chat.button("Cancel")
    await chat.click(old_submit, {"recipients": "@li.wei", "message": "hi"})
    assert "out of date" in chat.text
    await chat.click(cancel)
    assert chat.screens == ["notice"] and "cancelled" in chat.text and chat.done
    await chat.click(old_submit, {"recipients": "@li.wei", "message": "hi"})
    assert "out of date" in chat.text
    await chat.click("not-a-token")
    assert "don't recognise that button" in chat.text
    await chat.click(encode("nosuch", "submit", "x"))
    assert "don't recognise that button" in chat.text


@MODES
async def test_double_submit_gives_kudos_once(
    database: Database, clock: FixedClock, whole_forms: bool
) -> None:
    people = await _people(database)
    engine = DialogEngine(make_core(database, clock))
    chat = ScriptedConversation(engine, people["ana"], whole_forms=True)
    await chat.say("/kudos")
    submit = chat.button("Send kudos")
    values = {"recipients": "@li.wei", "message": "thanks"}
    await chat.click(submit, values)
    assert chat.screens == ["kudos_posted"]
    await chat.click(submit, values)
    assert "out of date" in chat.text
    li = ScriptedConversation(engine, people["li"], whole_forms=whole_forms)
    await li.say("/me")
    assert li.screens == ["my_rewards"]
    assert li.text.count("Kudos from Ana Lopez") == 1


@MODES
async def test_expired_state(database: Database, clock: FixedClock, whole_forms: bool) -> None:
    people = await _people(database)
    engine = DialogEngine(make_core(database, clock), ttl=timedelta(minutes=15))
    chat = ScriptedConversation(engine, people["ana"], whole_forms=whole_forms)
    await chat.say("/kudos")
    clock.advance(timedelta(minutes=16))
    if whole_forms:
        await chat.fill({"recipients": "@li.wei", "message": "late"})
        assert "out of date" in chat.text
    else:
        await chat.say("@li.wei")
        assert "/help" in chat.text
    assert await conversations.load(database, chat.turn.key, clock.now()) is None


@MODES
async def test_restart_continues_the_conversation(
    database: Database, clock: FixedClock, whole_forms: bool
) -> None:
    people = await _people(database)
    chat = ScriptedConversation(
        DialogEngine(make_core(database, clock)), people["ana"], whole_forms=whole_forms
    )
    await chat.say("/kudos")
    if not whole_forms:
        await chat.say("@li.wei")
    # A new engine (a restarted process, another replica) over the same database.
    chat.engine = DialogEngine(make_core(database, clock))
    if whole_forms:
        await chat.fill({"recipients": "@li.wei", "message": "after restart"})
    else:
        await chat.say("after restart")
        await chat.say("")
    assert chat.screens == ["kudos_posted"], chat.text
    assert "after restart" in chat.text


@MODES
async def test_unexpected_error_is_an_apology(
    database: Database,
    clock: FixedClock,
    whole_forms: bool,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    people = await _people(database)
    engine = DialogEngine(make_core(database, clock))

    async def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database exploded at 0xdeadbeef")

    monkeypatch.setattr("rewards.services.ledger.summary", boom)
    chat = ScriptedConversation(engine, people["ana"], whole_forms=whole_forms)
    with caplog.at_level(logging.ERROR, logger="dialogs.engine"):
        await chat.say("/me")
    assert chat.text == "Sorry, something went wrong on my side. Please try again in a moment."
    assert "0xdeadbeef" in caplog.text


async def test_unknown_command_and_chatter(database: Database, clock: FixedClock) -> None:
    people = await _people(database)
    chat = ScriptedConversation(
        DialogEngine(make_core(database, clock)), people["ana"], whole_forms=True
    )
    await chat.say("/dance")
    assert "I don't know /dance" in chat.text
    await chat.say("hi there")
    assert "/help" in chat.text
    await chat.say("/kudos")
    await chat.say("some text")
    assert "fill in the card" in chat.text


async def test_state_store_upsert_claim_clear(database: Database, clock: FixedClock) -> None:
    key = ConversationKey("slack", "T1", "C1", "U1")
    first = await conversations.save(
        database, key, State("kudos", "form", {"a": 1}, "n1"), clock.now(), timedelta(minutes=5)
    )
    again = await conversations.save(
        database, key, State("badge", "pick", {"b": [2]}, "n2"), clock.now(), timedelta(minutes=5)
    )
    loaded = await conversations.load(database, key, clock.now())
    assert loaded is not None and first.expires_at == again.expires_at
    assert (loaded.dialog, loaded.step, loaded.values, loaded.nonce) == (
        "badge",
        "pick",
        {"b": [2]},
        "n2",
    )
    assert await conversations.claim(database, key, "n2", "n3", clock.now())
    assert not await conversations.claim(database, key, "n2", "n4", clock.now())
    assert await conversations.clear(database, key)
    assert not await conversations.clear(database, key)
    assert await conversations.load(database, key, clock.now()) is None

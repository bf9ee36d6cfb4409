"""Telegram is never open to the world: who may take part, end to end.

The real app and python-telegram-bot against the fake Bot API (`tests.support.telegram_api`),
on SQLite and PostgreSQL. A person the directory does not know takes part only when imported
(by Telegram id or `@username`), when the team chat (TELEGRAM_CHAT_ID) has them as a member
(getChatMember, cached), or after `/link` (tests/test_link_accounts.py). Every refusal is a
polite Telegram message (or a button's toast) and writes nothing but the update's dedup marker.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from telegram import Bot

from bots.server import create_app
from bots.telegram import setup
from bots.telegram.membership import ChatMembership
from cards.actions import encode
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.membership import BOT_REFUSAL, not_a_member_sentence
from rewards.services.channels import find_channel
from rewards.services.members import find_by_account, link_account
from rewards.store.db import Database
from rewards.store.models import LinkCode
from tests.factories import add_member
from tests.support.rowcounts import assert_unchanged, table_counts
from tests.support.telegram_api import TOKEN, FakeBotAPI
from tests.test_telegram import ANA, GROUP, Harness, count, telegram_settings

STRANGER: dict[str, Any] = {
    "id": 555000111,
    "is_bot": False,
    "first_name": "Sam",
    "username": "sam_out",
}
ANA_USER: dict[str, Any] = {"id": ANA, "is_bot": False, "first_name": "Ana", "last_name": "Lopez"}
REFUSAL = not_a_member_sentence("telegram")
_update_ids = iter(range(960000, 970000))


def private_chat(user: dict[str, Any]) -> dict[str, Any]:
    return {"id": user["id"], "first_name": user["first_name"], "type": "private"}


TEAM_CHAT: dict[str, Any] = {"id": GROUP, "title": "Team chat", "type": "supergroup"}
OTHER_CHAT: dict[str, Any] = {"id": -1009999999999, "title": "Somewhere else", "type": "supergroup"}


def message(
    user: dict[str, Any],
    text: str,
    *,
    chat: dict[str, Any] | None = None,
    mentions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An update with a message from `user` (in their private chat unless `chat` is given);
    `mentions` are `text_mention` users, whose names must appear in `text` in that order."""
    entities: list[dict[str, Any]] = []
    if text.startswith("/"):
        entities.append({"offset": 0, "length": len(text.split()[0]), "type": "bot_command"})
    cursor = 0
    for named in mentions or []:
        name = named["first_name"]
        at = text.index(name, cursor)
        entities.append({"offset": at, "length": len(name), "type": "text_mention", "user": named})
        cursor = at + len(name)
    for word in text.split():
        if word.startswith("@"):
            at = text.index(word)
            entities.append({"offset": at, "length": len(word), "type": "mention"})
    update_id = next(_update_ids)
    body: dict[str, Any] = {
        "message_id": update_id % 100000,
        "from": user,
        "chat": chat or private_chat(user),
        "date": 1795100400,
        "text": text,
    }
    if entities:
        body["entities"] = sorted(entities, key=lambda e: e["offset"])
    return {"update_id": update_id, "message": body}


def click(user: dict[str, Any], data: str) -> dict[str, Any]:
    update_id = next(_update_ids)
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cbq-{update_id}",
            "from": user,
            "message": {
                "message_id": 1000,
                "from": {"id": 123456, "is_bot": True, "first_name": "Rewards"},
                "chat": private_chat(user),
                "date": 1795100400,
                "text": "Badge",
            },
            "chat_instance": "-1",
            "data": data,
        },
    }


def texts(h: Harness) -> list[str]:
    """What the bot said, as people read it (HTML entities decoded)."""
    return [html.unescape(str(p["text"])) for p in h.sent()]


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    fake = await FakeBotAPI().start()
    yield fake
    await fake.close()


@asynccontextmanager
async def harness(
    database: Database, api: FakeBotAPI, clock: FixedClock, **options: Any
) -> AsyncIterator[Harness]:
    """The real app with Telegram on (`telegram_settings(**options)`) and the test's clock."""
    settings = telegram_settings(database, api, **options)
    app = create_app(settings, Core(settings=settings, db=database, clock=clock), platforms=False)
    assert setup(app, settings) is True
    async with TestClient(TestServer(app)) as client:
        api.clear()
        yield Harness(api, client, database)


@pytest.fixture
async def telegram(
    database: Database, api: FakeBotAPI, clock: FixedClock
) -> AsyncIterator[Harness]:
    """TELEGRAM_CHAT_ID is the team chat (GROUP); MEMBERSHIP=open; Ana is imported by id."""
    async with harness(database, api, clock) as h:
        ana = await add_member(database, "Ana Lopez", job_code="MANAGER")
        await link_account(database, ana, "telegram", str(ANA), username="ana_lopez")
        yield h


# --- strangers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "update",
    [
        message(STRANGER, "/me"),
        message(STRANGER, "/start"),
        message(STRANGER, "hello?"),
        message(STRANGER, "/link"),
        message(STRANGER, "/kudos@RewardsBot @ana_lopez thanks", chat=TEAM_CHAT),
        message(STRANGER, "/kudos Ana for the demo", mentions=[ANA_USER], chat=OTHER_CHAT),
    ],
    ids=["me", "start", "text", "link-without-code", "kudos-in-the-team-chat", "other-chat"],
)
async def test_a_stranger_is_refused_politely_and_nothing_is_written(
    telegram: Harness, update: dict[str, Any]
) -> None:
    before = await table_counts(telegram.database)
    await telegram.deliver(update)
    assert texts(telegram) == [REFUSAL]
    assert "/link" in REFUSAL  # the way in, for someone who uses the programme elsewhere
    assert_unchanged(before, await table_counts(telegram.database))
    # the team chat was asked about the sender once, and about nobody they mentioned
    assert [int(c["chat_id"]) for c in telegram.api.chat_member_calls(STRANGER["id"])] == [GROUP]
    assert len(telegram.api.chat_member_calls()) == 1


async def test_a_strangers_click_gets_the_refusal_as_its_toast(telegram: Harness) -> None:
    before = await table_counts(telegram.database)
    await telegram.deliver(click(STRANGER, encode("badge", "submit", "someNonce")))
    [answer] = telegram.api.params("answerCallbackQuery")
    assert answer["text"] == REFUSAL
    assert telegram.sent() == []
    assert_unchanged(before, await table_counts(telegram.database))


async def test_without_allowed_chats_nobody_is_asked(
    database: Database, api: FakeBotAPI, clock: FixedClock
) -> None:
    async with harness(database, api, clock, chats=()) as h:
        api.set_chat_member(GROUP, STRANGER["id"])
        before = await table_counts(database)
        await h.deliver(message(STRANGER, "/me"))
        assert texts(h) == [REFUSAL]
        assert api.chat_member_calls() == []
        assert_unchanged(before, await table_counts(database))


# --- imported people -----------------------------------------------------------------------------


async def test_imported_people_are_admitted_by_id_and_by_username(telegram: Harness) -> None:
    by_username = await add_member(telegram.database, "Sam Out")
    await link_account(telegram.database, by_username, "telegram", "@sam_out", username="sam_out")

    await telegram.deliver(message(ANA_USER, "/me"))
    await telegram.deliver(message(STRANGER, "/me"))

    assert REFUSAL not in texts(telegram) and len(texts(telegram)) == 2
    assert all("Points" in t for t in texts(telegram))
    # the imported @sam_out account now carries Sam's Telegram id; nobody was asked
    found = await find_by_account(telegram.database, "telegram", str(STRANGER["id"]))
    assert found is not None and found.id == by_username
    assert telegram.api.chat_member_calls() == []


# --- members of the team chat --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "is_member", "admitted"),
    [
        ("creator", True, True),
        ("administrator", True, True),
        ("member", True, True),
        ("restricted", True, True),
        ("restricted", False, False),
        ("left", False, False),
        ("kicked", False, False),
    ],
)
async def test_the_team_chat_vouches_only_for_its_members(
    telegram: Harness, status: str, is_member: bool, admitted: bool
) -> None:
    telegram.api.set_chat_member(GROUP, STRANGER["id"], status, is_member=is_member)
    before = await table_counts(telegram.database)
    await telegram.deliver(message(STRANGER, "/me"))
    found = await find_by_account(telegram.database, "telegram", str(STRANGER["id"]))
    if admitted:
        assert found is not None and found.display_name == "Sam"
        assert REFUSAL not in texts(telegram) and "Points" in texts(telegram)[0]
        channel = await find_channel(telegram.database, "telegram", str(STRANGER["id"]))
        assert channel is not None and channel.member_id == found.id
    else:
        assert found is None
        assert texts(telegram) == [REFUSAL]
        assert_unchanged(before, await table_counts(telegram.database))
    # a second message is answered the same way, without asking Telegram again
    await telegram.deliver(message(STRANGER, "/help"))
    assert (REFUSAL in texts(telegram)[-1]) is not admitted
    [asked] = telegram.api.chat_member_calls()
    assert int(asked["chat_id"]) == GROUP and int(asked["user_id"]) == STRANGER["id"]


async def test_the_answer_is_cached_yes_for_ten_minutes_no_for_one(
    telegram: Harness, clock: FixedClock
) -> None:
    api = telegram.api
    api.set_chat_member(GROUP, STRANGER["id"], "left")
    await telegram.deliver(message(STRANGER, "/me"))
    await telegram.deliver(message(STRANGER, "/help"))
    assert texts(telegram) == [REFUSAL, REFUSAL]
    assert len(api.chat_member_calls()) == 1  # the no is remembered

    api.set_chat_member(GROUP, STRANGER["id"], "member")  # Sam joins the team chat
    clock.advance(timedelta(seconds=61))
    await telegram.deliver(message(STRANGER, "/me"))
    assert len(api.chat_member_calls()) == 2 and "Points" in texts(telegram)[-1]

    # a known member is not asked again: the account is theirs now
    clock.advance(timedelta(minutes=30))
    await telegram.deliver(message(STRANGER, "/me"))
    assert len(api.chat_member_calls()) == 2


async def test_a_yes_is_remembered_for_ten_minutes(telegram: Harness, clock: FixedClock) -> None:
    """Bo, in the team chat but not yet a member, is named with a bot: the kudos is refused (so
    Bo is not created), and naming him again within ten minutes asks nobody."""
    bo: dict[str, Any] = {"id": 222222222, "is_bot": False, "first_name": "Bo"}
    helper_bot: dict[str, Any] = {"id": 700700700, "is_bot": True, "first_name": "Helper"}
    telegram.api.set_chat_member(GROUP, bo["id"])
    before = await table_counts(telegram.database)
    for wait in (timedelta(0), timedelta(minutes=9), timedelta(minutes=2)):
        clock.advance(wait)
        update = message(ANA_USER, "/kudos Bo Helper thanks", mentions=[bo, helper_bot])
        await telegram.deliver(update)
    assert texts(telegram) == [BOT_REFUSAL] * 3
    assert len(telegram.api.chat_member_calls(bo["id"])) == 2  # at 0 and at 11 minutes
    assert_unchanged(before, await table_counts(telegram.database))


async def test_directory_membership_refuses_chat_members_not_imported(
    database: Database, api: FakeBotAPI, clock: FixedClock
) -> None:
    async with harness(database, api, clock, membership="directory") as h:
        ana = await add_member(database, "Ana Lopez")
        await link_account(database, ana, "telegram", str(ANA), username="ana_lopez")
        api.set_chat_member(GROUP, STRANGER["id"], "member")
        before = await table_counts(database)
        await h.deliver(message(STRANGER, "/me"))
        await h.deliver(message(STRANGER, "/kudos@RewardsBot @ana_lopez hi", chat=TEAM_CHAT))
        assert texts(h) == [REFUSAL, REFUSAL]
        assert api.chat_member_calls() == []  # the policy refuses strangers: no need to ask
        assert_unchanged(before, await table_counts(database))
        # nor does Ana's kudos reach a chat member who was never imported
        sam: dict[str, Any] = {"id": STRANGER["id"], "is_bot": False, "first_name": "Sam"}
        await h.deliver(message(ANA_USER, "/kudos Sam thanks", mentions=[sam]))
        assert texts(h)[-1].startswith("Sam isn't in this rewards programme yet")
        assert_unchanged(before, await table_counts(database))
        # while imported people take part as before
        await h.deliver(message(ANA_USER, "/me"))
        assert "Points" in texts(h)[-1]


# --- mentions ------------------------------------------------------------------------------------


async def test_kudos_to_a_bot_is_refused(telegram: Harness) -> None:
    helper_bot: dict[str, Any] = {"id": 700700700, "is_bot": True, "first_name": "Helper"}
    before = await table_counts(telegram.database)
    await telegram.deliver(
        message(ANA_USER, "/kudos Helper thanks", mentions=[helper_bot], chat=TEAM_CHAT)
    )
    await telegram.deliver(message(ANA_USER, "/kudos @RewardsBot thanks", chat=TEAM_CHAT))
    assert texts(telegram) == [BOT_REFUSAL, BOT_REFUSAL]
    assert telegram.api.chat_member_calls() == []
    assert_unchanged(before, await table_counts(telegram.database))


async def test_kudos_to_a_stranger_outside_the_team_chat_is_refused(telegram: Harness) -> None:
    before = await table_counts(telegram.database)
    await telegram.deliver(message(ANA_USER, "/kudos Sam thanks", mentions=[STRANGER]))
    [said] = texts(telegram)
    assert said.startswith("Sam isn't in this rewards programme yet")
    assert str(STRANGER["id"]) not in said
    assert_unchanged(before, await table_counts(telegram.database))


async def test_fifty_mentions_are_refused_at_once(telegram: Harness) -> None:
    people: list[dict[str, Any]] = [
        {"id": 800000000 + n, "is_bot": False, "first_name": f"P{n:02d}x"} for n in range(50)
    ]
    for person in people:
        telegram.api.set_chat_member(GROUP, person["id"])  # all of them would be vouched for
    text = "/kudos " + " ".join(p["first_name"] for p in people) + " thanks all"
    before = await table_counts(telegram.database)
    await telegram.deliver(message(ANA_USER, text, mentions=people, chat=TEAM_CHAT))
    assert texts(telegram) == ["Kudos can go to at most 10 people at once."]
    assert telegram.api.chat_member_calls() == []
    assert_unchanged(before, await table_counts(telegram.database))


# --- groups --------------------------------------------------------------------------------------


async def test_link_in_a_group_gives_no_code(telegram: Harness) -> None:
    """A group is not private: everyone there would read the code."""
    await telegram.deliver(message(ANA_USER, "/link", chat=TEAM_CHAT))
    [said] = texts(telegram)
    assert "direct message" in said and "code is" not in said
    assert await count(telegram.database, LinkCode) == 0


def added(by: dict[str, Any], chat: dict[str, Any]) -> dict[str, Any]:
    """The bot was added to `chat` by `by` (a `my_chat_member` update)."""
    bot = {"id": 123456, "is_bot": True, "first_name": "Rewards", "username": "RewardsBot"}
    return {
        "update_id": next(_update_ids),
        "my_chat_member": {
            "chat": chat,
            "from": by,
            "date": 1795100400,
            "old_chat_member": {"status": "left", "user": bot},
            "new_chat_member": {"status": "member", "user": bot},
        },
    }


async def test_added_to_a_chat_by_a_stranger_is_forgotten(telegram: Harness) -> None:
    before = await table_counts(telegram.database)
    await telegram.deliver(added(STRANGER, OTHER_CHAT))
    assert_unchanged(before, await table_counts(telegram.database))
    assert telegram.api.calls == []


@pytest.mark.parametrize(
    ("by", "chat"),
    [(STRANGER, TEAM_CHAT), (ANA_USER, OTHER_CHAT)],
    ids=["the-team-chat", "by-a-member"],
)
async def test_added_to_our_chat_or_by_a_member_is_remembered(
    telegram: Harness, by: dict[str, Any], chat: dict[str, Any]
) -> None:
    before = await table_counts(telegram.database)
    await telegram.deliver(added(by, chat))
    channel = await find_channel(telegram.database, "telegram", str(chat["id"]))
    assert channel is not None and channel.kind == "group"
    after = await table_counts(telegram.database)
    for people in ("member", "platform_account"):  # nobody was created for it
        assert after[people] == before[people]


async def test_a_text_mention_claims_the_imported_username(telegram: Harness) -> None:
    """Li was imported as @li_wei; a text mention carrying his id and username is Li."""
    li = await add_member(telegram.database, "Li Wei")
    await link_account(telegram.database, li, "telegram", "@li_wei", username="li_wei")
    li_user: dict[str, Any] = {"id": 333000333, "is_bot": False, "first_name": "Li"}
    li_user["username"] = "li_wei"
    await telegram.deliver(message(ANA_USER, "/kudos Li for the review", mentions=[li_user]))
    assert "Li Wei" in texts(telegram)[0]
    found = await find_by_account(telegram.database, "telegram", str(li_user["id"]))
    assert found is not None and found.id == li
    assert telegram.api.chat_member_calls() == []


async def test_concurrent_questions_share_one_call(api: FakeBotAPI, clock: FixedClock) -> None:
    """Two updates from the same stranger at once still cost one getChatMember call."""
    bot = Bot(TOKEN, base_url=f"{api.url}/bot")
    async with bot:
        api.set_chat_member(GROUP, STRANGER["id"])
        chats = ChatMembership(bot, (str(GROUP), "@other_team"), clock)
        answers = await asyncio.gather(*(chats.vouches(STRANGER["id"]) for _ in range(5)))
        assert answers == [True] * 5
        assert len(api.chat_member_calls()) == 1  # the first chat said yes: no need to ask more
        assert not await chats.vouches(777)  # nobody: both chats asked, once each
        assert [c["chat_id"] for c in api.chat_member_calls(777)] == [str(GROUP), "@other_team"]

"""`/link` through the dialog engine: a code only where the sender alone reads it, redemption
from another platform, and strangers' `/link CODE` through `admit_sender` (SQLite and
PostgreSQL). The platform adapters' tests drive the same dialog through the real SDKs."""

from __future__ import annotations

import re

from dialogs.engine import DialogEngine
from dialogs.events import Command, Text, Turn
from dialogs.link import admit_sender, link_args
from dialogs.replies import Reply, Say
from rewards.clock import FixedClock
from rewards.membership import Person, known_member
from rewards.services.conversations import ConversationKey
from rewards.store.db import Database
from tests.factories import add_member
from tests.support.conversation import make_core
from tests.support.rowcounts import assert_unchanged, table_counts

CODE = re.compile(r"\b([A-Z2-9]{4}-[A-Z2-9]{4})\b")


def _code(replies: list[Reply]) -> str:
    found = CODE.search(" ".join(r.text for r in replies if isinstance(r, Say)))
    assert found, replies
    return found.group(1)


def _turn(member_id: int, platform: str, *, private: bool, user: str = "U1") -> Turn:
    return Turn(member_id, ConversationKey(platform, "T1", "chat", user), private=private)


async def test_link_gives_a_code_in_a_direct_chat_only(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    engine = DialogEngine(make_core(database, clock))

    shared = await engine.handle(_turn(ana, "teams", private=False), Command("link"))
    text = " ".join(r.text for r in shared if isinstance(r, Say))
    assert "direct message" in text and not CODE.search(text)

    direct = await engine.handle(_turn(ana, "teams", private=True), Text("/link"))
    text = " ".join(r.text for r in direct if isinstance(r, Say))
    assert CODE.search(text) and "10 minutes" in text


async def test_a_known_member_redeems_a_code_from_another_platform(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    core = make_core(database, clock)
    engine = DialogEngine(core)
    replies = await engine.handle(_turn(ana, "slack", private=True), Command("link"))
    code = _code(replies)
    # The Teams account was made on first sight (open membership) and has no history of its own.
    shell = await admit_sender(core, Person("teams", "aad-ana", "T1"), Command("help"))
    assert isinstance(shell, int) and shell != ana

    replies = await engine.handle(
        _turn(shell, "teams", private=False, user="aad-ana"), Command("link", code)
    )

    assert "now part of Ana's rewards" in " ".join(r.text for r in replies if isinstance(r, Say))
    assert (await known_member(database, "teams", "aad-ana", "T1")).id == ana  # type: ignore[union-attr]


async def test_a_stranger_can_only_link(database: Database, clock: FixedClock) -> None:
    ana = await add_member(database, "Ana")
    core = make_core(database, clock)
    replies = await DialogEngine(core).handle(_turn(ana, "slack", private=True), Command("link"))
    code = _code(replies)
    stranger = Person("telegram", "4242", display_name="Ana on Telegram")

    before = await table_counts(database)
    refused = await admit_sender(core, stranger, Command("kudos", "@ana thanks"))
    assert isinstance(refused, list) and "ask your admin" in refused[0].text  # type: ignore[union-attr]
    wrong = await admit_sender(core, stranger, Text("/link AAAA-BBBB"))
    assert isinstance(wrong, list) and "wrong or has expired" in wrong[0].text  # type: ignore[union-attr]
    assert_unchanged(before, await table_counts(database))

    linked = await admit_sender(core, stranger, Text(f"/link {code.lower()}"))
    assert isinstance(linked, list) and "now part of Ana's rewards" in linked[0].text  # type: ignore[union-attr]
    assert await admit_sender(core, stranger, Command("me")) == ana


async def test_the_console_cannot_redeem_a_code(database: Database, clock: FixedClock) -> None:
    ana = await add_member(database, "Ana")
    engine = DialogEngine(make_core(database, clock))
    replies = await engine.handle(_turn(ana, "console", private=True), Command("link", "ABCD-EFGH"))
    assert "Teams, Slack or Telegram" in " ".join(
        str(getattr(r, "text", "")) + str(getattr(getattr(r, "card", None), "body", ""))
        for r in replies
    )


def test_link_args_reads_commands_and_typed_text() -> None:
    assert link_args(Command("link", " abcd-efgh ")) == "abcd-efgh"
    assert link_args(Text("/link@RewardsBot ABCD-EFGH")) == "ABCD-EFGH"
    assert link_args(Text("/link")) == ""
    assert link_args(Text("link ABCD")) is None  # plain chatter is not a command
    assert link_args(Command("kudos", "x")) is None


async def test_a_first_message_link_makes_no_first_sight_member(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    core = make_core(database, clock)
    code = _code(
        await DialogEngine(core).handle(_turn(ana, "slack", private=True), Command("link"))
    )
    before = await table_counts(database)

    replies = await admit_sender(core, Person("teams", "aad-9", "T1"), Command("link", code))

    assert "now part of Ana's rewards" in replies[0].text  # type: ignore[index,union-attr]
    after = await table_counts(database)
    assert after["member"] == before["member"]
    assert after["platform_account"] == before["platform_account"] + 1

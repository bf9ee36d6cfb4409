"""A Slack slash command's delivery marker, held back to ride on the turn's one write.

On PostgreSQL a slash command's turn reads whether its delivery was seen (no BEGIN) and holds
the marker (`Unit.hold`): a kudos then writes marker, rows and commit as one statement; a turn
that writes anything else writes the marker first, in its transaction; a turn that only reads
writes it as it ends. These tests hold on both databases (SQLite writes the marker first, as
every other platform does): a copy of a command runs once, whichever way it races.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from bots.slack.bot import APOLOGY
from dialogs.kudos import KudosDialog
from rewards.services.kudos import KudosService
from rewards.store.db import Database
from rewards.store.models import InboundEvent, Kudos, Member
from tests.factories import add_member
from tests.test_slack import BOB, LI, count, slack_app


async def test_two_copies_of_a_kudos_command_racing_give_one_kudos(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both copies pass the check that the delivery is new before either writes (they meet in
    `give`); the one whose marker lands second writes nothing and answers nothing."""
    arrived: list[asyncio.Event] = [asyncio.Event(), asyncio.Event()]
    original = KudosService.give

    async def meeting(self: KudosService, *args: Any, **kwargs: Any) -> Any:
        mine = arrived[0] if not arrived[0].is_set() else arrived[1]
        mine.set()
        # SQLite's second copy waits on the first one's write lock instead: it never arrives.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in arrived)), 2)
        return await original(self, *args, **kwargs)

    async with slack_app(database) as slack:
        await slack.command("/kudos", f"<@{LI}> <@{BOB}> warming up")  # meets everyone first
        monkeypatch.setattr(KudosService, "give", meeting)
        body = slack.command_body("/kudos", f"<@{LI}> <@{BOB}> the racing copies")
        answers = await asyncio.gather(
            *(slack.post(body, "application/x-www-form-urlencoded") for _ in range(2))
        )
        texts = [await answer.text() for answer in answers]
        await slack.bot.drain()
        assert all(answer.status == 200 for answer in answers)
        if not database.is_sqlite:
            assert arrived[1].is_set(), texts  # both copies were past the check: a real race
        assert await count(database, Kudos) == 2
        assert sum("the racing copies" in text for text in texts) == 1, texts
        assert [text for text in texts if "the racing copies" not in text] == [""]
        for text in texts:
            slack.api.answered(text)
        posted = [p for p in slack.api.public() if "the racing copies" in str(p)]
        assert len(posted) == 1


async def test_a_first_contact_kudos_writes_its_marker_with_the_admission(
    database: Database,
) -> None:
    """A sender seen for the first time is admitted (their member and account are written)
    before the kudos: the marker is written before that first write, in the same transaction,
    and a copy of the command sent afterwards is absorbed."""
    async with slack_app(database) as slack:
        body = slack.command_body("/kudos", f"<@{LI}> thanks for the welcome")
        first = await slack.post(body, "application/x-www-form-urlencoded")
        assert "thanks for the welcome" in await first.text()
        again = await slack.post(body, "application/x-www-form-urlencoded")
        assert again.status == 200 and await again.text() == ""
        await slack.bot.drain()
        assert await count(database, Kudos) == 1
        assert await count(database, InboundEvent) == 1


async def test_a_command_that_only_reads_still_marks_its_delivery(database: Database) -> None:
    async with slack_app(database) as slack:
        await slack.command("/kudos", f"<@{LI}> meets everyone")
        before = await count(database, InboundEvent)
        body = slack.command_body("/leaderboard", "")
        shown = await slack.post(body, "application/x-www-form-urlencoded")
        assert shown.status == 200 and await shown.text() != ""
        assert await count(database, InboundEvent) == before + 1
        repeat = await slack.post(body, "application/x-www-form-urlencoded")
        assert repeat.status == 200 and await repeat.text() == ""


async def test_a_turn_may_not_write_after_its_autocommitted_statement(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A held kudos sent as the turn's last write commits as it runs (PostgreSQL); a dialog that
    wrote after it would make a second transaction, so the unit refuses that write (rolled
    back, the turn apologises) instead of committing it apart. Nothing in the product writes
    there; this is the guard that would make such a change fail loudly."""
    if database.is_sqlite:
        pytest.skip("SQLite writes the marker first: a turn is always one transaction there")
    original = KudosDialog._give

    async def give_then_write(self: KudosDialog, ctx: Any, *args: Any) -> Any:
        finish = await original(self, ctx, *args)
        if "then a write" in args[1]:
            await add_member(database, "Written After")
        return finish

    async with slack_app(database) as slack:
        await slack.command("/kudos", f"<@{LI}> <@{BOB}> meets everyone")
        monkeypatch.setattr(KudosDialog, "_give", give_then_write)
        answer = await slack.post(
            slack.command_body("/kudos", f"<@{LI}> a kudos, then a write"),
            "application/x-www-form-urlencoded",
        )
        text = await answer.text()
        await slack.bot.drain()
        async with database.read() as session:
            written = await session.scalar(
                select(func.count()).where(col(Member.display_name) == "Written After")
            )
        assert written == 0
        # The kudos had committed as its statement ran; the write after it did not.
        assert await count(database, Kudos) == 2
        assert APOLOGY in text

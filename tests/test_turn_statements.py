"""The turn's member look-up and conversation clear, run as fixed statements (on PostgreSQL
inside a unit straight on the driver), give what they gave through the session, on both
databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert, update

from rewards.clock import FixedClock
from rewards.services import conversations
from rewards.services.conversations import ConversationKey, State
from rewards.services.members import (
    ACCOUNT,
    MEMBER,
    cached_member,
    get_member,
    link_account,
    remember_accounts,
)
from rewards.store.db import MEMBERS, Database, turn_cache
from tests.factories import add_member

LOCKED_AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


async def _imported_account(db: Database, member_id: int, user_id: str) -> None:
    """An account as the HR import stores it: no tenant known."""
    async with db.write() as session:
        await session.execute(
            insert(ACCOUNT).values(
                member_id=member_id,
                platform="slack",
                tenant="",
                user_id=user_id,
                username=None,
                created_at=LOCKED_AT,
            )
        )


async def test_the_turn_look_up_gives_the_members_as_get_member_does(
    database: Database,
) -> None:
    ana = await add_member(
        database,
        "Ana Lopez",
        groups=("mentors", "backend"),
        timezone="Europe/Madrid",
        birthday=(3, 14),
        hired=date(2020, 5, 1),
    )
    li = await add_member(database, "Li Wei", department=None, job_code=None)
    await link_account(database, ana, "slack", "U0ANA", tenant="T1", username="ana_l")
    await link_account(database, ana, "telegram", "4242", username="ana")
    await _imported_account(database, li, "U0LI")  # claimed in any workspace
    other = await add_member(database, "Someone Else")
    await link_account(database, other, "slack", "U0ANA", tenant="T2")  # another workspace
    async with database.write() as session:
        await session.execute(
            update(MEMBER).where(MEMBER.c.id == ana).values(giving_locked_at=LOCKED_AT)
        )
    expected = {ana: await get_member(database, ana), li: await get_member(database, li)}
    assert expected[ana].giving_locked_at == LOCKED_AT

    async with database.unit(), database.read() as session:
        await remember_accounts(database, "slack", ["U0ANA", " U0LI", "U0NOBODY"], "T1")
        cache = turn_cache(session, MEMBERS)
        assert cache is not None
        assert cache[("account", "slack", "U0ANA", "T1")] == ana
        assert cache[("account", "slack", "U0LI", "T1")] == li
        assert cache[("account", "slack", "U0NOBODY", "T1")] is None
        for member_id, view in expected.items():
            assert cached_member(session, member_id) == view
        locked = cached_member(session, ana)
        assert locked is not None and locked.giving_locked_at is not None
        assert locked.giving_locked_at.tzinfo is UTC


async def test_clearing_a_conversation_in_a_unit_says_whether_there_was_one(
    database: Database, clock: FixedClock
) -> None:
    key = ConversationKey("slack", "T1", "C1", "U1")
    other = ConversationKey("slack", "T1", "C2", "U1")
    ttl = timedelta(minutes=5)
    await conversations.save(database, key, State("badge", "pick"), clock.now(), ttl)
    await conversations.save(database, other, State("badge", "pick"), clock.now(), ttl)
    async with database.unit():
        assert await conversations.clear(database, key)
        assert not await conversations.clear(database, key)
        assert await conversations.load(database, key, clock.now()) is None
    assert await conversations.load(database, key, clock.now()) is None
    assert await conversations.load(database, other, clock.now()) is not None

"""The turn's member look-up and conversation clear, run as fixed statements (on PostgreSQL
inside a unit straight on the driver), give what they gave through the session, on both
databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import event, insert, update

from rewards.clock import FixedClock
from rewards.membership import Person, admit, known_member
from rewards.services import conversations
from rewards.services.conversations import ConversationKey, State
from rewards.services.members import (
    ACCOUNT,
    MEMBER,
    cached_member,
    find_by_email,
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


class _Statements:
    """The statements the engine is asked to run, by their first word."""

    def __init__(self, db: Database) -> None:
        self.engines = [engine.sync_engine for engine in db.engines()]
        self.seen: list[str] = []

    def __enter__(self) -> list[str]:
        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._on)
        return self.seen

    def __exit__(self, *_exc: object) -> None:
        for engine in self.engines:
            event.remove(engine, "before_cursor_execute", self._on)

    def _on(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        word = statement.split()[0].upper()
        if word in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            self.seen.append(word)


async def test_a_turn_reads_a_conversation_once_and_clears_only_a_state_it_may_have(
    database: Database, clock: FixedClock
) -> None:
    key = ConversationKey("slack", "T1", "C1", "U1")
    ttl = timedelta(minutes=5)
    now = clock.now()
    async with database.unit():
        with _Statements(database) as seen:
            assert await conversations.load(database, key, now) is None
            assert not await conversations.clear(database, key)  # known to have none
        assert seen == ["SELECT"]
        with _Statements(database) as seen:
            await conversations.save(
                database, key, State("badge", "pick", {"a": [1]}, "n1"), now, ttl
            )
            first = await conversations.load(database, key, now)
            assert first is not None and first.values == {"a": [1]}
            first.values["a"].append(2)  # a caller's changes are its own
            again = await conversations.load(database, key, now)
            assert again is not None and (again.nonce, again.values) == ("n1", {"a": [1]})
        assert seen == ["INSERT", "SELECT"]
        with _Statements(database) as seen:
            assert await conversations.claim(database, key, "n1", "n2", now)
            claimed = await conversations.load(database, key, now)  # read again after a claim
            assert claimed is not None and claimed.nonce == "n2"
            assert await conversations.clear(database, key)
            assert not await conversations.clear(database, key)
        assert seen == ["UPDATE", "SELECT", "DELETE"]
    assert await conversations.load(database, key, now) is None

    # A state the turn read expires by a later `now` as it would have in the database.
    await conversations.save(database, key, State("badge", "pick"), now, ttl)
    async with database.unit():
        assert await conversations.load(database, key, now) is not None
        assert await conversations.load(database, key, now + ttl) is None
    assert await conversations.load(database, key, now) is None

    # Outside a unit nothing is kept: every call asks the database.
    await conversations.save(database, key, State("badge", "pick"), now, ttl)
    with _Statements(database) as seen:
        assert await conversations.load(database, key, now) is not None
        assert await conversations.load(database, key, now) is not None
        assert await conversations.clear(database, key)
        assert not await conversations.clear(database, key)
    assert seen == ["SELECT", "SELECT", "DELETE", "DELETE"]


async def test_admitting_people_the_turn_looked_up_reads_them_from_the_turn(
    database: Database,
) -> None:
    ana = await add_member(database, "Ana Lopez")
    li = await add_member(database, "Li Wei")
    await link_account(database, ana, "slack", "U0ANA", tenant="T1", username="ana_l")
    await _imported_account(database, li, "U0LI")  # its workspace is learnt at first sight
    async with database.unit():
        await remember_accounts(database, "slack", ["U0ANA", "U0LI", "U0NEW"], "T1")
        with _Statements(database) as seen:
            known = await known_member(database, "slack", "U0ANA", "T1")
            assert known is not None and known.id == ana
            assert await known_member(database, "slack", "U0NEW", "T1") is None
            admitted = await admit(database, Person("slack", "U0ANA", "T1", username="ana_l"))
            assert admitted == known
            assert await find_by_email(database, " Ana.Lopez@example.com") == known
        assert seen == []  # all from the turn's look-up
        # What the profile would change is still written: the imported account's workspace.
        claimed = await admit(database, Person("slack", "U0LI", "T1"))
        assert claimed.id == li
        assert [(a.platform, a.tenant, a.user_id) for a in claimed.accounts] == [
            ("slack", "T1", "U0LI")
        ]
    assert (await get_member(database, li)).accounts[0].tenant == "T1"

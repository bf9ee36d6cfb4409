"""What one Slack `/kudos` costs the database: statements and commits of the whole turn.

A real slack-bolt app against the fake Slack Web API (`tests.support.slack_api`), on SQLite and
PostgreSQL. The kudos is the sender's second command of the day, by people already known, so it
is the steady state of a busy workspace (first contact adds `users.info` and the admission of the
people named; the first turn of a member's day fires the login event).

The event hooks (Automated Badges and workflows on ``kudos.given`` / ``kudos.received``) run after
the reply from rows the turn stages (`rewards.hooks`); they are held back while the turn is
counted and run afterwards (`tests/test_hooks.py` measures them). What is counted is the turn
itself: the delivery marker, the people named, the channel, the activity, the dialog, the kudos,
its staged hooks and the conversation state. Statements are
what the driver is asked to execute (SQLAlchemy's `before_cursor_execute`, which includes SQLite's
`BEGIN IMMEDIATE`) plus what the driver sends on its own: asyncpg's `BEGIN` and the `COMMIT` of
each transaction it began. On SQLite: 12 at most (the delivery marker, the one look-up of the
three people, the kudos, its tags, receivers, tag links, ledger entries, leaderboard counters
and staged hooks, the conversation state, BEGIN and COMMIT). On PostgreSQL: 2, and no BEGIN
(the look-up of the three people, sent outside a transaction, then the kudos' one statement
carrying its delivery marker and the delete of a pending dialog, which commits as it runs:
`Unit.hold`). The activity row was written by the sender's earlier
turn today, and the channel was stored by it, so this process does not store it again for ten
minutes.

Teams messages and Telegram updates are one unit of work too: their kudos commit once, on one
connection, with the replies sent after the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event, func, select
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.engine.default import CACHE_HIT
from sqlmodel import col

from bots.server import CORE, create_app
from bots.telegram import SECRET_HEADER, WEBHOOK_PATH
from bots.telegram import setup as telegram_setup
from rewards.clock import FixedClock
from rewards.services import conversations
from rewards.services.catalog import get_definition, list_definitions, load_catalog
from rewards.services.conversations import ConversationKey, State
from rewards.store.db import Database
from rewards.store.models import Kudos, KudosReceiver, LedgerEntry
from tests import test_teams as teams
from tests import test_telegram as telegram
from tests.factories import add_member, add_reward
from tests.support.api import api_client
from tests.support.teams_connector import FakeConnector
from tests.support.telegram_api import FakeBotAPI
from tests.test_slack import ANA, BOB, CHANNEL, LI, TEAM, slack_app

MAX_STATEMENTS = 12
MAX_SHOWN = 4000
"""Characters of a statement kept: the kudos' single statement on PostgreSQL is ~1,900."""


def keyed_pool(database: Database) -> int:
    """Where a kudos turn's connection comes from (`Recorded.pools`): the keyed turns' own pool
    on PostgreSQL; SQLite has one."""
    return 0 if database.is_sqlite else 1


def _writes_kudos(statement: str) -> bool:
    """The kudos insert: a statement of its own on SQLite, the head of the kudos' one
    statement on PostgreSQL (`rewards.services.kudos_rows`)."""
    return statement.startswith(
        (
            "INSERT INTO kudos ",
            "WITH k AS (INSERT INTO kudos ",
            "WITH claim AS (INSERT INTO inbound",
        )
    )


@dataclass
class Recorded:
    statements: list[str] = field(default_factory=list)
    # Statements SQLAlchemy compiled for this execution instead of taking them from its cache
    # (a multi-row `.values([...])` is compiled anew every time its rows change).
    compiled: list[str] = field(default_factory=list)
    commits: int = 0
    checkouts: int = 0
    # PostgreSQL: transactions asyncpg began (its BEGIN, sent by the driver itself).
    begins: int = 0
    # The pool of each checkout: 0 the database's main pool, 1 (PostgreSQL) the keyed turns'
    # pool, whose statements keep their generic plans (`Database.unit`'s `planned_once`).
    pools: list[int] = field(default_factory=list)


@contextmanager
def recording(database: Database) -> Iterator[Recorded]:
    engines = [engine.sync_engine for engine in database.engines()]  # a kudos turn's pool too
    seen = Recorded()

    def on_execute(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: Any
    ) -> None:
        if not statement.lstrip().upper().startswith("BEGIN") or database.is_sqlite:
            seen.statements.append(" ".join(statement.split())[:MAX_SHOWN])
        compiled = context is not None and context.compiled is not None
        if compiled and context.cache_hit is not CACHE_HIT:
            seen.compiled.append(" ".join(statement.split())[:MAX_SHOWN])

    def on_commit(_conn: Any) -> None:
        seen.commits += 1

    def on_checkout(pool: int) -> Callable[..., None]:
        def checked_out(*_args: Any) -> None:
            seen.checkouts += 1
            seen.pools.append(pool)

        return checked_out

    counters = [on_checkout(pool) for pool in range(len(engines))]

    adapter = AsyncAdapt_asyncpg_connection
    begin = adapter._start_transaction

    async def counted_begin(self: Any) -> None:
        seen.begins += 1
        await begin(self)

    for engine, counter in zip(engines, counters, strict=True):
        event.listen(engine, "before_cursor_execute", on_execute)
        event.listen(engine, "commit", on_commit)
        event.listen(engine.pool, "checkout", counter)
    adapter._start_transaction = counted_begin  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        adapter._start_transaction = begin  # type: ignore[method-assign]
        for engine, counter in zip(engines, counters, strict=True):
            event.remove(engine, "before_cursor_execute", on_execute)
            event.remove(engine, "commit", on_commit)
            event.remove(engine.pool, "checkout", counter)


async def test_a_slack_kudos_is_one_transaction_of_at_most_12_statements(
    database: Database,
) -> None:
    async with slack_app(database) as slack:
        core = slack.bot.core
        await slack.command("/kudos", f"<@{LI}> <@{BOB}> first one #teamwork")  # meets everyone
        await slack.command("/myrewards")  # the sender's first turn of the day is behind them
        # The turn stages its event hooks (one insert); they run after the reply, on their own
        # connections, so they are held back while the turn is counted and run afterwards.
        await core.hooks.stop()  # no poll lands in the count; drain() still runs them below
        woken = list(database.hook_listeners)
        database.hook_listeners.clear()
        with recording(database) as looked_up:  # the people are read, and kept from here on
            await slack.command("/kudos", f"<@{LI}> <@{BOB}|bob> a rehearsal #teamwork #quality")
        with recording(database) as shaped:  # the same shape once: what it compiles is cached
            await slack.command("/kudos", f"<@{LI}> <@{BOB}|bob> an encore #teamwork #quality")
        with recording(database) as seen:
            await slack.command("/kudos", f"<@{LI}> <@{BOB}|bob> great demo #teamwork #quality")
        database.hook_listeners.extend(woken)
        assert len(shaped.statements) == len(seen.statements), seen.statements
        # Every statement of the turn comes from SQLAlchemy's compiled cache: none is compiled
        # per kudos (multi-row `.values([...])` inserts were, 17% of the turn's CPU).
        assert seen.compiled == [], seen.compiled
        assert any("INSERT INTO event_hook" in s for s in seen.statements)
        if not database.is_sqlite:  # the kudos' rows are one statement on PostgreSQL
            [rows] = [s for s in seen.statements if "INSERT INTO kudos " in s]
            tables = ("inbound_event", "kudos_receiver", "kudos_tag_link", "ledger_entry")
            for table in (*tables, "event_hook"):
                assert f"INSERT INTO {table} " in rows, table
            # ... with the delivery marker, and sent without BEGIN: it commits as it runs, and
            # the reads before it needed no transaction (READ COMMITTED: each statement sees
            # the latest committed rows, inside a transaction or not).
            assert seen.begins == 0, seen.statements
            assert [s for s in seen.statements if "INSERT" in s] == [rows]
            # No read of inbound_event: a planned look-up there turned into a sequential scan
            # whenever the young table's statistics lagged (0.23 ms a turn instead of 0.02);
            # the marker's insert finds a repeat through its unique index.
            reads = [s for s in looked_up.statements if s.startswith("SELECT")]
            assert not any("inbound_event" in s for s in reads), reads
            # Nor of conversation_state: the kudos' statement deletes a pending dialog as it
            # writes (a kudos command replaces it), so the one read is the people's look-up ...
            assert len(reads) == 1 and "conversation_state" not in reads[0], reads
            assert len(looked_up.statements) == 2, looked_up.statements
            assert "DELETE FROM conversation_state" in rows
            # ... and once they are kept (under the membership version, which the kudos'
            # statement checks: tests/test_kept_people.py), a kudos is its one statement.
            assert seen.statements == [rows]
        await core.hooks.drain()
        async with database.read() as session:
            assert await session.scalar(select(func.count()).select_from(Kudos)) == 4
            assert await session.scalar(select(func.count()).select_from(KudosReceiver)) == 8
            kudos_entries = select(func.count()).where(col(LedgerEntry.kind) == "kudos")
            assert await session.scalar(kudos_entries) == 8
        [posted] = [p for p in slack.api.public() if "great demo" in str(p)]
        assert "Li Wei" in posted["text"] and "Bob Stone" in posted["text"]
        assert seen.commits == 1, seen.statements
        assert seen.pools == [keyed_pool(database)]
        # What reaches the server: the statements, and the COMMIT of each transaction begun
        # (SQLite's BEGIN IMMEDIATE is among the statements; asyncpg sends its BEGIN itself).
        commits = 1 if database.is_sqlite else seen.begins
        on_the_wire = len(seen.statements) + seen.begins + commits
        assert on_the_wire <= (MAX_STATEMENTS if database.is_sqlite else 2), seen.statements


async def test_a_rest_kudos_reads_each_person_once_and_commits_once(
    database: Database, clock: FixedClock
) -> None:
    """`POST /kudos/api/v1/user_kudos`: the giver and receivers are read once (one query each,
    by id) and the kudos commits as one transaction; the audit row is the request's only other
    commit (it is written after the answer is known, on purpose in its own transaction)."""
    ana = await add_member(database, "Ana")
    bob = await add_member(database, "Bob")
    cy = await add_member(database, "Cy")
    async with api_client(database, clock) as api:
        body = {"giver": ana, "receivers": [bob, cy], "message": "thanks", "tags": ["teamwork"]}
        headers = api.auth()
        first = await api.client.post("/kudos/api/v1/user_kudos", json=body, headers=headers)
        assert first.status == 201, await first.text()
        core = api.client.server.app[CORE]
        served = core.db
        await core.hooks.stop()  # no poll lands in the count; drain() still runs them below
        woken = list(served.hook_listeners)
        served.hook_listeners.clear()  # the hooks run after the answer: not counted here
        with recording(served) as seen:
            again = await api.client.post("/kudos/api/v1/user_kudos", json=body, headers=headers)
        served.hook_listeners.extend(woken)
        assert again.status == 201, await again.text()
        await core.hooks.drain()
    member_reads = [s for s in seen.statements if s.startswith("SELECT member.id")]
    assert len(member_reads) == 3, seen.statements  # ana, bob, cy: once each
    assert seen.commits == 2, seen.statements  # the kudos, the audit row
    assert keyed_pool(served) in seen.pools  # the kudos' unit; the audit row takes the main pool


async def test_the_catalogue_is_cached_per_process_and_a_load_reaches_every_replica(
    database: Database, clock: FixedClock
) -> None:
    """Definitions are read once per catalogue version; a load through another `Database` (a
    replica) bumps the version, and this one re-reads at its next turn. Inside a unit the version
    is checked once, however often the turn asks for definitions."""
    await add_reward(database, reward_id=1, reward="One")
    assert [d.reward for d in await list_definitions(database)] == ["One"]
    with recording(database) as seen:
        async with database.unit():
            for _ in range(3):
                assert [d.reward for d in await list_definitions(database)] == ["One"]
            assert (await get_definition(database, 1)).reward == "One"
    assert len(seen.statements) == (2 if database.is_sqlite else 1), seen.statements

    replica = Database(database.url)
    try:
        [one] = await list_definitions(replica)
        renamed = one.model_copy(update={"reward": "Renamed"})
        await load_catalog(replica, [renamed], clock=clock)
    finally:
        await replica.dispose()
    assert [d.reward for d in await list_definitions(database)] == ["Renamed"]


@contextmanager
def hooks_held_back(core: Any) -> Iterator[None]:
    """The turn stages its event hooks; they run after the reply on their own connections, so
    they are kept out of a count (`drain()` still runs them afterwards)."""
    database = core.db
    woken = list(database.hook_listeners)
    database.hook_listeners.clear()
    try:
        yield
    finally:
        database.hook_listeners.extend(woken)


async def test_a_teams_kudos_is_one_transaction(database: Database) -> None:
    """A Teams message is one unit of work, like a Slack command: the delivery marker, the
    people named, the conversation reference, the kudos and its hooks commit once, on one
    connection; the reply goes out after the commit."""
    async with FakeConnector() as connector:
        teams.profiles(connector)
        app, _ = teams.make_app(database)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            core = app[CORE]
            first = teams.payload("message_channel_kudos", connector)
            assert (await teams.send(client, first)).status == 200  # meets everyone
            await core.hooks.stop()
            again = teams.payload("message_channel_kudos", connector, id="1763478009999")
            again["text"] = again["text"].replace("great demo", "second demo")
            with hooks_held_back(core), recording(core.db) as seen:
                assert (await teams.send(client, again)).status == 200
            await core.hooks.drain()
            async with core.db.read() as session:
                assert await session.scalar(select(func.count()).select_from(Kudos)) == 2
            assert len(connector.posted()) == 2
    assert any(_writes_kudos(s) for s in seen.statements), seen.statements
    assert seen.commits == 1, seen.statements
    assert seen.pools == [keyed_pool(database)], seen.statements


async def test_a_telegram_kudos_is_one_transaction(database: Database) -> None:
    """A Telegram update is one unit of work: the `update_id` marker, the people named, the chat,
    the kudos and its hooks commit once, on one connection; the messages go out after it."""
    await telegram.people(database)
    api = await FakeBotAPI().start()
    try:
        settings = telegram.telegram_settings(database, api)
        app = create_app(settings, platforms=False)
        assert telegram_setup(app, settings)
        api.set_chat_member(telegram.GROUP, telegram.BO)
        async with TestClient(TestServer(app)) as client:
            core = app[CORE]

            async def deliver(update: dict[str, Any]) -> None:
                headers = {SECRET_HEADER: telegram.SECRET}
                response = await client.post(WEBHOOK_PATH, json=update, headers=headers)
                assert response.status == 200, await response.text()

            await deliver(telegram.payload("kudos_group"))  # meets everyone (Bo is vouched for)
            await core.hooks.stop()
            again = telegram.payload("kudos_group")
            again["update_id"] += 1
            again["message"]["message_id"] += 1
            with hooks_held_back(core), recording(core.db) as seen:
                await deliver(again)
            await core.hooks.drain()
            async with core.db.read() as session:
                assert await session.scalar(select(func.count()).select_from(Kudos)) == 2
            assert len(api.params("sendMessage")) == 2
    finally:
        await api.close()
    assert any(_writes_kudos(s) for s in seen.statements), seen.statements
    assert seen.commits == 1, seen.statements
    assert seen.pools == [keyed_pool(database)], seen.statements


async def test_a_slack_kudos_clears_a_pending_dialog_and_skips_the_clear_when_there_is_none(
    database: Database,
) -> None:
    """A kudos command replaces the sender's pending dialog in that channel. On PostgreSQL the
    kudos' statement deletes it as it writes, so no statement asks first and none clears it
    after (two statements: the people, the kudos); with a dialog pending it is cleared all the
    same, on both databases. A kudos that is refused leaves it as it was, on both."""
    key = ConversationKey("slack", TEAM, CHANNEL, ANA)
    async with slack_app(database) as slack:
        core = slack.bot.core
        await slack.command("/kudos", f"<@{LI}> <@{BOB}> first one #teamwork")  # meets everyone
        await core.hooks.stop()
        with recording(database) as seen:
            await slack.command("/kudos", f"<@{LI}> thanks for the review #quality")
        clears = [s for s in seen.statements if s.startswith("DELETE FROM conversation_state")]
        if not database.is_sqlite:
            assert clears == [] and len(seen.statements) == 2, seen.statements

        now = core.clock.now()
        await conversations.save(database, key, State("badge", "pick"), now, timedelta(hours=1))
        await slack.command("/kudos", f"<@{LI}> and for the demo #quality")
        assert await conversations.load(database, key, core.clock.now()) is None
        await conversations.save(database, key, State("badge", "pick"), now, timedelta(hours=1))
        await slack.command("/kudos", f"<@{ANA}> thanks me")  # refused: no kudos to oneself
        answer = str(slack.api.of("response_url")[-1].get("text", ""))
        assert "yourself" in answer, answer
        kept = await conversations.load(database, key, core.clock.now())
        assert kept is not None and kept.dialog == "badge"

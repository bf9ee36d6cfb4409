"""People kept across Slack kudos: a kudos may use the people an earlier kudos of the process
looked up (`rewards.services.members.remember_accounts`), under the membership version they were
read with; its statement writes nothing if a member, their groups or accounts changed since
(migration 0023's triggers bump the version), and the turn runs again with a fresh look-up
(`rewards.store.db.StaleLookup`). So a change made anywhere (another replica, the CLI, an admin)
is seen by the next kudos, as when every kudos looked its people up. PostgreSQL only keeps them;
on SQLite every kudos looks its people up, and the same answers hold."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, text, update
from sqlmodel import col

from rewards.admin.locks import LOCKED_SENTENCE, lock
from rewards.services.members_import import import_members
from rewards.store.db import PEOPLE, Database
from rewards.store.models import Kudos, Member, MembershipVersion
from tests.factories import add_member
from tests.test_slack import BOB, LI, count, slack_app
from tests.test_turn_cost import _writes_kudos, recording

LI_EMAIL = "li.wei@example.com"


async def _member_id(database: Database, email: str) -> int:
    async with database.read() as session:
        found = await session.scalar(select(col(Member.id)).where(col(Member.email) == email))
    assert found is not None
    return int(found)


async def test_a_member_renamed_after_their_look_up_is_named_anew(database: Database) -> None:
    async with slack_app(database) as slack:
        await slack.command("/kudos", f"<@{LI}> <@{BOB}> first one #teamwork")  # meets everyone
        await slack.command("/kudos", f"<@{LI}> <@{BOB}> kept from here on #teamwork")
        if not database.is_sqlite:
            assert len(database.memo[PEOPLE]) == 3  # the sender and the two people named
        async with database.write() as session:  # as another replica or the CLI would
            await session.execute(
                update(Member).where(col(Member.email) == LI_EMAIL).values(display_name="Li Chen")
            )
        with recording(database) as seen:
            await slack.command("/kudos", f"<@{LI}> <@{BOB}> after the rename #teamwork")
        [posted] = [p for p in slack.api.public() if "after the rename" in str(p)]
        assert "Li Chen" in posted["text"] and "Li Wei" not in posted["text"], posted
        assert await count(database, Kudos) == 3
        if not database.is_sqlite:
            # The kudos with the kept people wrote nothing (the version had moved), then the turn
            # ran again: the look-up, and the kudos' statement once more.
            writes = [s for s in seen.statements if _writes_kudos(s)]
            reads = [s for s in seen.statements if s.startswith("SELECT held.user_id")]
            assert (len(writes), len(reads)) == (2, 1), seen.statements
            assert seen.statements.index(reads[0]) == 1, seen.statements


async def test_a_giver_locked_after_their_look_up_is_refused(database: Database) -> None:
    async with slack_app(database) as slack:
        await slack.command("/kudos", f"<@{LI}> <@{BOB}> first one #teamwork")
        await slack.command("/kudos", f"<@{LI}> kept from here on #teamwork")
        ana = await _member_id(database, "ana.lopez@example.com")
        async with database.write() as session:
            await lock(session, ana, "testing", datetime(2026, 12, 7, tzinfo=UTC))
        answer = await slack.command("/kudos", f"<@{LI}> while locked #teamwork")
        assert LOCKED_SENTENCE.split(":")[0] in await answer.text()
        assert await count(database, Kudos) == 2


async def test_every_change_to_members_groups_or_accounts_moves_the_version(
    database: Database,
) -> None:
    """The triggers of migration 0023 (PostgreSQL): an insert, an update and a delete of each
    table the look-up reads moves the version, whoever writes it."""
    if database.is_sqlite:
        return  # no triggers there: nothing is kept on SQLite
    await add_member(database, "Vee Vance")  # a member inserted
    async with database.read() as session:
        versions = [await session.scalar(select(col(MembershipVersion.version)))]
    statements = [
        "INSERT INTO member_group (member_id, name) SELECT id, 'band' FROM member",
        "INSERT INTO platform_account (member_id, platform, tenant, user_id, created_at) "
        "SELECT id, 'slack', 'T1', 'U1', now() FROM member",
        "UPDATE platform_account SET username = 'vee'",
        "UPDATE member_group SET name = 'choir'",
        "UPDATE member SET display_name = 'Vee'",
        "DELETE FROM platform_account",
        "DELETE FROM member_group",
        "DELETE FROM member",
    ]
    for statement in statements:
        async with database.write() as session:
            await session.execute(text(statement))
        async with database.read() as session:
            versions.append(await session.scalar(select(col(MembershipVersion.version))))
    assert versions[0] is not None and versions == sorted(set(versions)), versions
    assert len(versions) == len(statements) + 1, versions


async def test_a_transaction_moves_the_version_once_however_many_members_it_writes(
    database: Database, tmp_path: Path
) -> None:
    """An import of many members, each row its own statement, moves it by one: a bump per
    statement made a chain of row versions each bump had to walk (the import of 100,000
    members took 313 s instead of 22 s)."""
    if database.is_sqlite:
        return
    await add_member(database, "First One")
    async with database.read() as session:
        before = await session.scalar(select(col(MembershipVersion.version)))
    people = tmp_path / "people.csv"
    people.write_text(  # groups and accounts: rows written by executemany, a statement each
        "email,display_name,groups,slack_user_id\n"
        + "".join(f"person{i}@example.com,Person {i},band;choir,U{i:08d}\n" for i in range(300)),
        encoding="utf-8",
    )
    report = await import_members(database, people)
    assert report.created == 300
    async with database.read() as session:
        after = await session.scalar(select(col(MembershipVersion.version)))
    assert after == before + 1

"""The membership layer on its own: who is admitted under each policy, bots, the boundary's
answers, and one-time link codes (on SQLite and PostgreSQL). The adapters' own tests drive the
same rules through the real platform SDKs."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from rewards.clock import FixedClock
from rewards.core import Core
from rewards.errors import InvalidInput, NotAllowed
from rewards.membership import (
    LINK_TTL,
    BotRefused,
    Boundary,
    NotAMember,
    Person,
    admit,
    check_mention_count,
    issue_code,
    known_member,
    redeem_code,
    refusal_for,
)
from rewards.services.members import find_by_account, get_member, link_account
from rewards.settings import Settings, load_settings
from rewards.store.db import Database
from rewards.store.models import LinkCode, Member
from tests.factories import add_member
from tests.support.rowcounts import assert_unchanged, table_counts

SLACK_ANA = Person("slack", "U0ANA", "T0001", email="ana@example.com", display_name="Ana")
STRANGER = Person("slack", "U0NEW", "T0001", email="new@example.com", display_name="New")


# --- the boundary -------------------------------------------------------------------------------


def test_boundary_reads_the_settings() -> None:
    settings = load_settings(
        {
            "SLACK_TEAM_IDS": "T0001, E0GRID",
            "REWARDS_TENANT_ID": "Tenant-A,tenant-b",
            "TELEGRAM_CHAT_ID": "-100123",
            "TELEGRAM_ALLOWED_CHATS": "-100456,-100123",
            "MEMBERSHIP": "Directory",
        }
    )
    assert settings.tenant_ids == ("Tenant-A", "tenant-b")
    assert settings.bot_tenant_id == "Tenant-A"  # the bot's own, for single-tenant sign-in
    assert settings.telegram_allowed_chats == ("-100123", "-100456")
    assert settings.membership == "directory"
    boundary = Boundary.from_settings(settings)
    assert boundary.slack_allows("T0001")
    assert boundary.slack_allows("T0999", enterprise_id="E0GRID")
    assert not boundary.slack_allows("T0999")
    assert boundary.teams_allows("tenant-a") and boundary.teams_allows("TENANT-B")
    assert not boundary.teams_allows("tenant-c")
    assert boundary.emulator and boundary.teams_allows("")  # no app id: the Emulator sends none


def test_boundary_fails_closed_without_a_known_slack_workspace() -> None:
    boundary = Boundary.from_settings(Settings())
    assert not boundary.slack_allows("T0001")  # auth.test not answered yet
    assert boundary.slack_allows("T0001", own_team="T0001")
    assert not boundary.slack_allows("T0002", own_team="T0001")


def test_teams_without_a_tenant_list_serves_any_tenant_but_says_so() -> None:
    boundary = Boundary.from_settings(Settings(bot_app_id="app"))
    assert boundary.teams_allows("anyone")
    assert "ANY tenant" in boundary.describe()["teams"]
    signed = Boundary.from_settings(Settings(bot_app_id="app", tenant_ids=("t1",)))
    assert not signed.teams_allows("")  # signed traffic always names its tenant


def test_membership_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="MEMBERSHIP must be one of open, directory"):
        load_settings({"MEMBERSHIP": "everyone"})


def test_mentions_are_counted_before_they_are_resolved() -> None:
    check_mention_count(10, 10)
    with pytest.raises(InvalidInput, match="at most 10 people"):
        check_mention_count(50, 10)


# --- admission ----------------------------------------------------------------------------------


async def test_open_policy_admits_a_stranger_inside_the_boundary(
    database: Database, clock: FixedClock
) -> None:
    member = await admit(database, STRANGER, policy="open", clock=clock)
    assert member.email == "new@example.com"
    assert await known_member(database, "slack", "U0NEW", "T0001") == member


async def test_directory_policy_refuses_strangers_and_writes_nothing(
    database: Database, clock: FixedClock
) -> None:
    before = await table_counts(database)
    with pytest.raises(NotAMember, match="ask your admin"):
        await admit(database, STRANGER, policy="directory", clock=clock)
    assert_unchanged(before, await table_counts(database))


async def test_directory_policy_links_an_imported_person_by_email(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    member = await admit(database, SLACK_ANA, policy="directory", clock=clock)
    assert member.id == ana
    assert (await find_by_account(database, "slack", "U0ANA", "T0001")) is not None


async def test_directory_policy_admits_an_imported_platform_id(
    database: Database, clock: FixedClock
) -> None:
    li = await add_member(database, "Li")
    await link_account(database, li, "telegram", "@li_w")  # imported by @username only
    member = await admit(
        database, Person("telegram", "777", username="Li_W"), policy="directory", clock=clock
    )
    assert member.id == li
    assert member.account("telegram") is not None
    assert member.account("telegram").user_id == "777"  # type: ignore[union-attr]


async def test_telegram_is_never_open_to_the_world(database: Database, clock: FixedClock) -> None:
    person = Person("telegram", "424242", display_name="Who")
    before = await table_counts(database)
    with pytest.raises(NotAMember, match="/link CODE"):
        await admit(database, person, policy="open", clock=clock)
    assert_unchanged(before, await table_counts(database))
    vouched = await admit(database, person, policy="open", vouched=True, clock=clock)
    assert vouched.display_name == "Who"
    with pytest.raises(NotAMember):  # chat membership does not open a directory
        await admit(database, Person("telegram", "1"), policy="directory", vouched=True)


async def test_bots_never_become_members(database: Database, clock: FixedClock) -> None:
    before = await table_counts(database)
    with pytest.raises(BotRefused, match="Bots can't take part"):
        await admit(database, Person("slack", "B1", "T0001", is_bot=True), clock=clock)
    assert_unchanged(before, await table_counts(database))


# --- link codes ---------------------------------------------------------------------------------


async def test_a_link_code_joins_a_telegram_account_to_the_member(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    code, expires = await issue_code(database, ana, "slack", clock=clock)
    assert len(code) == 9 and code[4] == "-" and expires == clock.now() + LINK_TTL
    linked = await redeem_code(database, code.lower(), Person("telegram", "555"), clock=clock)
    assert linked.member.id == ana and not linked.already
    assert (await known_member(database, "telegram", "555")) == linked.member
    with pytest.raises(InvalidInput, match="wrong or has expired"):  # single use
        await redeem_code(database, code, Person("telegram", "556"), clock=clock)


async def test_link_codes_expire_and_refusals_write_nothing(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    code, _ = await issue_code(database, ana, "slack", clock=clock)
    before = await table_counts(database)
    with pytest.raises(InvalidInput, match="send it from your account on another platform"):
        await redeem_code(database, code, Person("slack", "U9", "T1"), clock=clock)
    with pytest.raises(InvalidInput, match="wrong or has expired"):
        await redeem_code(database, "ZZZZ-ZZZZ", Person("telegram", "1"), clock=clock)
    with pytest.raises(InvalidInput, match="wrong or has expired"):
        await redeem_code(database, "not a code!", Person("telegram", "1"), clock=clock)
    with pytest.raises(BotRefused):
        await redeem_code(database, code, Person("telegram", "2", is_bot=True), clock=clock)
    clock.advance(LINK_TTL + timedelta(seconds=1))
    with pytest.raises(InvalidInput, match="wrong or has expired"):
        await redeem_code(database, code, Person("telegram", "1"), clock=clock)
    assert_unchanged(before, await table_counts(database))


async def test_a_new_code_replaces_the_old_one(database: Database, clock: FixedClock) -> None:
    ana = await add_member(database, "Ana")
    first, _ = await issue_code(database, ana, "slack", clock=clock)
    second, _ = await issue_code(database, ana, "teams", clock=clock)
    with pytest.raises(InvalidInput):
        await redeem_code(database, first, Person("telegram", "1"), clock=clock)
    assert (await redeem_code(database, second, Person("telegram", "1"), clock=clock)).member.id
    async with database.read() as session:
        assert len((await session.scalars(select(LinkCode.id))).all()) == 1


async def test_an_empty_first_sight_member_is_folded_into_the_linked_one(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    shell = await admit(database, Person("telegram", "9"), vouched=True, clock=clock)
    code, _ = await issue_code(database, ana, "slack", clock=clock)
    linked = await redeem_code(database, code, Person("telegram", "9"), clock=clock)
    assert linked.member.id == ana
    assert not (await get_member(database, shell.id)).active


async def test_an_account_with_its_own_history_is_not_moved(
    database: Database, clock: FixedClock
) -> None:
    ana, li = await add_member(database, "Ana"), await add_member(database, "Li")
    busy = await admit(database, Person("telegram", "9"), vouched=True, clock=clock)
    core = Core(settings=Settings(), db=database, clock=clock)
    await core.kudos.give(busy.id, [li], "Thanks for the help")
    code, _ = await issue_code(database, ana, "slack", clock=clock)
    before = await table_counts(database)
    with pytest.raises(NotAllowed, match="ask your admin to merge"):
        await redeem_code(database, code, Person("telegram", "9"), clock=clock)
    assert_unchanged(before, await table_counts(database))
    assert (await known_member(database, "telegram", "9")) == await get_member(database, busy.id)


async def test_two_redemptions_of_one_code_at_once_join_one_account(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    code, _ = await issue_code(database, ana, "slack", clock=clock)
    results = await asyncio.gather(
        *(redeem_code(database, code, Person("telegram", str(n)), clock=clock) for n in (1, 2)),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["InvalidInput", "Linked"]
    async with database.read() as session:
        assert (await session.scalar(select(Member.id).where(Member.id == ana))) == ana


async def test_refusal_for_answers_as_admit_would_without_writing(
    database: Database, clock: FixedClock
) -> None:
    await add_member(database, "Ana")
    before = await table_counts(database)
    assert await refusal_for(database, SLACK_ANA, policy="directory") is None
    assert "ask your admin" in str(await refusal_for(database, STRANGER, policy="directory"))
    assert await refusal_for(database, STRANGER, policy="open") is None
    assert "Bots" in str(await refusal_for(database, Person("slack", "B", "T", is_bot=True)))
    assert "/link" in str(await refusal_for(database, Person("telegram", "5"), policy="open"))
    assert_unchanged(before, await table_counts(database))

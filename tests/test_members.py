"""The identity service: one person, one member, across Teams, Slack and Telegram."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rewards.clock import FixedClock
from rewards.errors import InvalidInput, UnknownMember
from rewards.services.members import (
    ACCOUNT,
    MEMBER,
    AccountView,
    ensure_member_for_account,
    find_by_account,
    find_by_email,
    find_by_username,
    get_member,
    link_account,
    list_members,
    resolve,
    set_preferences,
)
from rewards.services.members_import import import_members
from rewards.store.db import Database


async def _count(db: Database, table: object) -> int:
    async with db.read() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def _import(db: Database, tmp_path: Path, text: str) -> None:
    path = tmp_path / "people.csv"
    path.write_text(text, encoding="utf-8")
    report = await import_members(db, path)
    assert report.rejected == [], [str(r) for r in report.rejected]


async def test_first_sight_creates_a_member_from_the_platform_profile(
    database: Database, clock: FixedClock
) -> None:
    ana = await ensure_member_for_account(
        database,
        "Slack",
        "U0ANA",
        tenant="T-ACME",
        email="  Ana.Lopez@Example.COM ",
        display_name="Ana López",
        username="@Ana",
        timezone="Europe/Madrid",
        clock=clock,
    )
    assert ana.email == "ana.lopez@example.com"
    assert ana.display_name == "Ana López"
    assert ana.timezone == "Europe/Madrid"
    assert ana.active and not ana.leaderboard_opt_out and not ana.celebrations_opt_out
    assert ana.accounts == (AccountView("slack", "T-ACME", "U0ANA", "ana"),)

    again = await ensure_member_for_account(database, "slack", "U0ANA", tenant="T-ACME")
    assert again == ana
    assert await _count(database, MEMBER) == 1


async def test_the_same_email_on_another_platform_is_the_same_person(database: Database) -> None:
    on_slack = await ensure_member_for_account(
        database, "slack", "U0ANA", tenant="T1", email="ana@example.com", display_name="Ana"
    )
    on_teams = await ensure_member_for_account(
        database,
        "teams",
        "6f1c2b2e-9f0a-4c1e-8d7a-2b9b1f3e4a5c",
        tenant="aad-tenant",
        email="ANA@example.com",
        display_name="Ana López (Teams)",
    )
    assert on_teams.id == on_slack.id
    assert on_teams.display_name == "Ana"  # a second platform does not rename anyone
    assert {a.platform for a in on_teams.accounts} == {"slack", "teams"}
    assert await _count(database, MEMBER) == 1


async def test_a_telegram_user_gets_a_stand_in_email_until_the_real_one_is_known(
    database: Database,
) -> None:
    first = await ensure_member_for_account(
        database, "telegram", "424242", username="ana_l", display_name="Ana"
    )
    assert not first.has_real_email
    assert first.email.endswith(".invalid")

    later = await ensure_member_for_account(database, "telegram", "424242", email="ana@example.com")
    assert later.id == first.id
    assert later.email == "ana@example.com"
    assert (await find_by_email(database, "ana@example.com")) == later


async def test_resolve_by_id_email_and_platform_reference(database: Database) -> None:
    ana = await ensure_member_for_account(
        database, "slack", "U0ANA", tenant="T1", email="ana@example.com"
    )
    assert await resolve(database, ana.id) == ana
    assert await resolve(database, f" {ana.id} ") == ana
    assert await resolve(database, "  ANA@example.com") == ana
    assert await resolve(database, "slack:U0ANA") == ana
    assert await resolve(database, "mailto:ana@example.com") == ana
    assert await get_member(database, ana.id) == ana


async def test_unknown_members_get_a_sentence_a_person_can_read(database: Database) -> None:
    await ensure_member_for_account(database, "slack", "U0ANA", email="ana@example.com")
    cases = {
        "ana@nowhere.com": "I don't know anyone called ana@nowhere.com.",
        "404": "I don't know anyone with member id 404.",
        "slack:U404": "I don't know anyone with slack id U404.",
        "bob": "I don't know anyone called bob.",
    }
    for ref, sentence in cases.items():
        with pytest.raises(UnknownMember) as caught:
            await resolve(database, ref)
        assert str(caught.value) == sentence
    with pytest.raises(UnknownMember, match="member id 999"):
        await get_member(database, 999)
    assert await find_by_email(database, "nobody@example.com") is None
    assert await find_by_account(database, "teams", "nobody") is None


async def test_usernames_match_without_at_sign_or_case(database: Database) -> None:
    ana = await ensure_member_for_account(database, "telegram", "1001", username="Ana_L")
    assert await find_by_username(database, "telegram", "@ANA_l") == ana
    assert await find_by_username(database, "telegram", "someone_else") is None
    assert await find_by_username(database, "slack", "ana_l") is None


async def test_privacy_preferences_toggle_independently(
    database: Database, clock: FixedClock
) -> None:
    ana = await ensure_member_for_account(database, "slack", "U0ANA", email="ana@example.com")
    hidden = await set_preferences(database, ana.id, leaderboard_opt_out=True, clock=clock)
    assert hidden.leaderboard_opt_out and not hidden.celebrations_opt_out
    quiet = await set_preferences(database, ana.id, celebrations_opt_out=True, clock=clock)
    assert quiet.leaderboard_opt_out and quiet.celebrations_opt_out
    back = await set_preferences(database, ana.id, leaderboard_opt_out=False, clock=clock)
    assert not back.leaderboard_opt_out and back.celebrations_opt_out
    assert (await get_member(database, ana.id)) == back
    with pytest.raises(UnknownMember):
        await set_preferences(database, 999, leaderboard_opt_out=True)


async def test_concurrent_first_messages_make_one_member_and_one_account(
    database: Database,
) -> None:
    """Twenty replicas see the same new person at once (both with and without an email)."""
    views = await asyncio.gather(
        *(
            ensure_member_for_account(
                database, "slack", "U0ANA", tenant="T1", email="ana@example.com"
            )
            for _ in range(20)
        )
    )
    assert len({view.id for view in views}) == 1
    views = await asyncio.gather(
        *(ensure_member_for_account(database, "telegram", "777", username="li") for _ in range(20))
    )
    assert len({view.id for view in views}) == 1
    assert await _count(database, MEMBER) == 2
    assert await _count(database, ACCOUNT) == 2


async def test_linking_an_account_is_idempotent_and_never_steals_one(database: Database) -> None:
    ana = await ensure_member_for_account(database, "slack", "U0ANA", email="ana@example.com")
    bob = await ensure_member_for_account(database, "slack", "U0BOB", email="bob@example.com")
    linked = await link_account(database, ana.id, "telegram", "1001", username="ana_l")
    assert AccountView("telegram", "", "1001", "ana_l") in linked.accounts
    assert await link_account(database, ana.id, "telegram", "1001") == linked
    with pytest.raises(InvalidInput, match="already linked to someone else"):
        await link_account(database, bob.id, "telegram", "1001")
    with pytest.raises(UnknownMember):
        await link_account(database, 999, "telegram", "2002")
    assert (await find_by_account(database, "telegram", "1001")) == linked


async def test_imported_accounts_are_claimed_by_the_first_real_sighting(
    database: Database, tmp_path: Path
) -> None:
    await _import(
        database,
        tmp_path,
        "email,slack_user_id,telegram_username\nana@example.com,U0ANA,@Ana_L\n",
    )
    ana = await find_by_email(database, "ana@example.com")
    assert ana is not None

    # Slack tells us the workspace; the import did not know it.
    seen_on_slack = await ensure_member_for_account(database, "slack", "U0ANA", tenant="T-ACME")
    assert seen_on_slack.id == ana.id
    assert AccountView("slack", "T-ACME", "U0ANA", None) in seen_on_slack.accounts

    # Telegram only knew the username; the first message brings the numeric id.
    seen_on_telegram = await ensure_member_for_account(
        database, "telegram", "987654", username="ana_l"
    )
    assert seen_on_telegram.id == ana.id
    assert AccountView("telegram", "", "987654", "ana_l") in seen_on_telegram.accounts
    assert await _count(database, MEMBER) == 1
    assert await _count(database, ACCOUNT) == 2


async def test_birth_year_is_kept_but_never_shown(database: Database, tmp_path: Path) -> None:
    await _import(database, tmp_path, "email,birthday\nana@example.com,1990-05-01\n")
    ana = await find_by_email(database, "ana@example.com")
    assert ana is not None
    assert ana.birthday == (5, 1)
    assert ana.birth_year == 1990
    assert "1990" not in str(ana)
    assert "1990" not in repr(ana)


async def test_list_members_filters_and_pages(database: Database, tmp_path: Path) -> None:
    await _import(
        database,
        tmp_path,
        "email,department,groups,active\n"
        "a@example.com,Sales,North,true\n"
        "b@example.com,sales,North;South,true\n"
        "c@example.com,Engineering,South,true\n"
        "d@example.com,Sales,,false\n",
    )
    sales = await list_members(database, department="SALES")
    assert [m.email for m in sales] == ["a@example.com", "b@example.com"]
    south = await list_members(database, group="south")
    assert [m.email for m in south] == ["b@example.com", "c@example.com"]
    everyone = await list_members(database, active=None)
    assert len(everyone) == 4
    first_page = await list_members(database, limit=2)
    second_page = await list_members(database, limit=2, after_id=first_page[-1].id)
    assert [m.email for m in first_page + second_page] == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]
    with pytest.raises(InvalidInput):
        await list_members(database, limit=0)

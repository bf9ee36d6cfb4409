"""Admin actions in the core (`core.admin`): revoking awards and kudos, locking a member's giving,
moving a campaign on, and the audit log each writes in its own transaction; on SQLite and
PostgreSQL. A refusal writes nothing; two admins acting at once do it once."""

from __future__ import annotations

import asyncio
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select
from sqlmodel import col

from bots.commands.audit import audit, lock, revoke, unlock
from dialogs.engine import DialogEngine
from rewards.admin.audit import Actor
from rewards.admin.locks import GivingLocked
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.errors import AlreadyAwarded, InvalidInput, NotAllowed, NotAvailable, RewardsError
from rewards.leaderboards.rebuild import rebuild
from rewards.services import ledger
from rewards.services.kudos import list_kudos
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.migrate import upgrade
from rewards.store.models import (
    AdminAudit,
    Announcement,
    Award,
    Delivery,
    Kudos,
    LeaderboardCounter,
    LedgerEntry,
    Member,
)
from tests.factories import add_member, add_reward
from tests.support.api import api_client
from tests.support.conversation import ScriptedConversation, make_core
from tests.test_leaderboard_counters import counters
from tests.test_notifier import LI_CHAT, world

BOSS, DEPUTY = "boss@example.com", "deputy@example.com"
SETTINGS = Settings(admins=(BOSS, DEPUTY), kudos_points=5)
EOTM = 900


async def _count(database: Database, model: Any) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _written(database: Database) -> dict[str, int]:
    """Row counts of every table an admin action writes."""
    tables = (AdminAudit, Announcement, Delivery, LedgerEntry, Award, Kudos)
    return {t.__tablename__: await _count(database, t) for t in tables}  # type: ignore[attr-defined]


async def _points(database: Database, member_id: int) -> int:
    async with database.read() as session:
        return int(
            await session.scalar(
                select(func.coalesce(func.sum(col(LedgerEntry.points)), 0)).where(
                    col(LedgerEntry.member_id) == member_id
                )
            )
            or 0
        )


async def _counted_points(database: Database, member_id: int, dim: str = "") -> set[int]:
    """The points the leaderboard counters hold for the member, over every period."""
    async with database.read() as session:
        rows = await session.scalars(
            select(col(LeaderboardCounter.points)).where(
                col(LeaderboardCounter.member_id) == member_id,
                col(LeaderboardCounter.dim) == dim,
            )
        )
        return set(rows)


async def _people(database: Database) -> dict[str, int]:
    return {
        "boss": await add_member(database, "Boss"),
        "deputy": await add_member(database, "Deputy"),
        "ana": await add_member(database, "Ana", hired=date(2020, 1, 1)),
        "li": await add_member(database, "Li", hired=date(2020, 1, 1)),
        "mo": await add_member(database, "Mo", hired=date(2020, 1, 1)),
    }


def _as(p: dict[str, int], who: str) -> Actor:
    return Actor.member("chat", p[who], f"{who}@example.com")


async def test_revoking_kudos_takes_the_points_back_records_it_and_tells_both_sides(
    database: Database, clock: FixedClock
) -> None:
    async with world(database, clock) as w:
        settings = w.settings.model_copy(update={"admins": (BOSS,), "kudos_points": 5})
        core = Core(settings=settings, db=database, clock=clock)
        boss = await add_member(database, "Boss")
        ana, li = w.members["Ana Lopez"], w.members["Li Wei"]
        kudos = await core.kudos.give(ana, [li], "Saved the demo", ["teamwork"])
        assert await _points(database, li) == 5
        before = await _written(database)

        with pytest.raises(NotAllowed, match="Only an admin can revoke kudos"):
            await core.admin.revoke_kudos(kudos.id, "no", Actor.member("chat", li))
        assert await _written(database) == before  # the refusal wrote nothing

        clock.advance(timedelta(hours=1))
        done = await core.admin.revoke_kudos(
            kudos.id, "  self-dealing  ring ", Actor.member("chat", boss, BOSS)
        )
        assert done.points == {li: 5} and done.reason == "self-dealing ring"
        assert await _points(database, li) == 0
        # The counters agree with the ledger, overall and under the kudos' tag.
        assert await _counted_points(database, li) == {0}
        assert await _counted_points(database, li, "t:teamwork") == {0}
        # Nor do they count as kudos received or given any more; a rebuild agrees.
        incremental = await counters(database)
        assert not [key for key in incremental if key[0] in ("kudos", "kudos_given")]
        await rebuild(database, settings.timezone)
        assert await counters(database) == incremental
        # Li's history says what happened to the kudos.
        lines = await ledger.history(database, li)
        assert [(x.kind, x.points, x.description) for x in lines[:2]] == [
            ("reversal", -5, "Kudos from Ana Lopez revoked: self-dealing ring"),
            ("kudos", 5, "Kudos from Ana Lopez"),
        ]
        # Gone from the public kudos feed (the REST API's GET /kudos and the member's list).
        assert kudos.id not in [k.id for k in await list_kudos(database)]
        assert kudos.id not in [k.id for k in await list_kudos(database, member_id=li)]
        [entry] = await core.admin.audit_log()
        assert (entry.action, entry.actor, entry.actor_member_id) == ("kudos.revoke", BOSS, boss)
        assert (entry.target_kind, entry.target_id, entry.reason) == (
            "kudos",
            kudos.id,
            "self-dealing ring",
        )
        assert entry.target_label == "from Ana Lopez to Li Wei" and entry.at == clock.now()

        # Li hears on Telegram, Ana on Slack, once each.
        assert (await w.notifier.deliver_due()).sent == 2
        [told] = w.telegram_sent()
        assert str(told["chat_id"]) == str(LI_CHAT)
        assert "An admin revoked the kudos Ana Lopez sent you" in told["text"]
        assert "5 points were taken back" in told["text"] and "self-dealing ring" in told["text"]
        [post] = w.slack.of("chat.postMessage")
        assert "An admin revoked your kudos to Li Wei" in str(post["blocks"])
        assert (await w.notifier.deliver_due()).sent == 0

        again = await _written(database)
        with pytest.raises(NotAvailable, match=f"Kudos {kudos.id} were already revoked on"):
            await core.admin.revoke_kudos(kudos.id, None, Actor.member("chat", boss, BOSS))
        assert await _written(database) == again


async def test_two_admins_revoking_at_once_reverse_once(
    database: Database, clock: FixedClock
) -> None:
    await add_reward(database, reward_id=7, reward="Star", points=30)
    p = await _people(database)
    core = Core(settings=SETTINGS, db=database, clock=clock)
    award = await core.awards.award(7, p["ana"], by=p["li"], message="thanks")
    kudos = await core.kudos.give(p["li"], [p["ana"], p["mo"]], "great pairing")
    assert await _points(database, p["ana"]) == 35

    results = await asyncio.gather(
        core.admin.revoke_award(award.id, "duplicate", _as(p, "boss")),
        core.admin.revoke_award(award.id, "duplicate", _as(p, "deputy")),
        core.admin.revoke_kudos(kudos.id, None, _as(p, "boss")),
        core.admin.revoke_kudos(kudos.id, None, _as(p, "deputy")),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 2 and all(isinstance(r, RewardsError) for r in refused), refused
    assert any(isinstance(r, AlreadyAwarded) for r in refused)
    assert any(isinstance(r, NotAvailable) for r in refused)
    assert await _points(database, p["ana"]) == 0 and await _points(database, p["mo"]) == 0
    async with database.read() as session:
        reversals = await session.scalar(
            select(func.count()).where(col(LedgerEntry.kind) == "reversal")
        )
    assert reversals == 3  # the award's, and the kudos' for Ana and for Mo
    actions = sorted(e.action for e in await core.admin.audit_log())
    assert actions == ["award.revoke", "kudos.revoke"]

    # A second click later names who revoked it, and when.
    with pytest.raises(AlreadyAwarded, match=f"Award {award.id} was already revoked by"):
        await core.admin.revoke_award(award.id, None, _as(p, "boss"))


async def test_a_locked_member_receives_but_gives_nothing_until_unlocked(
    database: Database, clock: FixedClock
) -> None:
    await add_reward(database, reward_id=7, reward="Star", points=30)
    await add_reward(
        database,
        reward_id=EOTM,
        reward="Employee of the Month",
        reward_type="Nomination Badge",
        points=100,
        multiple=True,
        nomination_config={"max_nominations_per_user": 3},
    )
    p = await _people(database)
    core = Core(settings=SETTINGS, db=database, clock=clock)
    campaign = await core.nominations.open(EOTM, by=None)
    await core.nominations.nominate(campaign.id, p["li"], p["mo"], "steady")

    before = await _written(database)
    with pytest.raises(NotAllowed, match="Only an admin can lock members"):
        await core.admin.lock(p["ana"], "spam", _as(p, "li"))
    with pytest.raises(NotAllowed, match="can't lock yourself"):
        await core.admin.lock(p["boss"], None, _as(p, "boss"))
    assert await _written(database) == before

    state = await core.admin.lock(p["ana"], "kudos ring", _as(p, "boss"))
    assert state.name == "Ana" and state.reason == "kudos ring"
    with pytest.raises(NotAvailable, match="Ana's giving is already locked since"):
        await core.admin.lock(p["ana"], "again", _as(p, "deputy"))
    locked = await _written(database)

    refusals = (
        core.kudos.give(p["ana"], [p["li"]], "thanks"),
        core.awards.award(7, p["li"], by=p["ana"]),
        core.nominations.nominate(campaign.id, p["ana"], p["li"], "great"),
    )
    for attempt in refusals:
        with pytest.raises(GivingLocked) as refused:
            await attempt
        sentence = str(refused.value)
        assert "you can still receive kudos and badges" in sentence
        assert "can't give kudos, give badges, nominate or vote" in sentence
    assert await _written(database) == locked

    # Receiving still works: kudos, a badge, a nomination, and votes once voting starts.
    await core.kudos.give(p["li"], [p["ana"]], "thank you")
    await core.awards.award(7, p["ana"], by=p["li"])
    await core.nominations.nominate(campaign.id, p["li"], p["ana"], "brave")
    await core.admin.start_voting(campaign.id, _as(p, "boss"))
    await core.nominations.vote(campaign.id, p["li"], p["ana"])
    with pytest.raises(GivingLocked):
        await core.nominations.vote(campaign.id, p["ana"], p["mo"])

    await core.admin.unlock(p["ana"], _as(p, "deputy"))
    with pytest.raises(NotAvailable, match="Ana's giving is not locked"):
        await core.admin.unlock(p["ana"], _as(p, "boss"))
    await core.kudos.give(p["ana"], [p["li"]], "back again")
    await core.nominations.vote(campaign.id, p["ana"], p["mo"])
    log = [(e.action, e.actor, e.target_label) for e in await core.admin.audit_log()]
    assert log == [
        ("member.unlock", "deputy@example.com", "Ana <ana@example.com>"),
        ("campaign.voting", "boss@example.com", "Employee of the Month campaign #1"),
        ("member.lock", "boss@example.com", "Ana <ana@example.com>"),
    ]
    async with database.read() as session:
        row = await session.get(Member, p["ana"])
        assert row is not None and row.giving_locked_at is None


async def test_an_admin_moves_a_campaign_to_voting_now_and_closes_it_once(
    database: Database, clock: FixedClock
) -> None:
    await add_reward(
        database,
        reward_id=EOTM,
        reward="Employee of the Month",
        reward_type="Nomination Badge",
        points=100,
        multiple=True,
        nomination_config={"nomination_duration_days": 7, "voting_duration_days": 5},
    )
    p = await _people(database)
    core = Core(settings=SETTINGS, db=database, clock=clock)
    campaign = await core.nominations.open(EOTM, by=None)
    await core.nominations.nominate(campaign.id, p["li"], p["mo"], "steady")
    clock.advance(timedelta(days=1))

    before = await _written(database)
    with pytest.raises(NotAllowed, match="Only an admin can start voting"):
        await core.admin.start_voting(campaign.id, _as(p, "li"))
    assert await _written(database) == before

    view = await core.admin.start_voting(campaign.id, _as(p, "boss"))
    assert view.status == "voting"
    assert view.nominations_close_at == clock.now()
    assert view.voting_close_at == clock.now() + timedelta(days=5)  # the full voting time
    with pytest.raises(InvalidInput, match="Voting for Employee of the Month has already started"):
        await core.admin.start_voting(campaign.id, _as(p, "deputy"))
    # The scheduler leaves it alone until the new end.
    clock.advance(timedelta(days=4))
    assert await core.nominations.advance(clock.now()) == []
    await core.nominations.vote(campaign.id, p["ana"], p["mo"])

    closed = await asyncio.gather(
        core.admin.close_campaign(campaign.id, _as(p, "boss")),
        core.admin.close_campaign(campaign.id, _as(p, "deputy")),
        return_exceptions=True,
    )
    done = [c for c in closed if not isinstance(c, BaseException)]
    refused = [c for c in closed if isinstance(c, BaseException)]
    assert len(done) == 1 and done[0].winners == (p["mo"],)
    assert len(refused) == 1 and isinstance(refused[0], NotAvailable)
    assert f"Campaign #{campaign.id} was already closed on" in str(refused[0])
    assert await _count(database, Award) == 1
    with pytest.raises(InvalidInput, match="already closed; it can't be cancelled"):
        await core.admin.cancel_campaign(campaign.id, _as(p, "boss"), "oops")
    actions = [e.action for e in await core.admin.audit_log()]
    assert actions == ["campaign.close", "campaign.voting"]
    assert [e.action for e in await core.admin.audit_log(action="campaign.voting")] == [
        "campaign.voting"
    ]


async def test_cancelling_twice_is_told_and_recorded_once(
    database: Database, clock: FixedClock
) -> None:
    await add_reward(
        database,
        reward_id=EOTM,
        reward="Employee of the Month",
        reward_type="Nomination Badge",
        points=100,
    )
    p = await _people(database)
    core = Core(settings=SETTINGS, db=database, clock=clock)
    campaign = await core.nominations.open(EOTM, by=None)
    view = await core.admin.cancel_campaign(campaign.id, Actor.cli(), "wrong month")
    assert view.status == "cancelled"
    with pytest.raises(NotAvailable, match=f"Campaign #{campaign.id} was already cancelled"):
        await core.admin.cancel_campaign(campaign.id, _as(p, "boss"))
    [entry] = await core.admin.audit_log(target_kind="campaign", target_id=campaign.id)
    assert (entry.via, entry.actor, entry.actor_member_id, entry.reason) == (
        "cli",
        "cli (system)",
        None,
        "wrong month",
    )


async def test_voting_now_with_too_few_nominations_cancels_as_on_the_date(
    database: Database, clock: FixedClock
) -> None:
    await add_reward(
        database,
        reward_id=EOTM,
        reward="Employee of the Month",
        reward_type="Nomination Badge",
        points=100,
        nomination_config={"min_nominations": 2},
    )
    p = await _people(database)
    core = Core(settings=SETTINGS, db=database, clock=clock)
    campaign = await core.nominations.open(EOTM, by=None)
    await core.nominations.nominate(campaign.id, p["li"], p["mo"], "steady")
    view = await core.admin.start_voting(campaign.id, _as(p, "boss"))
    assert view.status == "cancelled"
    assert view.outcome["cancelled"] == "Too few nominations: 1, at least 2 needed."
    [entry] = await core.admin.audit_log()
    assert (entry.action, entry.target_id) == ("campaign.voting", campaign.id)


# ---- the REST API ------------------------------------------------------------------------------

PROBLEM = "application/problem+json"


async def test_the_api_revokes_locks_moves_a_campaign_and_lists_the_log(
    database: Database, clock: FixedClock
) -> None:
    await add_reward(database, reward_id=7, reward="Star", points=30)
    await add_reward(
        database,
        reward_id=EOTM,
        reward="Employee of the Month",
        reward_type="Nomination Badge",
        points=100,
    )
    p = await _people(database)
    async with api_client(database, clock, admins=(BOSS,)) as api:
        core = Core(settings=SETTINGS, db=database, clock=clock)
        kudos = await core.kudos.give(p["li"], [p["ana"]], "great review")
        award = await core.awards.award(7, p["ana"], by=p["li"])
        campaign = await core.nominations.open(EOTM, by=None)
        await core.nominations.nominate(campaign.id, p["li"], p["ana"], "steady")
        client = api.client
        calls = (
            (f"/rewards/api/v1/kudos/{kudos.id}/revoke", {"reason": "ring"}),
            ("/rewards/api/v1/members/ana@example.com/lock", {"reason": "review"}),
            ("/rewards/api/v1/members/ana@example.com/unlock", {}),
            (f"/rewards/api/v1/nominations/{campaign.id}/voting", {}),
        )
        before = await _written(database)
        for url, body in calls:
            for scope in ("read", "write"):  # the admin scope only
                low = await client.post(url, json=body, headers=api.auth(scope))
                assert (low.status, low.content_type) == (403, PROBLEM), (url, scope)
            # Acting as a member who is no admin: refused by the service, nothing written.
            as_li = await client.post(
                url, json={**body, "as": "li@example.com"}, headers=api.auth("admin")
            )
            assert as_li.status == 403, (url, await as_li.text())
            assert "Only an admin can" in (await as_li.json())["detail"]
        assert await _written(database) == before
        listed = await client.get("/rewards/api/v1/audit", headers=api.auth("write"))
        assert listed.status == 403

        revoked = await client.post(
            calls[0][0], json={"reason": "ring", "as": BOSS}, headers=api.auth("admin")
        )
        assert revoked.status == 200, await revoked.text()
        body = await revoked.json()
        assert body["points_reversed"] == {str(p["ana"]): 5} and body["reason"] == "ring"
        again = await client.post(calls[0][0], json={}, headers=api.auth("admin"))
        assert again.status == 409
        locked = await client.post(calls[1][0], json=calls[1][1], headers=api.auth("admin"))
        assert locked.status == 200 and (await locked.json())["locked"] is True
        assert (await client.post(calls[1][0], json={}, headers=api.auth("admin"))).status == 409
        unlocked = await client.post(calls[2][0], json={}, headers=api.auth("admin"))
        assert unlocked.status == 200 and (await unlocked.json())["locked"] is False
        voting = await client.post(calls[3][0], json={}, headers=api.auth("admin"))
        assert voting.status == 200 and (await voting.json())["phase"] == "voting"
        assert (await client.post(calls[3][0], json={}, headers=api.auth("admin"))).status == 422
        # The award route goes through the same log.
        gone = await client.post(
            f"/rewards/api/v1/awards/{award.id}/revoke", json={}, headers=api.auth("admin")
        )
        assert gone.status == 200, await gone.text()

        first = await client.get("/rewards/api/v1/audit?limit=3", headers=api.auth("admin"))
        page = await first.json()
        assert [e["action"] for e in page["items"]] == [
            "award.revoke",
            "campaign.voting",
            "member.unlock",
        ]
        assert page["items"][0]["actor"] == "API key admin" and page["items"][0]["via"] == "api"
        rest = await client.get(
            f"/rewards/api/v1/audit?limit=3&cursor={page['next']}", headers=api.auth("admin")
        )
        later = (await rest.json())["items"]
        assert [e["action"] for e in later] == ["member.lock", "kudos.revoke"]
        assert later[1]["actor"] == f"{BOSS} (API key admin)"
        assert later[1]["target"] == {
            "kind": "kudos",
            "id": kudos.id,
            "label": "from Li to Ana",
        }
        one = await client.get(
            f"/rewards/api/v1/audit?target=member:{p['ana']}", headers=api.auth("admin")
        )
        assert [e["action"] for e in (await one.json())["items"]] == [
            "member.unlock",
            "member.lock",
        ]
        bad = await client.get("/rewards/api/v1/audit?target=ana", headers=api.auth("admin"))
        assert (bad.status, bad.content_type) == (422, PROBLEM)


# ---- the CLI -----------------------------------------------------------------------------------


def test_the_cli_revokes_locks_and_lists_the_log(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'admin.db'}"
    upgrade(url)

    async def seed() -> tuple[int, int]:
        db = Database(url)
        try:
            await add_reward(db, reward_id=7, reward="Star", points=30)
            await add_member(db, "Boss")
            ana, li = await add_member(db, "Ana"), await add_member(db, "Li")
            core = Core(settings=SETTINGS, db=db)
            award = await core.awards.award(7, ana, by=li)
            kudos = await core.kudos.give(li, [ana], "thanks")
            return award.id, kudos.id
        finally:
            await db.dispose()

    award_id, kudos_id = asyncio.run(seed())
    env = {"DATABASE_URL": url, "REWARDS_ENV_FILE": os.devnull, "REWARDS_ADMINS": BOSS}

    def run(command: Any, *args: str) -> Result:
        return CliRunner().invoke(command, list(args), env=env)

    refused = run(revoke, "award", str(award_id), "--as", "li@example.com")
    assert refused.exit_code == 1 and "Only an admin can revoke awards" in refused.output
    done = run(revoke, "award", str(award_id), "--reason", "duplicate")
    assert done.exit_code == 0 and "Revoked award" in done.output and "30 points" in done.output
    assert run(revoke, "award", str(award_id)).exit_code == 1  # already revoked
    assert run(revoke, "kudos", "999").exit_code == 2
    assert run(revoke, "kudos", str(kudos_id), "--as", BOSS).exit_code == 0
    assert run(lock, "ana@example.com", "--reason", "review").exit_code == 0
    listed = run(lock, "--list")
    assert "Ana <ana@example.com>" in listed.output and "review" in listed.output
    assert run(lock, "nobody@example.com").exit_code == 2
    assert run(unlock, "ana@example.com", "--as", BOSS).exit_code == 0
    assert run(unlock, "ana@example.com").exit_code == 1  # not locked
    shown = run(audit, "list")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert [line.split("\t")[3] for line in lines] == [
        "member.unlock",
        "member.lock",
        "kudos.revoke",
        "award.revoke",
    ]
    assert lines[0].split("\t")[1:3] == ["cli", BOSS]
    assert lines[3].split("\t")[1:3] == ["cli", "cli (system)"]
    assert lines[3].endswith("duplicate")
    only = run(audit, "list", "--action", "member.lock")
    assert len(only.output.splitlines()) == 1


async def test_a_locked_member_sees_on_me_that_their_giving_is_paused(
    database: Database, clock: FixedClock
) -> None:
    core = make_core(database, clock, admins=(BOSS,), timezone="UTC")
    boss = await add_member(database, "Boss")
    li = await add_member(database, "Li Wei")
    me = ScriptedConversation(DialogEngine(core), li, whole_forms=True)
    await me.say("/me")
    assert "paused" not in me.text
    await core.admin.lock(li, "cooling off", Actor.member("chat", boss, BOSS))
    await me.say("/me")
    assert "Giving" in me.text and "paused by an admin (you can still receive)" in me.text
    await core.admin.unlock(li, Actor.member("chat", boss, BOSS))
    await me.say("/me")
    assert "paused" not in me.text

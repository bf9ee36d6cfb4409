"""Nomination campaigns: opening, nominating, voting, phases, closing, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from bots.scheduler import NOMINATIONS_JOB_ID, plan_jobs
from rewards.catalog.loader import load_file
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.errors import InvalidInput, NotAllowed, NotAvailable, NotFound
from rewards.rules.lottery import eligible_hash, replay
from rewards.services.catalog import list_definitions, load_catalog
from rewards.services.nominations import NominationService
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Announcement, Award, NominationVote
from tests.factories import add_member, add_reward

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "rewards.json"
SETTINGS = Settings(admins=("boss@example.com",))
EOTM = 900
HIRED = date(2020, 1, 1)


async def _setup(
    database: Database, clock: FixedClock, **config: Any
) -> tuple[NominationService, dict[str, int]]:
    await add_reward(
        database,
        reward_id=EOTM,
        reward="Employee of the Month",
        reward_type="Nomination Badge",
        points=100,
        multiple=True,
        nomination_config={
            "nomination_duration_days": 7,
            "voting_duration_days": 5,
            "max_nominations_per_user": 5,
            **config,
        },
    )
    people = {
        name: await add_member(database, name.title(), hired=HIRED)
        for name in ("boss", "ana", "li", "mo", "zoe")
    }
    core = Core(settings=SETTINGS, db=database, clock=clock)
    return core.nominations, people


async def _voting(
    service: NominationService, clock: FixedClock, p: dict[str, int], *nominees: str
) -> int:
    campaign = await service.open(EOTM, by=None, key="job:1")
    for i, nominee in enumerate(nominees):
        clock.advance(timedelta(minutes=1))
        nominator = "boss" if nominee != "boss" else "ana"
        await service.nominate(campaign.id, p[nominator], p[nominee], f"Great work {i}")
    clock.advance(timedelta(days=7))
    changed = await service.advance(clock.now())
    assert [v.status for v in changed] == ["voting"]
    return campaign.id


async def _count(database: Database, query: Any) -> int:
    async with database.read() as session:
        return int(await session.scalar(query) or 0)


async def _kinds(database: Database) -> list[str]:
    async with database.read() as session:
        rows = await session.scalars(select(col(Announcement.kind)).order_by(col(Announcement.id)))
        return list(rows)


async def test_only_an_admin_opens_closes_or_cancels(database: Database, clock: FixedClock) -> None:
    service, p = await _setup(database, clock)
    with pytest.raises(NotAllowed, match="Only an admin can open a nomination campaign"):
        await service.open(EOTM, by=p["ana"])
    campaign = await service.open(EOTM, by=p["boss"])
    assert campaign.status == "nominating"
    assert campaign.nominations_close_at == clock.now() + timedelta(days=7)
    assert campaign.voting_close_at == clock.now() + timedelta(days=12)
    with pytest.raises(InvalidInput, match="already has a campaign open"):
        await service.open(EOTM, by=p["boss"], key="another")
    with pytest.raises(NotAllowed, match="Only an admin can close"):
        await service.close(campaign.id, by=p["ana"])
    with pytest.raises(NotAllowed, match="Only an admin can cancel"):
        await service.cancel(campaign.id, by=p["li"])
    cancelled = await service.cancel(campaign.id, by=p["boss"], reason="Wrong month")
    assert cancelled.status == "cancelled"
    assert await _kinds(database) == ["nomination_open", "nomination_cancelled"]
    with pytest.raises(NotFound, match="There is no nomination campaign 99"):
        await service.get(99)


async def test_the_same_key_opens_one_campaign(database: Database, clock: FixedClock) -> None:
    service, _ = await _setup(database, clock)
    first, second = await asyncio.gather(
        service.open(EOTM, by=None, key="eotm:2026-12-01"),
        service.open(EOTM, by=None, key="eotm:2026-12-01"),
    )
    assert first.id == second.id
    assert [c.id for c in await service.open_campaigns()] == [first.id]
    assert await _kinds(database) == ["nomination_open"]


async def test_nomination_rules(database: Database, clock: FixedClock) -> None:
    service, p = await _setup(
        database,
        clock,
        max_nominations_per_user=2,
        eligible_nominators={"min_tenure_days": 90},
        eligible_nominees={"departments": ["Engineering"]},
    )
    newbie = await add_member(database, "Newbie", hired=clock.now().date() - timedelta(days=10))
    sales = await add_member(database, "Sal", department="Sales", hired=HIRED)
    campaign = await service.open(EOTM, by=None, key="k")
    cid = campaign.id
    with pytest.raises(NotAllowed, match="You can't nominate yourself for Employee of the Month"):
        await service.nominate(cid, p["ana"], p["ana"], "I am great")
    with pytest.raises(NotAllowed, match="at least 90 days in the company can nominate"):
        await service.nominate(cid, newbie, p["ana"], "Helpful")
    with pytest.raises(NotAllowed, match=r"Sal can't be nominated .* department Engineering"):
        await service.nominate(cid, p["ana"], sales, "Sold a lot")
    with pytest.raises(InvalidInput, match="Say why you nominate Li"):
        await service.nominate(cid, p["ana"], p["li"], "   ")
    with pytest.raises(InvalidInput, match="too long"):
        await service.nominate(cid, p["ana"], p["li"], "x" * 1001)
    made = await service.nominate(cid, p["ana"], p["li"], " Fixed the build ")
    assert (made.nominee_name, made.reason) == ("Li", "Fixed the build")
    with pytest.raises(InvalidInput, match="You already nominated Li"):
        await service.nominate(cid, p["ana"], p["li"], "Again")
    clock.advance(timedelta(minutes=5))
    await service.nominate(cid, p["ana"], p["mo"], "Mentoring")
    with pytest.raises(NotAllowed, match="already made 2 nominations"):
        await service.nominate(cid, p["ana"], p["zoe"], "Docs")
    clock.advance(timedelta(minutes=5))
    await service.nominate(cid, p["boss"], p["li"], "Ran the release")

    candidates = await service.candidates(cid)
    assert [(c.name, c.reasons) for c in candidates] == [
        ("Li", ("Fixed the build", "Ran the release")),
        ("Mo", ("Mentoring",)),
    ]
    with pytest.raises(NotAvailable, match="Voting for Employee of the Month is not open yet"):
        await service.vote(cid, p["zoe"], p["li"])


async def test_too_few_nominations_cancel_with_a_notice(
    database: Database, clock: FixedClock
) -> None:
    service, p = await _setup(database, clock, min_nominations=2)
    campaign = await service.open(EOTM, by=None, key="k")
    await service.nominate(campaign.id, p["ana"], p["li"], "Great")
    assert await service.advance(clock.now()) == []  # not due yet
    clock.advance(timedelta(days=7))
    changed = await service.advance(clock.now())
    assert [v.status for v in changed] == ["cancelled"]
    assert "Too few nominations: 1, at least 2" in changed[0].outcome["cancelled"]
    assert await service.advance(clock.now()) == []
    assert await _kinds(database) == ["nomination_open", "nomination_cancelled"]
    with pytest.raises(NotAvailable, match="Nominations for Employee of the Month are closed"):
        await service.nominate(campaign.id, p["mo"], p["li"], "Late")


async def test_voting_changes_and_hides_tallies(database: Database, clock: FixedClock) -> None:
    service, p = await _setup(database, clock, max_votes_per_user=2)
    cid = await _voting(service, clock, p, "li", "mo", "zoe")
    with pytest.raises(NotAvailable, match="Nominations for Employee of the Month are closed"):
        await service.nominate(cid, p["ana"], p["boss"], "Late")
    with pytest.raises(InvalidInput, match="not a candidate"):
        await service.vote(cid, p["ana"], p["boss"])
    first = await service.vote(cid, p["ana"], p["li"])
    assert (first.changed, first.previous, first.votes) == (True, None, (p["li"],))
    again = await service.vote(cid, p["ana"], p["li"])
    assert (again.changed, again.votes) == (False, (p["li"],))
    clock.advance(timedelta(seconds=1))
    second = await service.vote(cid, p["ana"], p["mo"])
    assert second.votes == (p["li"], p["mo"])
    clock.advance(timedelta(seconds=1))
    changed = await service.vote(cid, p["ana"], p["zoe"])  # the oldest (Li) moves to Zoe
    assert (changed.changed, changed.previous) == (True, p["li"])
    assert set(changed.votes) == {p["mo"], p["zoe"]}
    await service.unvote(cid, p["ana"], p["mo"])
    assert await service.my_votes(cid, p["ana"]) == (p["zoe"],)
    assert await service.my_votes(cid, p["li"]) == ()
    view = await service.get(cid)
    assert view.status == "voting" and view.tallies is None and view.winners == ()
    assert await _kinds(database) == ["nomination_open", "nomination_voting"]


async def test_close_awards_the_winner_once(database: Database, clock: FixedClock) -> None:
    service, p = await _setup(database, clock)
    cid = await _voting(service, clock, p, "li", "mo")
    for voter in ("ana", "boss", "zoe"):
        await service.vote(cid, p[voter], p["li"])
    await service.vote(cid, p["li"], p["mo"])  # a candidate votes, for someone else
    with pytest.raises(NotAllowed):
        await service.close(cid, by=p["ana"])
    first, second = await asyncio.gather(
        service.close(cid, by=p["boss"]), service.close(cid, by=None)
    )
    assert first.status == second.status == "closed"
    assert first.winners == second.winners == (p["li"],)
    assert first.tallies == {p["li"]: 3, p["mo"]: 1}
    again = await service.close(cid, by=p["boss"])
    assert again.outcome == first.outcome or again.outcome == second.outcome
    clock.advance(timedelta(days=10))
    assert await service.advance(clock.now()) == []
    assert await _count(database, select(func.count(col(Award.id)))) == 1
    async with database.read() as session:
        award = await session.scalar(select(Award))
    assert award is not None and (award.member_id, award.source) == (p["li"], "nomination")
    assert await _kinds(database) == ["nomination_open", "nomination_voting", "nomination_winners"]
    with pytest.raises(InvalidInput, match="already closed"):
        await service.cancel(cid, by=p["boss"])
    with pytest.raises(NotAvailable, match="is closed"):
        await service.vote(cid, p["li"], p["mo"])


@pytest.mark.parametrize("rule", ["earliest_nomination", "co_winners", "random_draw"])
async def test_tie_rules(database: Database, clock: FixedClock, rule: str) -> None:
    service, p = await _setup(database, clock, tie_rule=rule)
    cid = await _voting(service, clock, p, "mo", "li")  # Mo nominated first
    await service.vote(cid, p["ana"], p["li"])
    await service.vote(cid, p["zoe"], p["mo"])
    clock.advance(timedelta(days=5))
    [closed] = await service.advance(clock.now())
    tie = closed.outcome["tie"]
    assert tie["tied"] == sorted([p["li"], p["mo"]])
    if rule == "earliest_nomination":
        assert closed.winners == (p["mo"],)
    elif rule == "co_winners":
        assert set(closed.winners) == {p["li"], p["mo"]}
    else:
        assert tie["hash"] == eligible_hash(tie["tied"])
        assert list(closed.winners) == replay(tie["seed"], tie["tied"], {}, 1)
    assert await _count(database, select(func.count(col(Award.id)))) == len(closed.winners)


async def test_a_campaign_without_votes_closes_with_nobody(
    database: Database, clock: FixedClock
) -> None:
    service, p = await _setup(database, clock)
    await _voting(service, clock, p, "li")
    clock.advance(timedelta(days=5))
    [closed] = await service.advance(clock.now())
    assert (closed.status, closed.winners, closed.tallies) == ("closed", (), {})
    assert await _count(database, select(func.count(col(Award.id)))) == 0


async def test_concurrent_vote_clicks_leave_one_vote(database: Database, clock: FixedClock) -> None:
    service, p = await _setup(database, clock, max_votes_per_user=1)
    cid = await _voting(service, clock, p, "li", "mo", "zoe")
    choices = [p["li"], p["mo"], p["zoe"]]
    results = await asyncio.gather(
        *(service.vote(cid, p["ana"], choices[i % 3]) for i in range(100))
    )
    votes = await _count(
        database,
        select(func.count(col(NominationVote.id))).where(col(NominationVote.voter_id) == p["ana"]),
    )
    assert votes == 1
    mine = await service.my_votes(cid, p["ana"])
    assert len(mine) == 1 and mine[0] in choices
    assert all(len(r.votes) == 1 for r in results)


async def test_seed_employee_of_the_month_sales_end_to_end(
    database: Database, clock: FixedClock
) -> None:
    """The seed's reward 8001: its job opens the campaign, `rewards.nominations` moves it on."""
    await load_catalog(database, load_file(EXAMPLES), clock=clock)
    core = Core(settings=SETTINGS, db=database, clock=clock)
    plan = plan_jobs(
        await list_definitions(database), default_zone="UTC", sweep_minutes=60, now=clock.now()
    )
    assert "eotm_sales_start" not in plan.not_scheduled
    job = plan.jobs["eotm_sales_start"]
    fire = job.next_fire_time(clock.now())
    assert fire is not None
    clock.set(fire)
    ana = await add_member(database, "Ana", job_code="ASSOCIATE", department="Sales", hired=HIRED)
    li = await add_member(database, "Li", job_code="ASSOCIATE", department="Sales", hired=HIRED)
    mia = await add_member(database, "Mia", job_code="MANAGER", department="Sales", hired=HIRED)
    eng = await add_member(database, "Eng", job_code="ASSOCIATE", hired=HIRED)
    key = f"eotm_sales_start:{fire.isoformat()}"
    outcome = await job.body(core, fire, key)
    assert outcome.status == "done", outcome.summary
    again = await job.body(core, fire, key)  # a second replica: the same campaign
    assert again.summary == outcome.summary
    [campaign] = await core.nominations.open_campaigns()
    assert campaign.reward_id == 8001
    cid = campaign.id
    with pytest.raises(NotAllowed, match="Eng can't be nominated"):
        await core.nominations.nominate(cid, mia, eng, "Engineering star")
    await core.nominations.nominate(cid, mia, ana, "Closed the biggest deal")
    await core.nominations.nominate(cid, ana, li, "Always helps")
    await core.nominations.nominate(cid, eng, li, "Great onboarding")
    tick = plan.jobs[NOMINATIONS_JOB_ID]
    clock.advance(timedelta(days=7))
    moved = await tick.body(core, clock.now(), "tick:1")
    assert "voting" in moved.summary
    for voter in (ana, mia, eng):
        await core.nominations.vote(cid, voter, li)
    await core.nominations.vote(cid, li, ana)
    clock.advance(timedelta(days=5))
    closed = await tick.body(core, clock.now(), "tick:2")
    assert "closed" in closed.summary
    view = await core.nominations.get(cid)
    assert view.winners == (li,) and view.tallies == {li: 3, ana: 1}
    async with database.read() as session:
        awards = (await session.scalars(select(Award))).all()
    assert [(a.reward_id, a.member_id, a.points) for a in awards] == [(8001, li, 5000)]

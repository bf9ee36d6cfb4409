"""Workflow Badges: the seed's Sales Mastery end to end, order, marking, re-enrolment, restarts and
races."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from rewards.clock import FixedClock
from rewards.core import Core
from rewards.errors import AlreadyAwarded, InvalidInput, NotAllowed, NotFound
from rewards.rules.evaluate import sweep
from rewards.services import ledger
from rewards.services.metrics import upsert_metrics
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Announcement, Award
from tests.factories import add_member, add_reward

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "rewards.json"
DAY = date(2026, 11, 18)


def seed(name: str) -> dict[str, Any]:
    data = json.loads(EXAMPLES.read_text())
    rewards = data if isinstance(data, list) else data["rewards"]
    return dict(next(r for r in rewards if r["reward"] == name))


def make_core(database: Database, clock: FixedClock, **settings: Any) -> Core:
    return Core(settings=Settings(**settings), db=database, clock=clock)


async def awards_of(database: Database, reward_id: int) -> list[int]:
    async with database.read() as session:
        rows = await session.scalars(
            select(col(Award.member_id)).where(col(Award.reward_id) == reward_id)
        )
        return list(rows.all())


def steps_done(core_progress: list[Any], reward_id: int) -> list[str]:
    view = next(v for v in core_progress if v.reward_id == reward_id)
    return [s.name for s in view.steps if s.done]


async def test_sales_mastery_end_to_end(database: Database, clock: FixedClock) -> None:
    core = make_core(database, clock)
    ana = await add_member(database, "Ana Lopez")
    li = await add_member(database, "Li Wei")
    mastery = await add_reward(database, **seed("Sales Mastery"))

    # The sweep enrols everyone (auto_enroll); nothing holds yet.
    assert await sweep(core, now=clock.now()) == []
    assert steps_done(await core.workflows.progress(ana), mastery) == []

    # A sale before the training: "First Sale" must wait for the earlier steps.
    await upsert_metrics(database, "sales", [(ana, DAY, "sales_count", 2)])
    await upsert_metrics(database, "training", [(ana, DAY, "product_knowledge", 85)])
    await sweep(core, now=clock.now())
    assert steps_done(await core.workflows.progress(ana), mastery) == ["Product Knowledge"]
    assert await awards_of(database, mastery) == []

    # Sales Techniques needs exactly 100; 90 does not pass.
    await upsert_metrics(database, "training", [(ana, DAY, "sales_techniques", 90)])
    await sweep(core, now=clock.now())
    assert steps_done(await core.workflows.progress(ana), mastery) == ["Product Knowledge"]

    await upsert_metrics(database, "training", [(ana, DAY, "sales_techniques", 100)])
    reports = await sweep(core, now=clock.now())
    assert [r.awarded_ids for r in reports if r.reward_id == mastery] == [[ana]]
    (view,) = await core.workflows.progress(ana)
    assert view.status == "completed" and view.done_count == 3 and view.cycle == 1
    assert await awards_of(database, mastery) == [ana]
    assert (await ledger.summary(database, ana)).balance == 2000
    # Li did nothing and is still on step one.
    assert steps_done(await core.workflows.progress(li), mastery) == []

    # Announced once, with the certificate the completion callback produced.
    async with database.read() as session:
        (announcement,) = (
            await session.scalars(
                select(Announcement).where(col(Announcement.kind) == "workflow_completed")
            )
        ).all()
    (note,) = announcement.payload["notifications"]
    assert note["channel"] == "email" and note["to"] == "ana.lopez@example.com"
    assert "CERTIFICATE OF COMPLETION" in next(iter(note["attachments"].values()))

    # Sweeping again awards nothing more and does not re-enrol automatically.
    assert await sweep(core, now=clock.now()) == []
    assert await awards_of(database, mastery) == [ana]

    # `multiple`: an explicit re-enrolment starts cycle 2, completed again (the data still holds).
    again = await core.workflows.enroll(mastery, ana, by=ana)
    assert again.new and again.progress.cycle == 2 and again.progress.status == "completed"
    assert await awards_of(database, mastery) == [ana, ana]


async def test_restart_keeps_progress(database: Database, clock: FixedClock) -> None:
    ana = await add_member(database, "Ana Lopez")
    mastery = await add_reward(database, **seed("Sales Mastery"))
    await upsert_metrics(database, "training", [(ana, DAY, "product_knowledge", 80)])
    await sweep(make_core(database, clock), now=clock.now())

    # A new process: a new engine on the same database.
    fresh = Database(database.url)
    try:
        core = make_core(fresh, clock)
        assert steps_done(await core.workflows.progress(ana), mastery) == ["Product Knowledge"]
        await upsert_metrics(fresh, "training", [(ana, DAY, "sales_techniques", 100)])
        await upsert_metrics(fresh, "sales", [(ana, DAY, "sales_count", 1)])
        await core.workflows.evaluate(member_id=ana)
        (view,) = await core.workflows.progress(ana)
        assert view.status == "completed"
    finally:
        await fresh.dispose()
    assert await awards_of(database, mastery) == [ana]


async def test_manual_steps_in_order(database: Database, clock: FixedClock) -> None:
    core = make_core(database, clock, admins=["bo.boss@example.com"])
    ana = await add_member(database, "Ana Lopez")
    boss = await add_member(database, "Bo Boss")
    onboarding = await add_reward(database, **seed("Onboarding Champion"))

    with pytest.raises(NotFound, match="not working on Onboarding Champion"):
        await core.workflows.mark_step(onboarding, ana, "First Login", by=boss)
    with pytest.raises(NotAllowed):
        await core.workflows.enroll(onboarding, ana, by=await add_member(database, "Li Wei"))
    joined = await core.workflows.enroll(onboarding, ana, by=ana)
    assert joined.new and joined.progress.done_count == 0
    assert not (await core.workflows.enroll(onboarding, ana)).new

    # Steps without a condition never complete by evaluation.
    await core.workflows.evaluate(member_id=ana)
    assert steps_done(await core.workflows.progress(ana), onboarding) == []
    with pytest.raises(InvalidInput, match='comes after "First Login"'):
        await core.workflows.mark_step(onboarding, ana, "Take Training", by=boss)
    with pytest.raises(NotAllowed, match="Only an admin"):
        await core.workflows.mark_step(onboarding, ana, "First Login", by=ana)

    await core.workflows.mark_step(onboarding, ana, "first login", by=boss)
    await core.workflows.mark_step(onboarding, ana, 1)  # the API, by index
    view = await core.workflows.mark_step(onboarding, ana, "Take Training", by=boss)
    assert view.status == "completed"
    assert await awards_of(database, onboarding) == [ana]
    # Not `multiple`: once only.
    with pytest.raises(AlreadyAwarded, match="only once"):
        await core.workflows.enroll(onboarding, ana)


async def test_events_evaluate_workflows(database: Database, clock: FixedClock) -> None:
    core = make_core(database, clock)
    ana = await add_member(database, "Ana Lopez")
    mastery = await add_reward(database, **seed("Sales Mastery"))
    await upsert_metrics(database, "training", [(ana, DAY, "product_knowledge", 99)])
    await core.events.emit("login", ana)  # auto-enrols and evaluates the member
    assert steps_done(await core.workflows.progress(ana), mastery) == ["Product Knowledge"]


async def test_concurrent_evaluations_award_once(database: Database, clock: FixedClock) -> None:
    core = make_core(database, clock)
    ana = await add_member(database, "Ana Lopez")
    mastery = await add_reward(database, **seed("Sales Mastery"))
    await core.workflows.enroll(mastery, ana)
    await upsert_metrics(
        database,
        "training",
        [(ana, DAY, "product_knowledge", 90), (ana, DAY, "sales_techniques", 100)],
    )
    await upsert_metrics(database, "sales", [(ana, DAY, "sales_count", 3)])
    cores = [make_core(database, clock) for _ in range(8)]
    await asyncio.gather(*(c.workflows.evaluate(member_id=ana) for c in cores))
    assert await awards_of(database, mastery) == [ana]
    (view,) = await core.workflows.progress(ana)
    assert view.status == "completed" and view.done_count == 3
    async with database.read() as session:
        kinds = (
            await session.scalars(
                select(col(Announcement.kind)).where(col(Announcement.reward_id) == mastery)
            )
        ).all()
    assert kinds == ["workflow_completed"]

"""The transactional outbox: each domain change stages its event in its own transaction, only
while the event manager is on; the relay's claim, publish and release bookkeeping."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from rewards.catalog.rules import RandomUsers
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.errors import NotAllowed, SelfAward
from rewards.rules.base import EvalContext
from rewards.rules.lottery import draw
from rewards.services import outbox
from rewards.settings import EventManagerSettings, Settings
from rewards.store.db import Database
from rewards.store.models import OutboxEvent
from tests.factories import add_member, add_reward

ON = EventManagerSettings(enabled=True)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "rewards.json"


def _core(database: Database, clock: FixedClock, *, on: bool = True, **fields: Any) -> Core:
    settings = Settings(event_manager=ON if on else EventManagerSettings(), **fields)
    return Core(settings=settings, db=database, clock=clock)


async def _events(database: Database) -> list[OutboxEvent]:
    async with database.read() as session:
        return list(await session.scalars(select(OutboxEvent).order_by(col(OutboxEvent.id))))


def _seed(name: str) -> dict[str, Any]:
    data = json.loads(EXAMPLES.read_text())
    return dict(next(r for r in data if r["reward"] == name))


async def test_kudos_awards_and_revocations_stage_one_event_each(
    database: Database, clock: FixedClock
) -> None:
    core = _core(database, clock)
    ana = await add_member(database, "Ana")
    li = await add_member(database, "Li")
    star = await add_reward(database, reward_id=50, reward="Star", points=20)

    kudos = await core.kudos.give(ana, [li], "Thanks for the review", ["teamwork"])
    award = await core.awards.award(star, li, by=ana, message="Shipped it")
    await core.awards.revoke(award.id, by=ana, reason="wrong person")

    events = await _events(database)
    assert [e.type for e in events] == ["kudos.given", "badge.awarded", "award.revoked"]
    given, awarded, revoked = (e.payload for e in events)
    assert given["kudos_id"] == kudos.id
    assert given["giver"] == {"id": ana, "name": "Ana", "email": "ana@example.com"}
    assert [r["email"] for r in given["receivers"]] == ["li@example.com"]
    assert given["message"] == "Thanks for the review" and given["tags"] == ["teamwork"]
    assert awarded["award_id"] == award.id and awarded["reward"] == "Star"
    assert awarded["points"] == 20 and awarded["source"] == "dialog"
    assert awarded["member"]["id"] == li and awarded["giver"]["id"] == ana
    assert revoked["award_id"] == award.id and revoked["reason"] == "wrong person"
    assert len({e.event_id for e in events}) == 3
    assert all(e.published_at is None and e.occurred_at == clock.now() for e in events)
    body = outbox.OutboxMessage(
        events[0].id or 0, events[0].event_id, "kudos.given", events[0].occurred_at, given
    ).body()
    assert body["source"] == "nav-rewards" and body["occurred_at"] == "2026-11-18T15:00:00+00:00"


async def test_a_refused_change_stages_nothing(database: Database, clock: FixedClock) -> None:
    core = _core(database, clock)
    ana = await add_member(database, "Ana")
    star = await add_reward(database, reward_id=50, reward="Star")
    with pytest.raises(SelfAward):
        await core.awards.award(star, ana, by=ana)
    boss_only = await add_reward(
        database, reward_id=51, reward="Boss Pick", assigner=[{"job_code": ["CEO"]}]
    )
    with pytest.raises(NotAllowed):
        await core.awards.award(boss_only, await add_member(database, "Li"), by=ana)
    assert await _events(database) == []


async def test_with_the_event_manager_off_nothing_is_staged(
    database: Database, clock: FixedClock
) -> None:
    core = _core(database, clock, on=False)
    ana = await add_member(database, "Ana")
    li = await add_member(database, "Li")
    await core.kudos.give(ana, [li], "Thanks")
    await core.awards.award(await add_reward(database, reward_id=50, reward="Star"), li, by=ana)
    assert await _events(database) == []


async def test_lottery_nomination_and_workflow_events(
    database: Database, clock: FixedClock
) -> None:
    core = _core(database, clock, admins=("boss@example.com",))
    boss = await add_member(database, "Boss")
    ana = await add_member(database, "Ana")

    lucky = await add_reward(database, reward_id=7, reward="Lucky Draw")
    ctx = EvalContext(db=database, now=clock.now(), settings=core.settings, reward_id=lucky)
    result = await draw(ctx, RandomUsers(count=1), draw_key="2026-11-18")
    await draw(ctx, RandomUsers(count=1), draw_key="2026-11-18")  # recorded already: no event

    eotm = await add_reward(
        database,
        reward_id=8000,
        reward="Employee of the Month",
        reward_type="Nomination Badge",
        nomination_config={"nomination_duration_days": 7, "voting_duration_days": 5},
    )
    campaign = await core.nominations.open(eotm, by=boss)
    await core.nominations.cancel(campaign.id, by=boss, reason="wrong month")

    onboarding = await add_reward(database, **_seed("Onboarding Champion"))
    await core.workflows.enroll(onboarding, ana, by=ana)
    for step in ("First Login", "Complete Profile", "Take Training"):
        await core.workflows.mark_step(onboarding, ana, step, by=boss)

    types = [e.type for e in await _events(database)]
    assert types[:3] == ["lottery.drawn", "nomination.opened", "nomination.closed"]
    assert types.count("workflow.step_completed") == 3
    assert types[-2:] == ["badge.awarded", "workflow.completed"]
    payloads = {e.type: e.payload for e in await _events(database)}
    assert payloads["lottery.drawn"]["winners"][0]["id"] == result.winners[0]
    assert payloads["lottery.drawn"]["reward"] == "Lucky Draw"
    assert payloads["nomination.closed"]["status"] == "cancelled"
    assert payloads["nomination.closed"]["reason"] == "wrong month"
    assert payloads["workflow.completed"]["member_id"] == ana


async def test_claim_publish_release_and_prune(database: Database, clock: FixedClock) -> None:
    core = _core(database, clock)
    ana = await add_member(database, "Ana")
    li = await add_member(database, "Li")
    for n in range(5):
        await core.kudos.give(ana, [li], f"Thanks {n}")
    now = clock.now()

    first = await outbox.claim(database, now=now, limit=3)
    assert [m.payload["message"] for m in first] == ["Thanks 0", "Thanks 1", "Thanks 2"]
    # Claimed rows are leased: a second relay gets the rest, then nothing.
    second = await outbox.claim(database, now=now, limit=10)
    assert [m.payload["message"] for m in second] == ["Thanks 3", "Thanks 4"]
    assert await outbox.claim(database, now=now) == []

    await outbox.mark_published(database, [m.id for m in first], now=now)
    await outbox.release(database, [m.id for m in second], "connection refused")
    stats = await outbox.stats(database)
    assert (stats.pending, stats.published, stats.last_error) == (2, 3, "connection refused")
    again = await outbox.claim(database, now=now)
    assert [m.id for m in again] == [m.id for m in second]  # released: claimable at once

    # A dead relay's lease runs out and another takes the rows over.
    later = now + timedelta(minutes=2)
    assert [m.id for m in await outbox.claim(database, now=later)] == [m.id for m in second]

    assert await outbox.prune(database, before=now + timedelta(days=8)) == 3
    assert (await outbox.stats(database)).pending == 2  # never pruned while pending


async def test_a_commit_that_staged_events_wakes_the_listeners_once(
    database: Database, clock: FixedClock
) -> None:
    core = _core(database, clock)
    ana = await add_member(database, "Ana")
    li = await add_member(database, "Li")
    woken: list[str] = []
    database.outbox_listeners.append(lambda: woken.append("relay"))

    await core.kudos.give(ana, [li], "Thanks")
    assert woken == ["relay"]
    with pytest.raises(SelfAward):  # refused: rolled back, nothing staged, nobody woken
        await core.awards.award(await add_reward(database, reward_id=50, reward="S"), ana, by=ana)
    await _core(database, clock, on=False).kudos.give(ana, [li], "Off")  # nothing staged
    assert woken == ["relay"]

"""Events fire Automated Badges: login once per local day, kudos, badge awards; no recursion."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dialogs.engine import DialogEngine
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.services.awards import AwardSource
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Award, Kudos, MemberActivity
from tests.factories import add_member, add_reward, add_welcome
from tests.support.conversation import ScriptedConversation


def _core(database: Database, clock: FixedClock) -> Core:
    return Core(settings=Settings(), db=database, clock=clock)


async def _awards(db: Database) -> list[tuple[int, int, str]]:
    """(reward id, member id, source) of every award, in order."""
    query = select(Award.reward_id, Award.member_id, Award.source).order_by(Award.id)  # type: ignore[arg-type]
    async with db.read() as session:
        return [(int(r), int(m), str(s)) for r, m, s in (await session.execute(query)).all()]


async def test_chat_turns_award_welcome_to_navigator_once_per_login_day(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana", timezone="America/New_York")
    await add_welcome(database)
    core = _core(database, clock)
    chat = ScriptedConversation(DialogEngine(core), ana, whole_forms=True)

    for text in ("/help", "hello", "/me"):
        await chat.say(text)
    await core.hooks.drain()  # the login is staged with the turn and runs after its reply
    assert await _awards(database) == [(1007, ana, "event")]

    # The clock says 15:00 UTC, 10:00 in New York.
    clock.advance(timedelta(hours=12))  # 22:00 in New York (03:00 UTC on the 19th): same day
    await chat.say("/help")
    await core.hooks.drain()
    assert len(await _awards(database)) == 1
    clock.advance(timedelta(hours=3))  # 01:00 the next day in New York
    await chat.say("/help")
    await core.hooks.drain()
    assert await _awards(database) == [(1007, ana, "event"), (1007, ana, "event")]
    async with database.read() as session:
        in_order = select(MemberActivity.day).order_by(MemberActivity.day)
        days = (await session.scalars(in_order)).all()
    assert [d.isoformat() for d in days] == ["2026-11-18", "2026-11-19"]


async def test_a_login_emitted_twice_for_one_day_awards_once(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    await add_welcome(database)
    core = _core(database, clock)
    first = await core.events.emit("login", ana, {"day": "2026-11-18"}, occurrence="2026-11-18")
    second = await core.events.emit("login", ana, {"day": "2026-11-18"}, occurrence="2026-11-18")
    assert len(first) == 1 and second == []


async def test_only_enabled_automated_badges_listening_to_the_event_fire(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    await add_welcome(database)  # default events: login
    await add_reward(
        database, reward_id=2, reward_type="Automated Badge", events=["kudos.received"]
    )
    await add_reward(database, reward_id=3, reward_type="Automated Badge", enabled=False)
    await add_reward(database, reward_id=4, reward="People's")  # a User Badge
    core = _core(database, clock)
    assert await core.events.activity(ana, None) is True
    assert await core.events.activity(ana, None) is False
    assert await _awards(database) == [(1007, ana, "event")]


async def test_kudos_fire_given_and_received_badges(database: Database, clock: FixedClock) -> None:
    giver, li, bo = [await add_member(database, n) for n in ("Giver", "Li", "Bo")]
    await add_reward(
        database, reward_id=10, reward_type="Automated Badge", multiple=True, events=["kudos.given"]
    )
    await add_reward(
        database,
        reward_id=11,
        reward_type="Automated Badge",
        multiple=True,
        events=["kudos.received"],
    )
    core = _core(database, clock)
    await core.kudos.give(giver, [li, bo], "great demo")
    await core.hooks.drain()
    assert await _awards(database) == [
        (10, giver, "event"),
        (11, li, "event"),
        (11, bo, "event"),
    ]


async def test_a_badge_award_fires_one_level_of_badge_awarded_only(
    database: Database, clock: FixedClock
) -> None:
    boss = await add_member(database, "Boss", job_code="MANAGER")
    li = await add_member(database, "Li")
    await add_reward(database, reward_id=20, reward="Team Player", multiple=True)
    await add_reward(
        database,
        reward_id=21,
        reward="Collector",
        reward_type="Automated Badge",
        multiple=True,
        events=["badge.awarded"],
    )
    core = _core(database, clock)
    await core.awards.award(20, li, boss)
    await core.hooks.drain()
    # Collector is itself a badge, but an event-sourced one: it fires nothing further.
    assert await _awards(database) == [(20, li, "dialog"), (21, li, "event")]
    await core.awards.award(21, li, source=AwardSource.EVENT)
    assert await core.hooks.drain() == 0
    assert len(await _awards(database)) == 3


async def test_a_failing_event_never_undoes_the_kudos(
    database: Database, clock: FixedClock, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    giver, li = await add_member(database, "Giver"), await add_member(database, "Li")
    core = _core(database, clock)

    async def broken(*args: Any, **kwargs: Any) -> list[Any]:
        raise RuntimeError("listener store is down")

    monkeypatch.setattr(core.hooks, "handler", broken)
    kudos = await core.kudos.give(giver, [li], "thanks")
    await core.hooks.drain()
    async with database.read() as session:
        assert await session.get(Kudos, kudos.id) is not None
    assert "kudos.given" in caplog.text

"""Leaderboards on a hand-built data set with a pinned clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rewards.clock import FixedClock
from rewards.errors import InvalidInput
from rewards.services import ledger
from rewards.services.awards import AwardService, AwardSource
from rewards.services.kudos import KudosService
from rewards.services.leaderboards import LeaderboardFilter, LeaderboardService
from rewards.settings import Settings
from tests.factories import add_member, add_reward

SETTINGS = Settings(timezone="America/New_York", kudos_points=5)
NOW = datetime(2026, 11, 18, 15, tzinfo=UTC)  # Wednesday


def at(month: int, day: int, hour: int = 15) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@pytest.fixture
async def world(database):
    """Ana 215 points this month, Li 110, Bob 15 (kudos), Cy opted out with 500, Dee earlier."""
    m = {
        "ana": await add_member(database, "Ana", department="Sales", groups=("Mentors",)),
        "li": await add_member(database, "Li", department="Engineering"),
        "bob": await add_member(database, "Bob", department="Sales"),
        "cy": await add_member(database, "Cy", department="Sales", opt_out=True),
        "dee": await add_member(database, "Dee", department="Engineering"),
        "sys": await add_member(database, "Mgr", job_code="MANAGER", department="Ops"),
    }
    await add_reward(
        database,
        reward_id=1,
        reward="Star",
        points=100,
        multiple=True,
        reward_category="Recognition",
    )
    await add_reward(
        database,
        reward_id=2,
        reward="Lottery",
        points=500,
        multiple=True,
        reward_type="Computed Badge",
        reward_category="Lottery",
    )
    clock = FixedClock(at(11, 2))
    awards = AwardService(database, SETTINGS, clock)
    kudos = KudosService(database, SETTINGS, clock)
    # Earlier this year (October): Dee wins the lottery.
    clock.set(at(10, 10))
    await awards.award(2, to=m["dee"], source=AwardSource.RULE)
    # This month, before this week.
    clock.set(at(11, 3))
    await awards.award(1, to=m["ana"], by=m["sys"])
    await awards.award(1, to=m["li"], by=m["sys"])
    await awards.award(2, to=m["cy"], source=AwardSource.RULE)
    # This week (from Monday 16 Nov, New York time).
    clock.set(at(11, 17))
    await awards.award(1, to=m["ana"], by=m["sys"])
    await kudos.give(m["bob"], [m["ana"], m["li"]], "demo", ["teamwork"])
    await kudos.give(m["li"], [m["ana"]], "docs", ["docs"])
    await kudos.give(m["ana"], [m["bob"]], "help", ["teamwork"])
    await kudos.give(m["li"], [m["bob"]], "review", ["teamwork"])
    await kudos.give(m["ana"], [m["bob"]], "pairing", ["mentoring"])
    return m


def board(rows):
    return [(r.rank, r.display_name, r.value) for r in rows]


async def test_points_by_period(database, world):
    service = LeaderboardService(database, SETTINGS, FixedClock(NOW))
    week = await service.leaderboard("points", "week")
    assert board(week.rows) == [(1, "Ana", 110), (2, "Bob", 15), (3, "Li", 5)]
    month = await service.leaderboard("points", "month")
    assert board(month.rows) == [(1, "Ana", 210), (2, "Li", 105), (3, "Bob", 15)]
    year = await service.leaderboard("points", "year")
    assert board(year.rows)[0] == (1, "Dee", 500)
    assert "Cy" not in [r.display_name for r in year.rows]  # opted out
    assert await ledger.balance(database, world["cy"]) == 500  # still counted in their own balance


async def test_badges_kudos_and_given(database, world):
    service = LeaderboardService(database, SETTINGS, FixedClock(NOW))
    assert board((await service.leaderboard("badges", "month")).rows) == [
        (1, "Ana", 2),
        (2, "Li", 1),
    ]
    assert board((await service.leaderboard("kudos", "week")).rows) == [
        (1, "Bob", 3),
        (2, "Ana", 2),
        (3, "Li", 1),
    ]
    assert board((await service.leaderboard("kudos_given", "week")).rows) == [
        (1, "Ana", 2),
        (1, "Li", 2),
        (3, "Bob", 1),
    ]


async def test_filters(database, world):
    service = LeaderboardService(database, SETTINGS, FixedClock(NOW))
    sales = await service.leaderboard("points", "month", LeaderboardFilter(department="sales"))
    assert board(sales.rows) == [(1, "Ana", 210), (2, "Bob", 15)]
    mentors = await service.leaderboard("points", "all", LeaderboardFilter(group="Mentors"))
    assert board(mentors.rows) == [(1, "Ana", 210)]
    lottery = await service.leaderboard("points", "year", LeaderboardFilter(category="Lottery"))
    assert board(lottery.rows) == [(1, "Dee", 500)]
    tagged = await service.leaderboard("kudos", "week", LeaderboardFilter(tag="#TeamWork"))
    assert board(tagged.rows) == [(1, "Bob", 2), (2, "Ana", 1), (2, "Li", 1)]
    tag_points = await service.leaderboard("points", "week", LeaderboardFilter(tag="teamwork"))
    assert board(tag_points.rows) == [(1, "Bob", 10), (2, "Ana", 5), (2, "Li", 5)]


async def test_week_starts_monday_in_the_org_zone(database, world):
    """Monday 16 Nov 03:00 UTC is still Sunday in New York: it belongs to the previous week."""
    service = LeaderboardService(database, SETTINGS, FixedClock(NOW))
    awards = AwardService(database, SETTINGS, FixedClock(datetime(2026, 11, 16, 3, tzinfo=UTC)))
    await awards.award(1, to=world["dee"], by=world["sys"])
    week = await service.leaderboard("points", "week")
    assert "Dee" not in [r.display_name for r in week.rows]


async def test_limit_and_bad_arguments(database, world):
    service = LeaderboardService(database, SETTINGS, FixedClock(NOW))
    assert len((await service.leaderboard("points", "all", limit=2)).rows) == 2
    with pytest.raises(InvalidInput, match="rank by"):
        await service.leaderboard("height", "week")
    with pytest.raises(InvalidInput, match="periods are"):
        await service.leaderboard("points", "decade")
    with pytest.raises(InvalidInput, match="not to badges"):
        await service.leaderboard("badges", "week", LeaderboardFilter(tag="x"))


async def test_tag_trends(database, world):
    service = LeaderboardService(database, SETTINGS, FixedClock(NOW))
    trends = await service.tag_trends("week")
    assert [(t.tag, t.count) for t in trends] == [("teamwork", 3), ("docs", 1), ("mentoring", 1)]


async def test_summary_for_me(database, world):
    summary = await ledger.summary(database, world["ana"])
    assert (summary.balance, summary.badges, summary.kudos_received, summary.kudos_given) == (
        210,
        2,
        2,
        2,
    )

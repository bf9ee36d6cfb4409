"""The award pipeline: permissions, availability, duplicates, messages and the ledger."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from rewards.clock import FixedClock
from rewards.errors import (
    AlreadyAwarded,
    InvalidInput,
    NotAllowed,
    NotAvailable,
    SelfAward,
    TemplateRefused,
    UnknownMember,
    UnknownReward,
)
from rewards.services import ledger
from rewards.services.awards import AwardService, AwardSource
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Award, LedgerEntry
from tests.factories import add_member, add_reward

SETTINGS = Settings(timezone="America/New_York", admins=("boss@example.com",))


async def count(db: Database, model: type) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
async def people(database: Database) -> dict[str, int]:
    return {
        "mia": await add_member(database, "Mia", job_code="MANAGER"),
        "eve": await add_member(database, "Eve", job_code="EMPLOYEE"),
        "ann": await add_member(database, "Ann", job_code="ASSOCIATE", groups=("Mentors",)),
        "boss": await add_member(database, "Boss", job_code="DIRECTOR"),
    }


async def test_user_badge_goes_to_the_ledger(database, clock, people):
    await add_reward(
        database,
        reward_id=1005,
        reward="Employee of the Month",
        points=200,
        assigner=[{"job_code": ["MANAGER", "DIRECTOR"]}],
        awardee=[{"job_code": ["EMPLOYEE", "ASSOCIATE"]}],
    )
    service = AwardService(database, SETTINGS, clock)
    award = await service.award(1005, to=people["eve"], by=people["mia"], message="Great quarter")
    assert (award.reward_name, award.member_name, award.giver_name) == (
        "Employee of the Month",
        "Eve",
        "Mia",
    )
    assert award.points == 200 and award.message == "Great quarter"
    assert await ledger.balance(database, people["eve"]) == 200
    assert await ledger.balance(database, people["mia"]) == 0


async def test_assigner_and_awardee_entries_are_ored(database, clock, people):
    await add_reward(
        database,
        reward_id=1,
        reward="Mentor Star",
        assigner=[{"job_code": ["MANAGER"]}, {"groups": ["Mentors"]}],
        awardee=[{"job_code": ["EMPLOYEE"]}, {"groups": ["Mentors"]}],
        multiple=True,
    )
    service = AwardService(database, SETTINGS, clock)
    await service.award(1, to=people["eve"], by=people["mia"])  # manager clause
    await service.award(1, to=people["eve"], by=people["ann"])  # group clause
    with pytest.raises(
        NotAllowed, match="Only people with job code MANAGER; or group Mentors can give Mentor Star"
    ):
        await service.award(1, to=people["ann"], by=people["eve"])
    with pytest.raises(NotAllowed, match="can only go to people with"):
        await service.award(1, to=people["boss"], by=people["mia"])
    assert await count(database, Award) == 2


async def test_self_award_is_refused(database, clock, people):
    await add_reward(database, reward_id=2, reward="Helper")
    with pytest.raises(SelfAward, match="You can't give Helper to yourself"):
        await AwardService(database, SETTINGS, clock).award(2, to=people["eve"], by=people["eve"])
    assert await count(database, LedgerEntry) == 0


async def test_system_badges_are_not_given_by_people(database, clock, people):
    await add_reward(
        database,
        reward_id=1010,
        reward="Daily Lottery Winner",
        reward_type="Computed Badge",
        multiple=True,
        timeframe="daily",
        points=500,
    )
    service = AwardService(database, SETTINGS, clock)
    with pytest.raises(NotAllowed, match="given automatically"):
        await service.award(1010, to=people["eve"], by=people["mia"])
    award = await service.award(1010, to=people["eve"], source=AwardSource.RULE)
    assert award.giver_id is None and award.points == 500


async def test_unknown_reward_and_member(database, clock, people):
    await add_reward(database, reward_id=3)
    service = AwardService(database, SETTINGS, clock)
    with pytest.raises(UnknownReward, match="There is no reward with id 999"):
        await service.award(999, to=people["eve"], by=people["mia"])
    with pytest.raises(UnknownMember):
        await service.award(3, to=123456, by=people["mia"])


async def test_once_only_reward_then_revoke_and_earn_again(database, clock, people):
    await add_reward(database, reward_id=4, reward="Welcome", points=10)
    service = AwardService(database, SETTINGS, clock)
    first = await service.award(4, to=people["eve"], by=people["mia"])
    with pytest.raises(AlreadyAwarded, match="Eve already has Welcome"):
        await service.award(4, to=people["eve"], by=people["ann"])
    with pytest.raises(NotAllowed, match="Only the person who gave this award or an admin"):
        await service.revoke(first.id, by=people["ann"])
    revoked = await service.revoke(first.id, by=people["mia"], reason="given by mistake")
    assert revoked.revoked_at == clock.now()
    assert await ledger.balance(database, people["eve"]) == 0
    with pytest.raises(AlreadyAwarded, match="already revoked"):
        await service.revoke(first.id, by=people["mia"])
    await service.award(4, to=people["eve"], by=people["mia"])
    assert await ledger.balance(database, people["eve"]) == 10
    kinds = [line.kind for line in await ledger.history(database, people["eve"])]
    assert kinds == ["award", "reversal", "award"]


async def test_admin_can_revoke(database, clock, people):
    await add_reward(database, reward_id=5, reward="Oops")
    service = AwardService(database, Settings(admins=("boss@example.com",)), clock)
    award = await service.award(5, to=people["eve"], by=people["mia"])
    assert (await service.revoke(award.id, by=people["boss"])).revoked_at is not None


async def test_timeframe_uses_each_members_own_day(database, people):
    """At 15:00 UTC on 18 Nov it is already the 19th in Tokyo but still the 18th in Los Angeles."""
    tokyo = await add_member(database, "Kenji", timezone="Asia/Tokyo")
    la = await add_member(database, "Lucy", timezone="America/Los_Angeles")
    await add_reward(database, reward_id=6, reward="Daily Star", multiple=True, timeframe="daily")
    clock = FixedClock(datetime(2026, 11, 18, 14, 30, tzinfo=UTC))
    service = AwardService(database, SETTINGS, clock)
    await service.award(6, to=tokyo, by=people["mia"])
    await service.award(6, to=la, by=people["mia"])
    clock.set(datetime(2026, 11, 18, 15, 30, tzinfo=UTC))
    await service.award(6, to=tokyo, by=people["mia"])  # a new day in Tokyo
    with pytest.raises(AlreadyAwarded, match="Lucy already received Daily Star today"):
        await service.award(6, to=la, by=people["mia"])
    clock.set(datetime(2026, 11, 19, 8, 1, tzinfo=UTC))  # 00:01 on the 19th in Los Angeles
    await service.award(6, to=la, by=people["mia"])


async def test_weekly_timeframe_buckets_by_iso_week(database, people):
    await add_reward(database, reward_id=7, reward="Weekly", multiple=True, timeframe="weekly")
    clock = FixedClock(datetime(2026, 11, 22, 12, tzinfo=UTC))  # Sunday
    service = AwardService(database, SETTINGS, clock)
    await service.award(7, to=people["eve"], by=people["mia"])
    with pytest.raises(AlreadyAwarded, match="this week"):
        await service.award(7, to=people["eve"], by=people["mia"])
    clock.advance(timedelta(days=1))  # Monday: a new week
    await service.award(7, to=people["eve"], by=people["mia"])


async def test_availability_is_judged_in_the_receivers_zone(database, people):
    tokyo = await add_member(database, "Kenji", timezone="Asia/Tokyo")
    la = await add_member(database, "Lucy", timezone="America/Los_Angeles")
    await add_reward(
        database,
        reward_id=8,
        reward="Early Bird Special",
        multiple=True,
        availability_rule={
            "dow": [0, 1, 2, 3, 4],
            "start_time": "06:00:00",
            "end_time": "09:00:00",
        },
    )
    # Wednesday 15:00 UTC: 07:00 Wednesday in Los Angeles, 00:00 Thursday in Tokyo.
    service = AwardService(database, SETTINGS, FixedClock(datetime(2026, 11, 18, 15, tzinfo=UTC)))
    await service.award(8, to=la, by=people["mia"])
    with pytest.raises(
        NotAvailable,
        match="only available on Mon, Tue, Wed, Thu, Fri between 06:00:00 and 09:00:00",
    ):
        await service.award(8, to=tokyo, by=people["mia"])


async def test_holiday_range_wraps_the_year_end(database, people):
    await add_reward(
        database,
        reward_id=9,
        reward="Holiday",
        multiple=True,
        availability_rule={"start_date": "12-15", "end_date": "01-15"},
    )
    clock = FixedClock(datetime(2026, 12, 31, 12, tzinfo=UTC))
    service = AwardService(database, SETTINGS, clock)
    await service.award(9, to=people["eve"], by=people["mia"])
    clock.set(datetime(2027, 1, 10, 12, tzinfo=UTC))
    await service.award(9, to=people["eve"], by=people["mia"])
    clock.set(datetime(2027, 2, 1, 12, tzinfo=UTC))
    with pytest.raises(NotAvailable):
        await service.award(9, to=people["eve"], by=people["mia"])


async def test_cooldown_between_repeatable_awards(database, clock, people):
    await add_reward(database, reward_id=10, reward="High Five", multiple=True, cooldown_minutes=10)
    service = AwardService(database, SETTINGS, clock)
    await service.award(10, to=people["eve"], by=people["mia"])
    clock.advance(timedelta(minutes=4))
    with pytest.raises(AlreadyAwarded, match="can be given again in 6 minutes"):
        await service.award(10, to=people["eve"], by=people["mia"])
    clock.advance(timedelta(minutes=6))
    await service.award(10, to=people["eve"], by=people["mia"])


async def test_idempotency_key_makes_retries_harmless(database, clock, people):
    await add_reward(database, reward_id=11, reward="Thanks", multiple=True)
    service = AwardService(database, SETTINGS, clock)
    await service.award(11, to=people["eve"], by=people["mia"], idempotency_key="req-1")
    with pytest.raises(AlreadyAwarded, match="already carried out"):
        await service.award(11, to=people["eve"], by=people["mia"], idempotency_key="req-1")
    await service.award(11, to=people["eve"], by=people["mia"], idempotency_key="req-2")
    assert await count(database, Award) == 2


@pytest.mark.parametrize("kind", [{"multiple": False}, {"multiple": True, "timeframe": "daily"}])
async def test_fifty_concurrent_identical_awards_make_one(database, clock, people, kind):
    await add_reward(
        database, reward_id=12, reward="Race", reward_type="Automated Badge", points=10, **kind
    )
    service = AwardService(database, SETTINGS, clock)
    results = await asyncio.gather(
        *(service.award(12, to=people["eve"], source=AwardSource.EVENT) for _ in range(50)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, AlreadyAwarded)]
    assert len(winners) == 1 and len(refused) == 49, [
        r for r in results if isinstance(r, Exception) and not isinstance(r, AlreadyAwarded)
    ]
    assert await count(database, Award) == 1
    assert await count(database, LedgerEntry) == 1
    assert await ledger.balance(database, people["eve"]) == 10


async def test_message_template_renders_with_documented_variables(database, clock, people):
    await add_reward(
        database,
        reward_id=13,
        reward="Top Seller",
        reward_type="Computed Badge",
        points=50,
        message="Congratulations {{user.display_name}}! You made {{args.sales_count}} sales "
        "this month and ranked #{{args.rank}}! "
        "({{reward.name}}, {{reward.points}} points, {{env.month_name}})",
    )
    award = await AwardService(database, SETTINGS, clock).award(
        13, to=people["eve"], source=AwardSource.RULE, args={"sales_count": 42, "rank": 1}
    )
    assert award.message == (
        "Congratulations Eve! You made 42 sales this month and ranked #1! "
        "(Top Seller, 50 points, November)"
    )


async def test_template_reaching_python_internals_is_refused(database, clock, people):
    await add_reward(
        database,
        reward_id=14,
        reward="Evil",
        reward_type="Computed Badge",
        message="{{ ''.__class__.__mro__ }}",
    )
    with pytest.raises(TemplateRefused, match=r"'__mro__'.*Python internals"):
        await AwardService(database, SETTINGS, clock).award(
            14, to=people["eve"], source=AwardSource.RULE
        )
    assert await count(database, Award) == 0


async def test_oversize_message_is_refused(database, clock, people):
    await add_reward(database, reward_id=15, reward="Chatty")
    with pytest.raises(InvalidInput, match="too long"):
        await AwardService(database, SETTINGS, clock).award(
            15, to=people["eve"], by=people["mia"], message="x" * 5000
        )
    assert await count(database, Award) == 0


async def test_inactive_member_cannot_receive(database, clock, people):
    gone = await add_member(database, "Gone", active=False)
    await add_reward(database, reward_id=16, reward="Bye")
    with pytest.raises(NotAllowed, match="not an active member"):
        await AwardService(database, SETTINGS, clock).award(16, to=gone, by=people["mia"])


async def test_givable_lists_only_badges_this_giver_may_give_now(database, clock, people):
    await add_reward(database, reward_id=20, reward="Anyone")
    await add_reward(
        database, reward_id=21, reward="Managers only", assigner=[{"job_code": ["MANAGER"]}]
    )
    await add_reward(database, reward_id=22, reward="Lottery", reward_type="Computed Badge")
    await add_reward(database, reward_id=23, reward="Never now", availability_rule={"dow": [5, 6]})
    service = AwardService(database, SETTINGS, clock)
    assert [r.reward for r in await service.givable(people["mia"])] == ["Anyone", "Managers only"]
    assert [r.reward for r in await service.givable(people["eve"])] == ["Anyone"]

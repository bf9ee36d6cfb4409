"""BestSeller: ranked totals of a metric over the reward's period, and the seed's "Top Seller"."""

from __future__ import annotations

from datetime import UTC, date, datetime

from rewards.catalog.rules import BestSeller
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.rules.achievement import reward_period
from rewards.rules.base import EvalContext
from rewards.rules.bestseller import best_sellers
from rewards.rules.evaluate import evaluate_reward
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import MetricRecord
from tests.factories import add_member, add_reward

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
TOP_SELLER = (
    "Congratulations {{user.display_name}}! You made {{args.sales_count}} sales this month "
    "and ranked #{{args.rank}}!"
)


async def _sales(
    db: Database,
    rows: list[tuple[int, date, float]],
    *,
    dataset: str = "sales",
    name: str = "sales_count",
) -> None:
    async with db.write() as session:
        session.add_all(
            MetricRecord(dataset=dataset, member_id=m, day=d, name=name, value=v)
            for m, d, v in rows
        )


async def _winners(
    db: Database, rule: BestSeller, now: datetime = NOW, tz: str = "UTC"
) -> list[tuple[int, dict]]:
    ctx = EvalContext(db=db, now=now, settings=Settings(timezone=tz), reward_id=1)
    return [
        (c.member_id, c.args) for c in await best_sellers(ctx, rule, reward_period(None, now, tz))
    ]


async def test_ties_share_a_rank_and_zero_never_wins(database: Database) -> None:
    a, b, c, d, e = [await add_member(database, n) for n in "ABCDE"]
    day = date(2026, 11, 3)
    await _sales(database, [(a, day, 10), (b, day, 8), (c, day, 8), (d, day, 5), (e, day, 0)])
    await _sales(database, [(a, date(2026, 11, 4), 2)])  # summed: A has 12

    assert await _winners(database, BestSeller(count=2)) == [
        (a, {"sales_count": 12, "rank": 1}),
        (b, {"sales_count": 8, "rank": 2}),
        (c, {"sales_count": 8, "rank": 2}),
    ]


async def test_only_the_dataset_column_and_period_count(database: Database) -> None:
    a, b, inactive = (
        await add_member(database, "A"),
        await add_member(database, "B"),
        await add_member(database, "Gone", active=False),
    )
    await _sales(database, [(a, date(2026, 11, 1), 3), (b, date(2026, 11, 30), 4)])
    await _sales(database, [(a, date(2026, 10, 31), 100), (b, date(2026, 12, 1), 100)])  # outside
    await _sales(database, [(a, date(2026, 11, 2), 100)], name="revenue")
    await _sales(database, [(a, date(2026, 11, 2), 100)], dataset="crm")
    await _sales(database, [(inactive, date(2026, 11, 2), 100)])
    assert await _winners(database, BestSeller(count=5)) == [
        (b, {"sales_count": 4, "rank": 1}),
        (a, {"sales_count": 3, "rank": 2}),
    ]
    revenue = await _winners(database, BestSeller(count=1, column="revenue"))
    assert revenue == [(a, {"revenue": 100, "rank": 1})]


async def test_the_month_is_the_organisations(database: Database) -> None:
    # 30 November 23:00 UTC is 1 December in Auckland: December's sales count, November's do not.
    a, b = await add_member(database, "A"), await add_member(database, "B")
    await _sales(database, [(a, date(2026, 11, 30), 50), (b, date(2026, 12, 1), 1.5)])
    moment = datetime(2026, 11, 30, 23, tzinfo=UTC)
    assert await _winners(database, BestSeller(), moment, "Pacific/Auckland") == [
        (b, {"sales_count": 1.5, "rank": 1})
    ]


async def test_top_seller_is_awarded_with_the_seed_message(
    database: Database, clock: FixedClock
) -> None:
    ana, li = await add_member(database, "Ana"), await add_member(database, "Li")
    await _sales(
        database,
        [(ana, date(2026, 11, 2), 7), (ana, date(2026, 11, 9), 5), (li, date(2026, 11, 9), 3)],
    )
    await add_reward(
        database,
        reward_id=9010,
        reward="Top Seller",
        reward_type="Computed Badge",
        rules=[["BestSeller"]],
        job={"trigger": "cron", "cron": {"day": "last", "hour": 16, "minute": 0}},
        message=TOP_SELLER,
    )
    core = Core(settings=Settings(), db=database, clock=clock)
    report = await evaluate_reward(core, 9010, now=NOW, run_key="top:2026-11-30T16:00")
    assert [v.message for v in report.awarded] == [
        "Congratulations Ana! You made 12 sales this month and ranked #1!"
    ]
    again = await evaluate_reward(core, 9010, now=NOW, run_key="top:2026-11-30T16:00")
    assert again.awarded == [] and again.announcement_id is None

"""AchievementRule: the seed-shaped functions, their batch forms and the `$n` SQL adapter."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from rewards.catalog.rules import AchievementRule
from rewards.clock import local_today
from rewards.functions.engagement import get_login_streak, login_streaks
from rewards.functions.registry import FunctionKind, FunctionRegistry, build_registry
from rewards.rules.achievement import (
    BatchEnv,
    MemberEnv,
    SqlConnection,
    achievements,
    active_members,
    reward_period,
)
from rewards.rules.activity import record_activity
from rewards.rules.base import EvalContext
from rewards.settings import Settings
from rewards.store.db import Database
from tests.factories import add_member, add_reward

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
TODAY = NOW.date()


async def _active_on(db: Database, member_id: int, days: list[date]) -> None:
    for day in days:
        await record_activity(
            db, member_id, datetime(day.year, day.month, day.day, 12, tzinfo=UTC), None
        )


def _run(last: date, length: int) -> list[date]:
    return [last - timedelta(days=i) for i in range(length)]


async def _ctx(db: Database, now: datetime = NOW, timezone: str = "UTC") -> EvalContext:
    await add_reward(db, reward_id=1)
    return EvalContext(db=db, now=now, settings=Settings(timezone=timezone), reward_id=1)


def _rule(name: str, threshold: float = 0, operator: str = "gte", **params: Any) -> AchievementRule:
    return AchievementRule.model_validate(
        {
            "function_path": name,
            "threshold": threshold,
            "operator": operator,
            "function_params": params,
        }
    )


def test_reward_period_is_the_timeframe_bucket_else_the_month_in_the_org_zone() -> None:
    month = reward_period(None, NOW, "UTC")
    assert (month.start, month.end) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert month.label == "2026-11"
    week = reward_period("weekly", NOW, "UTC")
    assert (week.first_day, week.end_day) == (date(2026, 11, 16), date(2026, 11, 23))
    quarter = reward_period("quarterly", NOW, "UTC")
    assert (quarter.first_day, quarter.end_day) == (date(2026, 10, 1), date(2027, 1, 1))
    # 30 November 23:00 UTC is already 1 December in Auckland (UTC+13).
    auckland = reward_period(None, datetime(2026, 11, 30, 23, tzinfo=UTC), "Pacific/Auckland")
    assert auckland.first_day == date(2026, 12, 1)
    assert auckland.start == datetime(2026, 11, 30, 11, tzinfo=UTC)
    leap = reward_period(None, datetime(2028, 2, 29, 12, tzinfo=UTC), "UTC")
    assert (leap.first_day, leap.end_day) == (date(2028, 2, 1), date(2028, 3, 1))


async def test_the_connection_runs_dollar_placeholder_sql_with_dates(database: Database) -> None:
    ana = await add_member(database, "Ana")
    await _active_on(database, ana, _run(TODAY, 3))
    conn = SqlConnection(database)
    count = await conn.fetchval(
        "SELECT COUNT(*) FROM member_activity WHERE member_id = $1 AND day >= $2 AND day <= $3",
        ana,
        TODAY - timedelta(days=1),
        TODAY,
    )
    assert count == 2
    assert (
        await conn.fetchrow("SELECT member_id FROM member_activity WHERE member_id = $1", 999)
        is None
    )
    rows = await conn.fetch(
        "SELECT COUNT(*) FROM member_activity WHERE first_seen_at >= $1", NOW - timedelta(days=1)
    )
    assert rows == [(1,)]


async def test_login_streak_batch_matches_the_per_member_function(database: Database) -> None:
    zones = {"utc": None, "auckland": "Pacific/Auckland", "new_york": "America/New_York"}
    ids = {name: await add_member(database, name, timezone=tz) for name, tz in zones.items()}
    extra = {
        "today_and_back": await add_member(database, "today_and_back"),
        "gap": await add_member(database, "gap"),
        "none": await add_member(database, "none"),
        "old": await add_member(database, "old"),
    }
    # utc: active yesterday and the 4 days before (not yet today): streak 5.
    await _active_on(database, ids["utc"], _run(TODAY - timedelta(days=1), 5))
    # Auckland's today is 19 November: active 19th back to 10th: streak 10.
    await _active_on(database, ids["auckland"], _run(date(2026, 11, 19), 10))
    # New York's today is the 18th: active 17th and 16th: streak 2.
    await _active_on(database, ids["new_york"], _run(date(2026, 11, 17), 2))
    await _active_on(database, extra["today_and_back"], _run(TODAY, 40))
    await _active_on(
        database, extra["gap"], [TODAY, TODAY - timedelta(days=1), TODAY - timedelta(days=3)]
    )
    await _active_on(database, extra["old"], _run(TODAY - timedelta(days=2), 9))  # broke yesterday
    expected = {
        ids["utc"]: 5,
        ids["auckland"]: 10,
        ids["new_york"]: 2,
        extra["today_and_back"]: 40,
        extra["gap"]: 2,
        extra["none"]: 0,
        extra["old"]: 0,
    }
    members = await active_members(database)
    todays = {m.id: local_today(NOW, m.timezone) for m in members}
    conn = SqlConnection(database)
    period = reward_period(None, NOW, "UTC")

    batch = await login_streaks(members, BatchEnv(todays, period.start, period.end), conn)
    single = {
        m.id: await get_login_streak(m, MemberEnv(todays[m.id], period.start, period.end), conn)
        for m in members
    }

    assert batch == expected
    assert single == expected
    capped = await login_streaks(
        members, BatchEnv(todays, period.start, period.end), conn, max_days=7
    )
    assert capped[extra["today_and_back"]] == 7 and capped[ids["auckland"]] == 7


@pytest.mark.parametrize(
    ("operator", "threshold", "passing"),
    [
        ("gte", 5, ["five", "nine"]),
        ("gt", 5, ["nine"]),
        ("lte", 5, ["zero", "five"]),
        ("lt", 5, ["zero"]),
        ("eq", 5, ["five"]),
        ("ne", 5, ["zero", "nine"]),
    ],
)
async def test_operators_compare_the_value_with_the_threshold(
    database: Database, operator: str, threshold: int, passing: list[str]
) -> None:
    values = {"zero": 0, "five": 5, "nine": 9}
    ids = {name: await add_member(database, name) for name in values}
    by_id = {ids[name]: value for name, value in values.items()}

    async def scored(user: Any, env: Any, conn: Any, **kwargs: Any) -> int:
        return by_id[user.id]

    registry = FunctionRegistry()
    registry.register("tests.scored", scored, FunctionKind.ACHIEVEMENT)
    ctx = await _ctx(database)
    found = await achievements(
        ctx, _rule("tests.scored", threshold, operator), registry, reward_period(None, NOW, "UTC")
    )
    assert [c.member_id for c in found] == [ids[name] for name in passing]
    assert {c.key for c in found} <= {"achievement:2026-11"}


async def test_batch_form_is_called_once_and_per_member_functions_only_for_active_members(
    database: Database,
) -> None:
    ana = await add_member(database, "Ana", timezone="Pacific/Auckland")
    bo = await add_member(database, "Bo")
    await add_member(database, "Gone", active=False)
    calls: list[Any] = []

    async def one(user: Any, env: Any, conn: Any, *, bonus: int = 0, **kwargs: Any) -> int:
        calls.append(("one", user.user_id, env.today, env.start_date))
        return 10 + bonus

    async def many(
        members: Any, env: Any, conn: Any, *, bonus: int = 0, **kwargs: Any
    ) -> dict[int, int]:
        calls.append(("many", [m.id for m in members], env.today_for(members[0].id)))
        return {m.id: 1 + bonus for m in members}

    registry = FunctionRegistry()
    registry.register("tests.one", one, FunctionKind.ACHIEVEMENT)
    registry.register("tests.many", one, FunctionKind.ACHIEVEMENT, batch=many)
    ctx = await _ctx(database)
    period = reward_period("weekly", NOW, "UTC")

    found = await achievements(ctx, _rule("tests.one", 12, bonus=2), registry, period)
    assert [c.member_id for c in found] == [ana, bo]
    assert sorted(calls) == [
        ("one", ana, date(2026, 11, 19), datetime(2026, 11, 16, tzinfo=UTC)),  # Auckland's today
        ("one", bo, TODAY, datetime(2026, 11, 16, tzinfo=UTC)),
    ]
    calls.clear()
    found = await achievements(ctx, _rule("tests.many", 3, bonus=2), registry, period, within={bo})
    assert calls == [("many", [bo], TODAY)]
    assert [(c.member_id, c.args) for c in found] == [(bo, {"value": 3, "threshold": 3})]


def test_the_builtin_login_streak_declares_its_batch_form() -> None:
    entry = build_registry(use_entry_points=False).get(
        "rewards.functions.engagement.get_login_streak"
    )
    assert entry.batch is login_streaks


async def test_the_members_forms_answer_as_the_functions_for_the_members_named(
    database: Database,
) -> None:
    """Training scores and first sale: the members form (one query for the members it is
    given, the workflows' event path) equals the per-member function, members without rows
    included."""
    from rewards.store.models import MetricRecord

    names = ["trained", "half", "seller", "nothing"]
    ids = {name: await add_member(database, name) for name in names}
    rows = [
        ("training", ids["trained"], date(2026, 11, 1), "product_knowledge", 70),
        ("training", ids["trained"], date(2026, 11, 2), "product_knowledge", 92.5),
        ("training", ids["trained"], date(2026, 11, 2), "sales_techniques", 100),
        ("training", ids["half"], date(2026, 11, 2), "product_knowledge", 81),
        ("sales", ids["seller"], date(2026, 11, 3), "sales_count", 2),
        ("sales", ids["half"], date(2026, 11, 3), "sales_count", 0),
    ]
    async with database.write() as session:
        session.add_all(
            [
                MetricRecord(dataset=d, member_id=m, day=day, name=n, value=v)
                for d, m, day, n, v in rows
            ]
        )
    registry = build_registry(use_entry_points=False)
    members = await active_members(database)
    todays = {m.id: TODAY for m in members}
    period = reward_period(None, NOW, "UTC")
    conn = SqlConnection(database)
    for name in (
        "rewards.functions.training.check_product_knowledge",
        "rewards.functions.training.check_sales_training",
        "rewards.functions.sales.check_first_sale",
    ):
        entry = registry.get(name)
        assert entry.members is not None, name
        together = await entry.members(members, BatchEnv(todays, period.start, period.end), conn)
        single = {
            m.id: await entry.func(m, MemberEnv(TODAY, period.start, period.end), conn)
            for m in members
        }
        assert together == single, name
        assert len(together) == len(names)
    knowledge = registry.get("rewards.functions.training.check_product_knowledge").members
    assert knowledge is not None
    scores = await knowledge(members, BatchEnv(todays, period.start, period.end), conn)
    assert scores[ids["trained"]] == 92.5 and scores[ids["nothing"]] == 0


async def test_the_login_streak_passing_form_selects_what_the_per_member_function_does(
    database: Database,
) -> None:
    """The sweep asks the whole population "who passes" in one query (the passing form); for
    every comparison it must select exactly the members the per-member function passes."""
    zones = {"utc": None, "auckland": "Pacific/Auckland", "new_york": "America/New_York"}
    ids = {name: await add_member(database, name, timezone=tz) for name, tz in zones.items()}
    more = {
        name: await add_member(database, name)
        for name in ("long", "exact", "broken", "none", "future")
    }
    gone = await add_member(database, "gone", active=False)
    await _active_on(database, ids["utc"], _run(TODAY - timedelta(days=1), 5))
    await _active_on(database, ids["auckland"], _run(date(2026, 11, 19), 10))
    await _active_on(database, ids["new_york"], _run(date(2026, 11, 17), 2))
    await _active_on(database, more["long"], _run(TODAY, 40))
    await _active_on(database, more["exact"], _run(TODAY, 10))
    await _active_on(database, more["broken"], _run(TODAY - timedelta(days=2), 30))
    # Active after the moment judged (NOW is in the past for this member's run).
    await _active_on(database, more["future"], _run(TODAY + timedelta(days=3), 20))
    await _active_on(database, gone, _run(TODAY, 40))
    registry = build_registry(use_entry_points=False)
    assert registry.get("rewards.functions.engagement.get_login_streak").passing is not None
    per_member = FunctionRegistry()
    per_member.register(
        "rewards.functions.engagement.get_login_streak", get_login_streak, FunctionKind.ACHIEVEMENT
    )
    ctx = await _ctx(database)
    period = reward_period(None, NOW, "UTC")
    for operator, threshold in [
        ("gte", 1),
        ("gte", 10),
        ("gte", 30),
        ("gt", 9.5),
        ("gt", 10),
        ("lte", 5),
        ("eq", 0),
        ("gte", 0),
    ]:
        for max_days in (365, 8):
            rule = _rule(
                "rewards.functions.engagement.get_login_streak",
                threshold,
                operator,
                max_days=max_days,
            )
            fast = await achievements(ctx, rule, registry, period)
            slow = await achievements(ctx, rule, per_member, period)
            assert [(c.member_id, c.args) for c in fast] == [(c.member_id, c.args) for c in slow], (
                operator,
                threshold,
                max_days,
            )

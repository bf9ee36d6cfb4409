"""Every rule- and event-driven reward of examples/rewards.json, end to end on hand-built data.

The clock is Wednesday 2026-11-18 15:00 UTC and the organisation's zone is UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from rewards.catalog.loader import load_file
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.rules.activity import record_activity
from rewards.rules.attendance import upsert_attendance
from rewards.rules.evaluate import evaluate_reward, sweep
from rewards.services.catalog import load_catalog
from rewards.services.metrics import upsert_metrics
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Announcement, Award, Member, MetricRecord
from tests.factories import add_member

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "rewards.json"
NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
TODAY = NOW.date()


async def _set(db: Database, member_id: int, **values: Any) -> None:
    async with db.write() as session:
        await session.execute(
            update(Member).where(Member.id == member_id).values(**values)  # type: ignore[arg-type]
        )


def _weekdays(first: date, last: date, *, missing: tuple[date, ...] = ()) -> list[date]:
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [d for d in days if d.weekday() < 5 and d not in missing]


async def _people(db: Database) -> dict[str, int]:
    names = ("streak30", "streak29", "bday", "hire1", "hire5", "punctual", "patchy")
    people = {name: await add_member(db, name) for name in names}
    people["seller"] = await add_member(db, "seller", department="Sales", job_code="ASSOCIATE")
    people["new_seller"] = await add_member(
        db, "new_seller", department="Sales", job_code="ASSOCIATE"
    )
    for name, days in (("streak30", 30), ("streak29", 29)):
        for back in range(days):
            moment = NOW - timedelta(days=back, hours=3)
            await record_activity(db, people[name], moment, None)
    await _set(db, people["bday"], birthday_month=11, birthday_day=18)
    await _set(db, people["hire1"], hire_date=date(2025, 11, 18))
    await _set(db, people["hire5"], hire_date=date(2021, 11, 18))
    await _set(db, people["seller"], hire_date=date(2020, 1, 6))
    await _set(db, people["new_seller"], hire_date=date(2026, 10, 1))
    every_day = _weekdays(date(2026, 10, 1), TODAY - timedelta(days=1))
    patchy = _weekdays(date(2026, 10, 1), TODAY - timedelta(days=1), missing=(date(2026, 10, 20),))
    await upsert_attendance(
        db,
        "employee_attendance",
        [(people["punctual"], d, True) for d in every_day]
        + [(people["patchy"], d, True) for d in patchy],
    )
    return people


async def _setup(database: Database, clock: FixedClock) -> tuple[Core, dict[str, int]]:
    await load_catalog(database, load_file(EXAMPLES), clock=clock)
    return Core(settings=Settings(), db=database, clock=clock), await _people(database)


async def _awarded(db: Database) -> dict[int, list[int]]:
    query = select(Award.reward_id, Award.member_id).order_by(Award.id)  # type: ignore[arg-type]
    found: dict[int, list[int]] = {}
    async with db.read() as session:
        for reward_id, member_id in (await session.execute(query)).all():
            found.setdefault(int(reward_id), []).append(int(member_id))
    return found


async def _announcements(db: Database) -> list[tuple[int | None, str]]:
    query = select(Announcement.reward_id, Announcement.kind).order_by(Announcement.id)  # type: ignore[arg-type]
    async with db.read() as session:
        return [(r, str(k)) for r, k in (await session.execute(query)).all()]


async def test_the_sweep_awards_every_seed_achievement_once(
    database: Database, clock: FixedClock
) -> None:
    core, p = await _setup(database, clock)
    # Elite Performer: 100 sales this month AND a perfect previous month, weekends included.
    # Punctual also worked October's weekends; Patchy sells more but missed days.
    october = [date(2026, 10, d) for d in range(1, 32)]
    await upsert_attendance(
        database, "employee_attendance", [(p["punctual"], d, True) for d in october]
    )
    await upsert_metrics(
        database,
        "sales",
        [
            (p["punctual"], date(2026, 11, 5), "sales_count", 60),
            (p["punctual"], date(2026, 11, 10), "sales_count", 40),
            (p["patchy"], date(2026, 11, 6), "sales_count", 150),
            (p["streak30"], date(2026, 10, 30), "sales_count", 500),  # last month: not counted
        ],
    )

    reports = {r.reward_id: r for r in await sweep(core, now=NOW)}

    assert sorted(reports) == [3000, 5001, 9001, 9002, 9003, 9004, 9005, 9006, 9009]
    assert await _awarded(database) == {
        3000: [p["streak30"]],  # Consistency King: a 30-day streak, not 29
        5001: [p["punctual"]],  # perfect October weekdays
        9001: [p["bday"]],
        9002: [p["hire1"], p["hire5"]],  # every anniversary
        9003: [p["hire5"]],  # only the fifth
        9004: [p["punctual"]],
        9005: [p["punctual"], p["patchy"]],  # one missed day of the last 30 is allowed
        9006: [p["punctual"]],
        9009: [p["punctual"]],
    }
    assert [r.error for r in reports.values() if r.error] == []
    kinds = dict(await _announcements(database))
    assert kinds[9001] == "birthday" and kinds[9002] == "anniversary" and kinds[3000] == "award"
    announced = len(await _announcements(database))

    clock.advance(timedelta(hours=1))
    again = await sweep(core, now=NOW + timedelta(hours=1))
    assert all(r.awarded == [] for r in again)
    assert len(await _announcements(database)) == announced


async def test_seed_jobs_evaluated_by_the_scheduler(database: Database, clock: FixedClock) -> None:
    core, p = await _setup(database, clock)
    async with database.write() as session:
        session.add(
            MetricRecord(
                dataset="sales",
                member_id=p["seller"],
                day=date(2026, 11, 2),
                name="sales_count",
                value=9.0,
            )
        )

    streak = await evaluate_reward(core, 9012, now=NOW, run_key="check_every_2_hours:t1")
    thirty = await evaluate_reward(core, 9013, now=NOW, run_key="9013:t1")
    top = await evaluate_reward(core, 9010, now=NOW, run_key="9010:t1")
    christmas = await evaluate_reward(core, 9014, now=NOW, run_key="christmas_special:t1")
    daily = await evaluate_reward(core, 1010, now=NOW, run_key="daily_lottery:t1")
    mega = await evaluate_reward(core, 1013, now=NOW, run_key="monthly_mega_lottery:t1")
    four_pm = await evaluate_reward(core, 9011, now=NOW, run_key="daily_lottery_4pm:t1")

    assert streak.awarded_ids == [p["streak30"]]
    assert thirty.awarded_ids == [p["punctual"]]
    assert [v.message for v in top.awarded] == [
        "Congratulations seller! You made 9 sales this month and ranked #1!"
    ]
    # Sales or Marketing, ASSOCIATE, at least 90 days in: only one of the two sellers.
    assert christmas.awarded_ids == [p["seller"]]
    assert len(daily.awarded_ids) == 1 and len(four_pm.awarded_ids) == 1
    assert len(mega.awarded_ids) == 5 and len(set(mega.awarded_ids)) == 5
    lotteries = [
        kind
        for reward_id, kind in await _announcements(database)
        if reward_id in {9014, 1010, 1013, 9011}
    ]
    assert lotteries == ["lottery"] * 4

    repeat = await evaluate_reward(core, 1010, now=NOW, run_key="daily_lottery:t1")
    assert repeat.awarded == [] and repeat.draw_run_id == daily.draw_run_id


async def test_welcome_badges_fire_on_the_first_login_of_the_day(
    database: Database, clock: FixedClock
) -> None:
    core, _people_by_name = await _setup(database, clock)
    ana = await add_member(database, "ana")
    for _ in range(3):
        await core.events.activity(ana, None)
    awarded = await _awarded(database)
    assert awarded[1007] == [ana]  # Welcome to Navigator: once per login-day
    assert awarded[1001] == [ana]  # Welcome Badge
    clock.advance(timedelta(days=1))
    await core.events.activity(ana, None)
    assert (await _awarded(database))[1007] == [ana, ana]

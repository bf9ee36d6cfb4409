"""evaluate_reward and sweep: rules to awards to announcements, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from rewards.clock import FixedClock
from rewards.core import Core
from rewards.rules.activity import record_activity
from rewards.rules.evaluate import evaluate_reward, sweep
from rewards.rules.lottery import verify
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Announcement, Award, LedgerEntry, LotteryRun
from tests.factories import add_member, add_reward

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # the `clock` fixture's instant, a Wednesday


def _core(database: Database, clock: FixedClock, **settings: Any) -> Core:
    return Core(settings=Settings(**settings), db=database, clock=clock)


async def _person(
    db: Database,
    name: str,
    *,
    birthday: tuple[int, int] | None = None,
    hired: date | None = None,
    timezone: str | None = None,
    department: str = "Engineering",
) -> int:
    return await add_member(
        db, name, timezone=timezone, department=department, birthday=birthday, hired=hired
    )


async def _rule_reward(db: Database, reward_id: int, rules: list[Any], **fields: Any) -> int:
    return await add_reward(
        db,
        reward_id=reward_id,
        reward_type=fields.pop("reward_type", "Achievement Badge"),
        rules=rules,
        **fields,
    )


async def _awards(db: Database, reward_id: int | None = None) -> list[tuple[int, int]]:
    """(reward id, member id) of every award, in award order."""
    query = select(Award.reward_id, Award.member_id).order_by(Award.id)  # type: ignore[arg-type]
    if reward_id is not None:
        query = query.where(Award.reward_id == reward_id)  # type: ignore[arg-type]
    async with db.read() as session:
        return [(int(r), int(m)) for r, m in (await session.execute(query)).all()]


async def _announcements(db: Database) -> list[Announcement]:
    async with db.read() as session:
        return list((await session.scalars(select(Announcement).order_by(Announcement.id))).all())  # type: ignore[arg-type]


async def _streak(db: Database, member_id: int, days: int, until: date) -> None:
    for back in range(days):
        moment = datetime.combine(until - timedelta(days=back), datetime.min.time(), UTC)
        await record_activity(db, member_id, moment + timedelta(hours=12), None)


async def test_a_birthday_is_awarded_announced_and_never_twice(
    database: Database, clock: FixedClock
) -> None:
    core = _core(database, clock)
    ana = await _person(database, "Ana", birthday=(11, 18))
    await _person(database, "Bo", birthday=(11, 19))
    await _rule_reward(
        database,
        9001,
        [["Birthday"]],
        reward="Happy Birthday!",
        points=50,
        multiple=True,
        message="Happy birthday {{user.display_name}}!",
    )

    report = await evaluate_reward(core, 9001, now=NOW, run_key="manual-1")

    assert report.awarded_ids == [ana]
    assert report.awarded[0].message == "Happy birthday Ana!"
    [announcement] = await _announcements(database)
    assert announcement.kind == "birthday"
    assert announcement.title == "Happy Birthday!"
    assert [item["member_id"] for item in announcement.payload["items"]] == [ana]
    async with database.read() as session:
        points = await session.scalar(
            select(func.sum(LedgerEntry.points)).where(LedgerEntry.member_id == ana)  # type: ignore[arg-type]
        )
    assert points == 50

    for run_key in ("manual-1", "manual-2"):  # same run and another run the same day
        again = await evaluate_reward(core, 9001, now=NOW + timedelta(hours=1), run_key=run_key)
        assert again.awarded == []
        assert [m for m, _ in again.skipped] == [ana]
        assert again.announcement_id is None
    assert await _awards(database) == [(9001, ana)]
    assert len(await _announcements(database)) == 1


async def test_a_birthday_comes_back_next_year_once_per_birthday(
    database: Database, clock: FixedClock
) -> None:
    core = _core(database, clock)
    ana = await _person(database, "Ana", birthday=(11, 18))
    await _rule_reward(database, 1, [["Birthday"]], multiple=True)
    await _rule_reward(database, 2, [["Birthday"]])  # multiple omitted, as in the seed
    for reward_id in (1, 2):
        assert (await evaluate_reward(core, reward_id, now=NOW, run_key="a")).awarded_ids == [ana]
        again = await evaluate_reward(core, reward_id, now=NOW, run_key="a2")
        assert again.awarded == []

    next_year = NOW.replace(year=2027)
    clock.set(next_year)
    for reward_id in (1, 2):
        report = await evaluate_reward(core, reward_id, now=next_year, run_key="b")
        assert report.awarded_ids == [ana]


async def test_work_anniversary_of_a_29_february_hire_in_a_common_year(
    database: Database, clock: FixedClock
) -> None:
    leap = await _person(database, "Leap", hired=date(2024, 2, 29))
    await _person(database, "March", hired=date(2024, 3, 1))
    await _rule_reward(database, 3, [["WorkAnniversary", {"years": 3}]])
    moment = datetime(2027, 2, 28, 15, tzinfo=UTC)
    clock.set(moment)
    report = await evaluate_reward(_core(database, clock), 3, now=moment, run_key="x")
    assert report.awarded_ids == [leap]
    assert report.candidates[0].args["years_employed"] == 3
    [announcement] = await _announcements(database)
    assert announcement.kind == "anniversary"


async def test_two_rules_are_anded_and_their_args_merged(
    database: Database, clock: FixedClock
) -> None:
    both = await _person(database, "Both", birthday=(11, 18))
    only_birthday = await _person(database, "Cake", birthday=(11, 18))
    only_streak = await _person(database, "Streak")
    for member_id in (both, only_streak):
        await _streak(database, member_id, 3, NOW.date())
    await _rule_reward(
        database,
        4,
        [
            ["Birthday"],
            [
                "AchievementRule",
                {"function_path": "rewards.functions.engagement.get_login_streak", "threshold": 3},
            ],
        ],
        message="{{args.birthday}} streak {{args.value}}",
    )

    report = await evaluate_reward(_core(database, clock), 4, now=NOW, run_key="r")

    assert [c.member_id for c in report.candidates] == [both]
    assert report.candidates[0].key == "birthday:2026+achievement:2026-11"
    assert report.awarded[0].message == "2026-11-18 streak 3"
    assert only_birthday not in report.awarded_ids
    assert await _awards(database) == [(4, both)]


async def test_a_draw_combined_with_a_rule_draws_among_those_passing_it(
    database: Database, clock: FixedClock
) -> None:
    birthday_people = [await _person(database, f"B{i}", birthday=(11, 18)) for i in range(3)]
    for i in range(10):
        await _person(database, f"Other{i}")
    await _rule_reward(
        database,
        5,
        [["Birthday"], ["RandomUsers", {"count": 2}]],
        reward_type="Computed Badge",
        job={"trigger": "cron", "cron": {"hour": 16}},
    )

    report = await evaluate_reward(
        _core(database, clock), 5, now=NOW, run_key="job5:2026-11-18T16:00"
    )

    assert len(report.awarded_ids) == 2
    assert set(report.awarded_ids) <= set(birthday_people)
    assert report.draw_run_id is not None
    checked = await verify(database, report.draw_run_id)
    assert checked is not None and checked.matches and checked.eligible_hash_matches
    assert checked.current_eligible_count == 3
    [announcement] = await _announcements(database)
    assert announcement.kind == "lottery"


async def test_the_same_run_key_never_draws_twice_and_a_new_one_draws_again(
    database: Database, clock: FixedClock
) -> None:
    core = _core(database, clock)
    for i in range(5):
        await _person(database, f"P{i}")
    await _rule_reward(
        database,
        6,
        [["RandomUsers", {"count": 1}]],
        reward_type="Computed Badge",
        multiple=True,
        job={"trigger": "cron", "cron": {"hour": 16}},
    )
    first = await evaluate_reward(core, 6, now=NOW, run_key="daily:2026-11-18T16:00")
    again = await evaluate_reward(core, 6, now=NOW, run_key="daily:2026-11-18T16:00")
    assert again.draw_run_id == first.draw_run_id
    assert again.awarded == [] and again.announcement_id is None
    clock.advance(timedelta(days=1))
    later = await evaluate_reward(
        core, 6, now=NOW + timedelta(days=1), run_key="daily:2026-11-19T16:00"
    )
    assert later.draw_run_id != first.draw_run_id
    assert len(later.awarded) == 1
    async with database.read() as session:
        keys = set((await session.scalars(select(LotteryRun.draw_key))).all())
    assert keys == {"6:daily:2026-11-18T16:00", "6:daily:2026-11-19T16:00"}
    assert len(await _announcements(database)) == 2


async def test_recent_winners_and_holders_of_a_once_only_reward_are_not_drawn(
    database: Database, clock: FixedClock
) -> None:
    core = _core(database, clock)
    members = [await _person(database, f"P{i}") for i in range(2)]
    job = {"trigger": "cron", "cron": {"hour": 16}}
    await _rule_reward(
        database,
        7,
        [["RandomUsers", {"count": 1, "exclude_recent_winners": True, "recent_winner_days": 7}]],
        reward_type="Computed Badge",
        multiple=True,
        job=job,
    )
    await _rule_reward(
        database, 8, [["RandomUsers", {"count": 1}]], reward_type="Computed Badge", job=job
    )
    for reward_id in (7, 8):
        winners = []
        for day in range(2):
            moment = NOW + timedelta(days=day)
            clock.set(moment)
            report = await evaluate_reward(core, reward_id, now=moment, run_key=f"d{day}")
            winners += report.awarded_ids
        assert sorted(winners) == members  # the second draw could only pick the other one
        clock.set(NOW)


async def test_lottery_filters_limit_the_population(database: Database, clock: FixedClock) -> None:
    sales = [await _person(database, f"S{i}", department="Sales") for i in range(3)]
    for i in range(5):
        await _person(database, f"E{i}")
    await _rule_reward(
        database,
        9,
        [["RandomUsers", {"count": 3, "filters": {"departments": ["Sales"]}}]],
        reward_type="Computed Badge",
        job={"trigger": "cron", "cron": {"hour": 16}},
    )
    report = await evaluate_reward(_core(database, clock), 9, now=NOW, run_key="r")
    assert sorted(report.awarded_ids) == sales


async def test_a_reward_without_rules_has_nothing_to_evaluate(
    database: Database, clock: FixedClock
) -> None:
    await add_member(database, "Ana")
    await add_reward(database, reward_id=10, reward="Plain")
    report = await evaluate_reward(_core(database, clock), 10, now=NOW, run_key="r")
    assert report.note == "Plain has no rules, so there is nothing to evaluate."
    assert report.candidates == [] and report.awarded == []


async def test_sweep_covers_rule_rewards_without_a_job_only(
    database: Database, clock: FixedClock
) -> None:
    ana = await _person(database, "Ana", birthday=(11, 18))
    await _rule_reward(database, 11, [["Birthday"]])  # swept
    await _rule_reward(
        database,
        12,
        [["Birthday"]],
        reward_type="Computed Badge",
        job={"trigger": "cron", "cron": {"hour": 16}},
    )  # its job runs it
    await _rule_reward(database, 13, [["Birthday"]], enabled=False)  # switched off
    await add_reward(database, reward_id=14, reward_type="Automated Badge")  # events, not rules
    broken = {"function_path": "tests.support.functions.missing_table", "threshold": 1}
    await _rule_reward(database, 15, [["AchievementRule", broken]])  # its table does not exist

    core = _core(database, clock, function_modules=("tests.support.functions",))
    reports = await sweep(core, now=NOW)

    assert [r.reward_id for r in reports] == [11, 15]
    assert reports[0].awarded_ids == [ana]
    assert reports[0].run_key == "sweep:2026-11-18"
    assert reports[1].error is not None and reports[1].awarded == []
    assert await _awards(database) == [(11, ana)]


async def test_hourly_sweeps_celebrate_each_zone_on_its_own_date_once(
    database: Database, clock: FixedClock
) -> None:
    """Acceptance: Auckland and New York birthdays on 19 November, swept every hour for 48 h."""
    core = _core(database, clock)
    auckland = await _person(
        database, "Aroha", birthday=(11, 19), timezone="Pacific/Auckland"
    )  # UTC+13: 19 Nov is 2026-11-18 11:00 to 2026-11-19 11:00 UTC
    new_york = await _person(
        database, "Nina", birthday=(11, 19), timezone="America/New_York"
    )  # UTC-5: 19 Nov is 2026-11-19 05:00 to 2026-11-20 05:00 UTC
    await _person(database, "Not Today", birthday=(11, 21), timezone="Pacific/Auckland")
    await _rule_reward(database, 9001, [["Birthday"]], reward="Happy Birthday!", multiple=True)

    start = datetime(2026, 11, 18, 0, 30, tzinfo=UTC)
    awarded_at: dict[int, datetime] = {}
    for hour in range(48):
        moment = start + timedelta(hours=hour)
        clock.set(moment)
        for report in await sweep(core, now=moment):
            for member_id in report.awarded_ids:
                assert member_id not in awarded_at
                awarded_at[member_id] = moment

    assert awarded_at == {
        auckland: datetime(2026, 11, 18, 11, 30, tzinfo=UTC),
        new_york: datetime(2026, 11, 19, 5, 30, tzinfo=UTC),
    }
    assert await _awards(database) == [(9001, auckland), (9001, new_york)]
    announced = await _announcements(database)
    assert [[i["member_id"] for i in a.payload["items"]] for a in announced] == [
        [auckland],
        [new_york],
    ]
    assert {a.kind for a in announced} == {"birthday"}


class _Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""


async def test_winners_awarded_by_a_run_that_crashed_before_announcing_are_announced_by_the_next(
    database: Database, clock: FixedClock, monkeypatch: Any
) -> None:
    # The winners' awards commit, then the process dies before the announcement is recorded;
    # the takeover re-run finds the awards taken (it awards nobody) and still announces them.
    import rewards.rules.evaluate as evaluate

    core = _core(database, clock)
    for i in range(6):
        await _person(database, f"P{i}")
    await _rule_reward(
        database,
        9,
        [["RandomUsers", {"count": 2}]],
        reward_type="Computed Badge",
        multiple=True,
        job={"trigger": "cron", "cron": {"hour": 16}},
    )

    async def crash(*args: Any, **kwargs: Any) -> None:
        raise _Crash("after the awards, before the announcement")

    run_key = "daily:2026-11-18T16:00"
    monkeypatch.setattr(evaluate, "_announce", crash)
    try:
        await evaluate_reward(core, 9, now=NOW, run_key=run_key)
    except _Crash:
        pass
    else:  # pragma: no cover - the hook did not fire
        raise AssertionError("the crash point was not reached")
    monkeypatch.undo()
    winners = [member for _, member in await _awards(database, 9)]
    assert len(winners) == 2 and await _announcements(database) == []

    again = await evaluate_reward(core, 9, now=NOW, run_key=run_key)
    assert again.awarded == [] and again.announcement_id is not None
    [announcement] = await _announcements(database)
    assert sorted(item["member_id"] for item in announcement.payload["items"]) == sorted(winners)
    assert announcement.payload["run_key"] == run_key
    # Announced once: a third run finds nothing left to announce.
    third = await evaluate_reward(core, 9, now=NOW, run_key=run_key)
    assert third.announcement_id is None and len(await _announcements(database)) == 1

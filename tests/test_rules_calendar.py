"""Birthday, WorkAnniversary and EmploymentDuration evaluators, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from rewards.catalog.rules import EmploymentDuration, WorkAnniversary
from rewards.rules.base import EvalContext
from rewards.rules.calendar import (
    birthdays,
    employment_anniversaries,
    observed_day,
    work_anniversaries,
)
from rewards.settings import Settings
from rewards.store.db import Database
from tests.factories import add_member, add_reward


async def _member(
    db: Database,
    name: str,
    *,
    birthday: tuple[int, int] | None = None,
    hired: date | None = None,
    timezone: str | None = None,
    active: bool = True,
    celebrations_opt_out: bool = False,
) -> int:
    return await add_member(
        db,
        name,
        timezone=timezone,
        active=active,
        birthday=birthday,
        hired=hired,
        celebrations_opt_out=celebrations_opt_out,
    )


async def _ctx(db: Database, now: datetime, timezone: str = "UTC") -> EvalContext:
    reward_id = await add_reward(db, reward_id=1)
    return EvalContext(db=db, now=now, settings=Settings(timezone=timezone), reward_id=reward_id)


def test_observed_day_moves_29_february_only_in_common_years() -> None:
    assert observed_day(2, 29, 2027) == (2, 28)
    assert observed_day(2, 29, 2028) == (2, 29)
    assert observed_day(3, 1, 2027) == (3, 1)


async def test_birthdays_follow_each_members_own_zone(database: Database) -> None:
    # 2026-03-14 12:00 UTC: already 15 March (01:00) in Auckland, still 14 March in New York.
    auckland = await _member(database, "Aroha", birthday=(3, 15), timezone="Pacific/Auckland")
    new_york = await _member(database, "Nina", birthday=(3, 14), timezone="America/New_York")
    await _member(database, "Too Early", birthday=(3, 15), timezone="America/New_York")
    await _member(database, "Too Late", birthday=(3, 14), timezone="Pacific/Auckland")
    utc_member = await _member(database, "Uma", birthday=(3, 14))  # organisation zone: UTC
    ctx = await _ctx(database, datetime(2026, 3, 14, 12, 0, tzinfo=UTC))

    found = await birthdays(ctx)

    assert [c.member_id for c in found] == [auckland, new_york, utc_member]
    assert {c.key for c in found} == {"birthday:2026"}
    assert found[0].args == {"birthday": "2026-03-15"}
    assert found[1].args == {"birthday": "2026-03-14"}


async def test_birthday_uses_the_organisation_zone_when_the_member_has_none(
    database: Database,
) -> None:
    member = await _member(database, "Kiri", birthday=(3, 15))
    ctx = await _ctx(database, datetime(2026, 3, 14, 12, 0, tzinfo=UTC), "Pacific/Auckland")
    assert [c.member_id for c in await birthdays(ctx)] == [member]


async def test_29_february_is_celebrated_on_28_february_in_a_common_year(
    database: Database,
) -> None:
    leapling = await _member(database, "Leap", birthday=(2, 29))
    born_28 = await _member(database, "Eight", birthday=(2, 28))
    ctx = await _ctx(database, datetime(2027, 2, 28, 12, 0, tzinfo=UTC))
    assert [c.member_id for c in await birthdays(ctx)] == [leapling, born_28]
    ctx_march = EvalContext(database, datetime(2027, 3, 1, 12, 0, tzinfo=UTC), ctx.settings, 1)
    assert await birthdays(ctx_march) == []


async def test_29_february_is_celebrated_on_29_february_in_a_leap_year(
    database: Database,
) -> None:
    leapling = await _member(database, "Leap", birthday=(2, 29))
    born_28 = await _member(database, "Eight", birthday=(2, 28))
    ctx_28 = await _ctx(database, datetime(2028, 2, 28, 12, 0, tzinfo=UTC))
    assert [c.member_id for c in await birthdays(ctx_28)] == [born_28]
    ctx_29 = EvalContext(database, datetime(2028, 2, 29, 12, 0, tzinfo=UTC), ctx_28.settings, 1)
    found = await birthdays(ctx_29)
    assert [c.member_id for c in found] == [leapling]
    assert found[0].key == "birthday:2028"


async def test_opted_out_and_inactive_members_are_skipped(database: Database) -> None:
    kept = await _member(database, "Kept", birthday=(11, 18), hired=date(2020, 11, 18))
    await _member(database, "Quiet", birthday=(11, 18), celebrations_opt_out=True)
    await _member(database, "Gone", birthday=(11, 18), hired=date(2020, 11, 18), active=False)
    await _member(database, "Quiet Hire", hired=date(2020, 11, 18), celebrations_opt_out=True)
    ctx = await _ctx(database, datetime(2026, 11, 18, 15, 0, tzinfo=UTC))
    assert [c.member_id for c in await birthdays(ctx)] == [kept]
    assert [c.member_id for c in await employment_anniversaries(ctx, EmploymentDuration())] == [
        kept
    ]


async def test_work_anniversary_is_the_exact_anniversary_day(database: Database) -> None:
    five = await _member(database, "Five", hired=date(2021, 11, 18))
    await _member(database, "Six", hired=date(2020, 11, 18))  # 6 years: not the 5th
    await _member(database, "Day Before", hired=date(2021, 11, 17))  # past it: not today
    await _member(database, "Hired Today", hired=date(2026, 11, 18))  # 0 years
    ctx = await _ctx(database, datetime(2026, 11, 18, 15, 0, tzinfo=UTC))

    found = await work_anniversaries(ctx, WorkAnniversary(years=5))

    assert [c.member_id for c in found] == [five]
    assert found[0].key == "anniversary:5"
    assert found[0].args["years_employed"] == 5
    later = EvalContext(database, datetime(2026, 11, 19, 15, 0, tzinfo=UTC), ctx.settings, 1)
    assert await work_anniversaries(later, WorkAnniversary(years=5)) == []


async def test_employment_anniversaries_every_year_or_only_the_given_one(
    database: Database,
) -> None:
    one = await _member(database, "One", hired=date(2025, 11, 18))
    three = await _member(database, "Three", hired=date(2023, 11, 18))
    await _member(database, "New", hired=date(2026, 11, 18))
    await _member(database, "Other Day", hired=date(2023, 5, 2))
    await _member(database, "No Date")
    ctx = await _ctx(database, datetime(2026, 11, 18, 15, 0, tzinfo=UTC))

    every = await employment_anniversaries(ctx, EmploymentDuration())
    assert [(c.member_id, c.key, c.args["years_employed"]) for c in every] == [
        (one, "anniversary:1", 1),
        (three, "anniversary:3", 3),
    ]
    only_three = await employment_anniversaries(ctx, EmploymentDuration(years=3))
    assert [c.member_id for c in only_three] == [three]
    assert only_three[0].args["hire_date"] == "2023-11-18"


async def test_anniversary_of_a_29_february_hire(database: Database) -> None:
    leap_hire = await _member(database, "Leap Hire", hired=date(2024, 2, 29))
    common = await _ctx(database, datetime(2027, 2, 28, 12, 0, tzinfo=UTC))
    found = await employment_anniversaries(common, EmploymentDuration())
    assert [(c.member_id, c.args["years_employed"]) for c in found] == [(leap_hire, 3)]
    leap_28 = EvalContext(database, datetime(2028, 2, 28, 12, 0, tzinfo=UTC), common.settings, 1)
    assert await employment_anniversaries(leap_28, EmploymentDuration()) == []
    leap_29 = EvalContext(database, datetime(2028, 2, 29, 12, 0, tzinfo=UTC), common.settings, 1)
    found = await work_anniversaries(leap_29, WorkAnniversary(years=4))
    assert [c.member_id for c in found] == [leap_hire]


async def test_anniversary_in_the_members_zone(database: Database) -> None:
    # 2026-03-14 12:00 UTC is 15 March in Auckland.
    auckland = await _member(
        database, "Aroha", hired=date(2020, 3, 15), timezone="Pacific/Auckland"
    )
    await _member(database, "Nina", hired=date(2020, 3, 15), timezone="America/New_York")
    ctx = await _ctx(database, datetime(2026, 3, 14, 12, 0, tzinfo=UTC))
    found = await employment_anniversaries(ctx, EmploymentDuration(years=6))
    assert [c.member_id for c in found] == [auckland]


async def _policy_ctx(db: Database, now: datetime, policy: str) -> EvalContext:
    return EvalContext(db=db, now=now, settings=Settings(weekend_policy=policy), reward_id=1)


async def test_weekend_birthdays_move_to_the_friday_before(database: Database) -> None:
    # 2026-11-21 is a Saturday and 2026-11-22 a Sunday.
    saturday = await _member(database, "Sat", birthday=(11, 21))
    sunday = await _member(database, "Sun", birthday=(11, 22))
    friday = await _member(database, "Fri", birthday=(11, 20))
    await add_reward(database, reward_id=1)
    on_friday = await _policy_ctx(database, datetime(2026, 11, 20, 12, tzinfo=UTC), "friday_before")

    found = await birthdays(on_friday)

    assert [c.member_id for c in found] == [saturday, sunday, friday]
    assert {c.key for c in found} == {"birthday:2026"}
    assert found[0].args == {"birthday": "2026-11-21", "celebrated_on": "2026-11-20"}
    assert found[2].args == {"birthday": "2026-11-20"}
    for day in (21, 22):
        weekend = await _policy_ctx(
            database, datetime(2026, 11, day, 12, tzinfo=UTC), "friday_before"
        )
        assert await birthdays(weekend) == []
    on_day = await _policy_ctx(database, datetime(2026, 11, 21, 12, tzinfo=UTC), "on_day")
    assert [c.member_id for c in await birthdays(on_day)] == [saturday]


async def test_weekend_birthdays_move_to_the_monday_after(database: Database) -> None:
    saturday = await _member(database, "Sat", birthday=(11, 21))
    sunday = await _member(database, "Sun", birthday=(11, 22))
    monday = await _member(database, "Mon", birthday=(11, 23))
    await add_reward(database, reward_id=1)
    on_monday = await _policy_ctx(database, datetime(2026, 11, 23, 12, tzinfo=UTC), "monday_after")
    assert [c.member_id for c in await birthdays(on_monday)] == [saturday, sunday, monday]
    sunday_ctx = await _policy_ctx(database, datetime(2026, 11, 22, 12, tzinfo=UTC), "monday_after")
    assert await birthdays(sunday_ctx) == []


async def test_29_february_standing_in_on_a_sunday_moves_with_the_weekend(
    database: Database,
) -> None:
    # 2027 is a common year and 28 February 2027 is a Sunday.
    leapling = await _member(database, "Leap", birthday=(2, 29))
    await add_reward(database, reward_id=1)
    friday = await _policy_ctx(database, datetime(2027, 2, 26, 12, tzinfo=UTC), "friday_before")
    found = await birthdays(friday)
    assert [(c.member_id, c.key) for c in found] == [(leapling, "birthday:2027")]
    assert found[0].args == {"birthday": "2027-02-28", "celebrated_on": "2027-02-26"}
    monday = await _policy_ctx(database, datetime(2027, 3, 1, 12, tzinfo=UTC), "monday_after")
    assert [c.member_id for c in await birthdays(monday)] == [leapling]
    sunday = await _policy_ctx(database, datetime(2027, 2, 28, 12, tzinfo=UTC), "monday_after")
    assert await birthdays(sunday) == []


async def test_a_moved_celebration_keeps_the_occurrence_year_across_new_year(
    database: Database,
) -> None:
    # 1 January 2028 is a Saturday: with friday_before it is celebrated on 31 December 2027,
    # and it is the 2028 birthday and the 5th anniversary of a 1 January 2023 hire.
    member = await _member(database, "Jan", birthday=(1, 1), hired=date(2023, 1, 1))
    await add_reward(database, reward_id=1)
    eve = await _policy_ctx(database, datetime(2027, 12, 31, 12, tzinfo=UTC), "friday_before")
    assert [c.key for c in await birthdays(eve)] == ["birthday:2028"]
    found = await work_anniversaries(eve, WorkAnniversary(years=5))
    assert [(c.member_id, c.key) for c in found] == [(member, "anniversary:5")]
    assert found[0].args["anniversary"] == "2028-01-01"
    new_year = await _policy_ctx(database, datetime(2028, 1, 1, 12, tzinfo=UTC), "friday_before")
    assert await birthdays(new_year) == []

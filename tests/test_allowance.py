"""The giving allowance: per giver and period, reset at the giver's own midnight, one unit per
receiver, never overspent under concurrency, refused with what is left and when it resets."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rewards.clock import FixedClock
from rewards.economy.allowance import AllowanceSpent, current_period
from rewards.services import ledger
from rewards.services.kudos import KudosService
from rewards.settings import Settings, SettingsError, load_settings
from rewards.store.db import Database
from rewards.store.models import Kudos, KudosAllowance, LedgerEntry
from tests.factories import add_member
from tests.test_slack import LI, slack_app
from tests.test_turn_cost import recording


def allowance_settings(**fields: object) -> Settings:
    return Settings(kudos_points=1, kudos_allowance=5, **fields)  # type: ignore[arg-type]


async def given(db: Database) -> tuple[int, int]:
    """(kudos, points credited): what was written."""
    async with db.read() as session:
        kudos = await session.scalar(select(func.count()).select_from(Kudos))
        points = await session.scalar(select(func.coalesce(func.sum(LedgerEntry.points), 0)))
    return int(kudos or 0), int(points or 0)


def test_the_settings_are_read_and_checked() -> None:
    settings = load_settings(
        {
            "KUDOS_ALLOWANCE": "5",
            "KUDOS_ALLOWANCE_PERIOD": "Week",
            "KUDOS_ALLOWANCE_OVERRIDES": "Job_Code:MANAGER = Unlimited; group:interns=3",
            "KUDOS_REQUIRE_TAG": "yes",
            "KUDOS_TAGS": "closed",
        },
        env_file=Path("/nonexistent"),
    )
    assert (settings.kudos_allowance, settings.kudos_allowance_period) == (5, "week")
    assert settings.kudos_allowance_overrides == ("job_code:MANAGER=unlimited", "group:interns=3")
    assert settings.kudos_require_tag and settings.kudos_tags == "closed"
    default = load_settings({}, env_file=Path("/nonexistent"))
    assert default.kudos_allowance is None and not default.kudos_require_tag
    assert default.kudos_tags == "open" and default.kudos_allowance_period == "day"
    for name, value, message in (
        ("KUDOS_ALLOWANCE", "lots", "KUDOS_ALLOWANCE must be a whole number, got 'lots'"),
        ("KUDOS_ALLOWANCE", "-1", "KUDOS_ALLOWANCE must be between 0 and 1000000, got -1"),
        ("KUDOS_ALLOWANCE_PERIOD", "year", "KUDOS_ALLOWANCE_PERIOD must be one of day, week"),
        ("KUDOS_ALLOWANCE_OVERRIDES", "role:boss=1", "KUDOS_ALLOWANCE_OVERRIDES rules look like"),
        ("KUDOS_ALLOWANCE_OVERRIDES", "group:a=many", "KUDOS_ALLOWANCE_OVERRIDES (group:a) must"),
        ("KUDOS_TAGS", "shut", "KUDOS_TAGS must be one of open, closed, got 'shut'"),
    ):
        with pytest.raises(SettingsError, match=f"^{re.escape(message)}"):
            load_settings({name: value}, env_file=Path("/nonexistent"))


def test_periods_start_at_local_midnight_and_weeks_on_monday() -> None:
    # Wednesday 2026-11-18 10:00 UTC: 23:00 in Auckland (UTC+13), 05:00 in New York (UTC-5).
    now = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
    auckland = current_period("day", "Pacific/Auckland", "UTC", now)
    new_york = current_period("day", "America/New_York", "UTC", now)
    assert auckland.key == "day:2026-11-18" and auckland.resets_at == now + timedelta(hours=1)
    assert new_york.key == "day:2026-11-18" and new_york.resets_at == now + timedelta(hours=19)
    week = current_period("week", None, "Europe/Madrid", now)
    assert week.key == "week:2026-11-16"  # Monday
    assert week.resets_at == datetime(2026, 11, 22, 23, 0, tzinfo=UTC)  # Monday 00:00 in Madrid
    month = current_period("month", "UTC", "UTC", datetime(2026, 12, 31, 23, 0, tzinfo=UTC))
    assert month.key == "month:2026-12-01" and month.resets_at == datetime(2027, 1, 1, tzinfo=UTC)


async def test_auckland_and_new_york_givers_reset_at_their_own_midnight(
    database: Database,
) -> None:
    clock = FixedClock(datetime(2026, 11, 18, 10, 0, tzinfo=UTC))
    kiri = await add_member(database, "Kiri", timezone="Pacific/Auckland")
    dana = await add_member(database, "Dana", timezone="America/New_York")
    ana = await add_member(database, "Ana")
    service = KudosService(database, Settings(kudos_points=1, kudos_allowance=2), clock)
    for giver in (kiri, dana):
        for _ in range(2):
            await service.give(giver, [ana], "thanks")
    with pytest.raises(AllowanceSpent) as kiri_refused:
        await service.give(kiri, [ana], "once more")
    assert str(kiri_refused.value) == "You have 0 of 2 kudos left today; it resets in 1 h."
    with pytest.raises(AllowanceSpent) as dana_refused:
        await service.give(dana, [ana], "once more")
    assert str(dana_refused.value) == "You have 0 of 2 kudos left today; it resets in 19 h."

    clock.advance(timedelta(hours=1))  # midnight in Auckland, 06:00 in New York
    view = await service.give(kiri, [ana], "a new day")
    assert view.allowance is not None and view.allowance.describe(clock.now()) == (
        "1 of 2 today, resets in 24 h"
    )
    with pytest.raises(AllowanceSpent, match="0 of 2 kudos left today; it resets in 18 h"):
        await service.give(dana, [ana], "still yesterday's allowance")
    assert await given(database) == (5, 5)
    left = await service.allowance_left(dana, clock.now())
    assert left is not None and (left.used, left.left) == (2, 0)


async def test_a_three_receiver_kudos_costs_three_and_a_refusal_writes_nothing(
    database: Database, clock: FixedClock
) -> None:
    giver = await add_member(database, "Ana")
    team = [await add_member(database, name) for name in ("Li", "Bob", "Cy", "Dee", "Eve", "Fay")]
    service = KudosService(database, allowance_settings(), clock)
    view = await service.give(giver, team[:3], "great launch")
    assert view.allowance is not None and view.allowance.left == 2
    before = await given(database)
    with pytest.raises(AllowanceSpent) as refused:
        await service.give(giver, team[3:], "and you three")
    assert str(refused.value) == (
        "Kudos to 3 people use 3 of your allowance. "
        "You have 2 of 5 kudos left today; it resets in 9 h."
    )
    assert await given(database) == before == (1, 3)
    await service.give(giver, team[3:5], "you two, then")
    assert await given(database) == (2, 5)
    async with database.read() as session:
        row = await session.get(KudosAllowance, giver)
    assert row is not None and (row.period, row.used) == ("day:2026-11-18", 5)
    assert await ledger.balance(database, team[5]) == 0


async def test_overrides_by_role_group_and_department(
    database: Database, clock: FixedClock
) -> None:
    boss = await add_member(database, "Boss", job_code="MANAGER")
    intern = await add_member(database, "Ina", groups=("Interns",))
    seller = await add_member(database, "Sam", department="Sales")
    ana = await add_member(database, "Ana")
    settings = Settings.model_validate(
        {
            "KUDOS_POINTS": "1",
            "KUDOS_ALLOWANCE": "5",
            "KUDOS_ALLOWANCE_PERIOD": "week",
            "KUDOS_ALLOWANCE_OVERRIDES": "job_code:manager=unlimited, group:interns=1, "
            "department:Sales=2",
        }
    )
    service = KudosService(database, settings, clock)
    for _ in range(7):
        assert (await service.give(boss, [ana], "thanks")).allowance is None
    assert await service.allowance_left(boss, clock.now()) is None
    await service.give(intern, [ana], "thanks")
    # Wednesday 15:00 UTC: the week resets on Monday at midnight (UTC here), in 4 days 9 h.
    with pytest.raises(AllowanceSpent, match="0 of 1 kudos left this week; it resets in 4 days"):
        await service.give(intern, [ana], "again")
    with pytest.raises(AllowanceSpent, match=r"use 3 of your allowance\. You have 2 of 2"):
        await service.give(seller, [ana, boss, intern], "all of you")


async def test_fifty_concurrent_kudos_from_one_giver_give_exactly_the_allowance(
    database: Database, clock: FixedClock
) -> None:
    giver = await add_member(database, "Ana")
    receivers = [await add_member(database, f"R{n}") for n in range(5)]
    service = KudosService(database, allowance_settings(), clock)

    async def one(n: int) -> object:
        try:
            return await service.give(giver, [receivers[n % 5]], f"thanks #{n}")
        except AllowanceSpent as refused:
            return refused

    outcomes = await asyncio.gather(*(one(n) for n in range(50)))
    refusals = [o for o in outcomes if isinstance(o, AllowanceSpent)]
    assert len(refusals) == 45
    assert all("0 of 5 kudos left today" in str(r) for r in refusals)
    assert await given(database) == (5, 5)


async def test_the_allowance_adds_one_statement_and_none_when_unlimited(
    database: Database, clock: FixedClock
) -> None:
    giver = await add_member(database, "Ana")
    li = await add_member(database, "Li")
    counted = {}
    for label, settings in (
        ("unlimited", Settings(kudos_points=1)),
        ("limited", allowance_settings()),
    ):
        service = KudosService(database, settings, clock)
        await service.give(giver, [li], "warm-up")  # compiled statements, cached look-ups
        with recording(database) as seen:
            await service.give(giver, [li], "counted")
        counted[label] = len(seen.statements)
        assert seen.commits == 1
        assert not seen.compiled  # the upsert is compiled once per process, like the others
    assert counted["limited"] == counted["unlimited"] + 1


async def test_slack_refuses_a_kudos_beyond_the_allowance_and_me_shows_what_is_left(
    database: Database,
) -> None:
    async with slack_app(database, kudos_points=1, kudos_allowance=1) as slack:
        await slack.command("/kudos", f"<@{LI}> great demo #teamwork")
        [posted] = slack.api.public()
        assert "allowance left: 0 of 1 today, resets in" in json.dumps(posted)
        response = await slack.post(
            slack.command_body("/kudos", f"<@{LI}> one more"), "application/x-www-form-urlencoded"
        )
        said = json.dumps(json.loads(await response.text()))
        assert "You have 0 of 1 kudos left today; it resets in" in said
        assert len(slack.api.public()) == 1
        async with database.read() as session:
            assert await session.scalar(select(func.count()).select_from(Kudos)) == 1
        await slack.command("/myrewards")
        mine = slack.api.of("response_url")[0]
        assert "Allowance left" in json.dumps(mine) and "0 of 1 today" in json.dumps(mine)

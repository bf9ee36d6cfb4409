"""AttendanceRule: windows in the organisation's zone, perfect and partial matches, the import."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bots.commands.attendance import attendance as attendance_cli
from rewards.catalog.rules import AttendanceRule
from rewards.clock import FixedClock
from rewards.rules.attendance import (
    add_months,
    attendance,
    attendance_window,
    expected_days,
    upsert_attendance,
    weekend_days,
)
from rewards.rules.base import Candidate, EvalContext
from rewards.settings import Settings
from rewards.store.db import Database
from tests.factories import add_member
from tests.support.cli_db import cli_environment, prepare_members

DATASET = "employee_attendance"


def _rule(**fields: Any) -> AttendanceRule:
    return AttendanceRule(**fields)


def _days(start: date, end: date, *, weekdays: bool = False) -> list[date]:
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return [d for d in days if d.weekday() < 5] if weekdays else days


async def _attend(
    db: Database, member: int, days: list[date], *, present: bool = True, dataset: str = DATASET
) -> None:
    await upsert_attendance(db, dataset, [(member, d, present) for d in days])


async def _judge(
    db: Database, now: datetime, rule: AttendanceRule, tz: str = "UTC"
) -> dict[int, Candidate]:
    ctx = EvalContext(db=db, now=now, settings=Settings(timezone=tz), reward_id=1)
    return {c.member_id: c for c in await attendance(ctx, rule)}


# --- windows (pure) -----------------------------------------------------------------------------

WED = date(2026, 11, 18)


@pytest.mark.parametrize(
    ("fields", "today", "window"),
    [
        ({"count": 1, "unit": "month"}, WED, (date(2026, 10, 1), date(2026, 10, 31))),
        ({"count": 2, "unit": "month"}, WED, (date(2026, 9, 1), date(2026, 10, 31))),
        ({"count": 1, "unit": "month"}, date(2027, 1, 1), (date(2026, 12, 1), date(2026, 12, 31))),
        ({"count": 1, "unit": "week"}, WED, (date(2026, 11, 9), date(2026, 11, 15))),
        ({"count": 2, "unit": "week"}, WED, (date(2026, 11, 2), date(2026, 11, 15))),
        ({"count": 3, "unit": "day"}, WED, (date(2026, 11, 15), date(2026, 11, 17))),
        (
            {"count": 3, "unit": "day", "period_type": "rolling"},
            WED,
            (date(2026, 11, 15), date(2026, 11, 17)),
        ),
        (
            {"count": 1, "unit": "week", "period_type": "rolling"},
            WED,
            (date(2026, 11, 11), date(2026, 11, 17)),
        ),
        (
            {"count": 1, "unit": "month", "period_type": "rolling"},
            WED,
            (date(2026, 10, 18), date(2026, 11, 17)),
        ),
        (
            {"count": 1, "unit": "month", "partial_period": True},
            WED,
            (date(2026, 11, 1), date(2026, 11, 17)),
        ),
        (
            {"count": 2, "unit": "month", "partial_period": True},
            WED,
            (date(2026, 10, 1), date(2026, 11, 17)),
        ),
        (
            {"count": 1, "unit": "week", "partial_period": True},
            WED,
            (date(2026, 11, 16), date(2026, 11, 17)),
        ),
    ],
)
def test_windows(fields: dict[str, Any], today: date, window: tuple[date, date]) -> None:
    assert attendance_window(_rule(**fields), today) == window


def test_month_arithmetic_and_expected_days() -> None:
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)
    assert add_months(date(2028, 3, 31), -1) == date(2028, 2, 29)
    assert add_months(date(2026, 1, 15), -2) == date(2025, 11, 15)
    for start, end in [(date(2026, 10, 1), date(2026, 10, 31)), (WED, WED + timedelta(days=40))]:
        assert expected_days(start, end, only_weekdays=True) == len(
            _days(start, end, weekdays=True)
        )
        assert expected_days(start, end, only_weekdays=False) == (end - start).days + 1
    assert expected_days(WED, WED - timedelta(days=1), only_weekdays=False) == 0


# --- evaluation on both databases ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "month_start", "month_end", "weekdays"),
    [
        (datetime(2026, 12, 5, 12, tzinfo=UTC), date(2026, 11, 1), date(2026, 11, 30), 21),
        (datetime(2026, 11, 18, 15, tzinfo=UTC), date(2026, 10, 1), date(2026, 10, 31), 22),
        (datetime(2028, 3, 10, 9, tzinfo=UTC), date(2028, 2, 1), date(2028, 2, 29), 21),
    ],
    ids=["30-day", "31-day", "leap-february"],
)
async def test_perfect_previous_calendar_month_weekdays(
    database: Database, now: datetime, month_start: date, month_end: date, weekdays: int
) -> None:
    perfect = await add_member(database, "Perfect")
    missed_one = await add_member(database, "Missed One")
    absent_marked = await add_member(database, "Absent Marked")
    weekdays_list = _days(month_start, month_end, weekdays=True)
    assert len(weekdays_list) == weekdays
    await _attend(database, perfect, weekdays_list)
    await _attend(database, missed_one, weekdays_list[1:])
    await _attend(database, absent_marked, weekdays_list[:-1])
    await _attend(database, absent_marked, weekdays_list[-1:], present=False)
    # weekend presence does not replace a weekday
    await _attend(database, missed_one, _days(month_start, month_end)[-7:])

    rule = _rule(count=1, unit="month", only_weekdays=True)
    chosen = await _judge(database, now, rule)
    assert list(chosen) == [perfect]
    candidate = chosen[perfect]
    assert candidate.key == f"attendance:{month_start}:{month_end}"
    assert candidate.args == {
        "present_days": weekdays,
        "expected_days": weekdays,
        "missed_days": 0,
        "window_start": month_start.isoformat(),
        "window_end": month_end.isoformat(),
    }


async def test_partial_with_deviation_two(database: Database, clock: FixedClock) -> None:
    # on 2026-11-18 the last 30 complete days are 2026-10-19 .. 2026-11-17
    window = _days(date(2026, 10, 19), date(2026, 11, 17), weekdays=True)
    two = await add_member(database, "Two Misses")
    three = await add_member(database, "Three Misses")
    await _attend(database, two, window[2:])
    await _attend(database, three, window[3:])
    rule = _rule(count=30, unit="day", match="partial", deviation=2, only_weekdays=True)
    chosen = await _judge(database, clock.now(), rule)
    assert list(chosen) == [two]
    assert chosen[two].args["missed_days"] == 2
    assert chosen[two].args["expected_days"] == len(window)


async def test_rolling_thirty_days_counts_weekends(database: Database, clock: FixedClock) -> None:
    every_day = await add_member(database, "Every Day")
    weekdays_only = await add_member(database, "Weekdays Only")
    await _attend(database, every_day, _days(date(2026, 10, 19), date(2026, 11, 17)))
    await _attend(
        database, weekdays_only, _days(date(2026, 10, 19), date(2026, 11, 17), weekdays=True)
    )
    rule = _rule(count=30, unit="day", period_type="rolling")
    chosen = await _judge(database, clock.now(), rule)
    assert list(chosen) == [every_day]
    assert chosen[every_day].key == "attendance:2026-10-19:2026-11-17"
    assert chosen[every_day].args["expected_days"] == 30


async def test_fixed_day_window_ends_yesterday(database: Database, clock: FixedClock) -> None:
    complete = await add_member(database, "Complete")
    with_today = await add_member(database, "With Today")
    await _attend(database, complete, _days(date(2026, 11, 15), date(2026, 11, 17)))
    # today (2026-11-18) is not over and never counts
    await _attend(database, with_today, _days(date(2026, 11, 16), date(2026, 11, 18)))
    chosen = await _judge(database, clock.now(), _rule(count=3, unit="day"))
    assert list(chosen) == [complete]


async def test_window_is_in_the_organisation_zone(database: Database) -> None:
    member = await add_member(database, "Tokyo Office")
    await _attend(database, member, [date(2026, 11, 18)])
    # 2026-11-18 15:00 UTC is already 2026-11-19 in Tokyo: "yesterday" is the 18th there
    now = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
    rule = _rule(count=1, unit="day")
    assert list(await _judge(database, now, rule, tz="Asia/Tokyo")) == [member]
    assert list(await _judge(database, now, rule, tz="UTC")) == []


async def test_partial_period_counts_only_days_so_far(
    database: Database, clock: FixedClock
) -> None:
    so_far = _days(date(2026, 11, 1), date(2026, 11, 17), weekdays=True)
    member = await add_member(database, "So Far")
    await _attend(database, member, so_far)
    rule = _rule(count=1, unit="month", only_weekdays=True, partial_period=True)
    chosen = await _judge(database, clock.now(), rule)
    assert list(chosen) == [member]
    assert chosen[member].args["expected_days"] == len(so_far) == 12
    assert chosen[member].key == "attendance:2026-11-01:2026-11-17"
    # on the first day of the month nothing of it has passed: nobody is judged
    first = datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert await _judge(database, first, rule) == {}


async def test_members_without_records_are_not_judged(
    database: Database, clock: FixedClock
) -> None:
    some = await add_member(database, "Some Data")
    await add_member(database, "No Data")
    other = await add_member(database, "Other Dataset")
    await _attend(database, some, [date(2026, 11, 17)])
    await _attend(database, other, _days(date(2026, 11, 13), date(2026, 11, 17)), dataset="x")
    rule = _rule(count=5, unit="day", match="partial", deviation=4)
    chosen = await _judge(database, clock.now(), rule)
    assert list(chosen) == [some]
    assert chosen[some].args["missed_days"] == 4


async def test_inactive_members_are_not_judged(database: Database, clock: FixedClock) -> None:
    gone = await add_member(database, "Gone", active=False)
    await _attend(database, gone, _days(date(2026, 11, 15), date(2026, 11, 17)))
    assert await _judge(database, clock.now(), _rule(count=3, unit="day")) == {}


async def test_upsert_replaces_present(database: Database, clock: FixedClock) -> None:
    member = await add_member(database, "Changed")
    days = _days(date(2026, 11, 15), date(2026, 11, 17))
    await _attend(database, member, days, present=False)
    rule = _rule(count=3, unit="day")
    assert await _judge(database, clock.now(), rule) == {}
    await _attend(database, member, days)
    assert list(await _judge(database, clock.now(), rule)) == [member]


# --- the import command -------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return cli_environment(tmp_path)


_prepare = prepare_members


def _records(path: str) -> list[tuple[str, int, str, int]]:
    with closing(sqlite3.connect(path)) as connection:
        return [
            (str(r[0]), int(r[1]), str(r[2]), int(r[3]))
            for r in connection.execute(
                "SELECT dataset, member_id, day, present FROM attendance_record "
                "ORDER BY dataset, member_id, day"
            )
        ]


def test_cli_import_reports_rejected_lines(tmp_path: Path, cli_env: dict[str, str]) -> None:
    path, (ann, bob) = _prepare(cli_env)
    csv_file = tmp_path / "attendance.csv"
    csv_file.write_text(
        "email,attendance_date,present\n"
        "Ann.Lee@example.com,2026-11-16,yes\n"
        "bob.ray@example.com,2026-11-16,no\n"
        "ann.lee@example.com,2026-11-31,yes\n"
        "nobody@example.com,2026-11-16,yes\n"
        "bob.ray@example.com,2026-11-17,\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(attendance_cli, ["import", str(csv_file)], env=cli_env)
    assert result.exit_code == 1, result.output
    assert "imported: 3, rejected: 2" in result.output
    assert "line 4: attendance_date '2026-11-31' is not a date" in result.output
    assert "line 5: no member with email nobody@example.com" in result.output
    assert _records(path) == [
        (DATASET, ann, "2026-11-16", 1),
        (DATASET, bob, "2026-11-16", 0),
        (DATASET, bob, "2026-11-17", 1),
    ]

    by_id = tmp_path / "by_id.csv"
    by_id.write_text(f"member_id;day;present\n{bob};2026-11-16;1\n", encoding="utf-8")
    again = CliRunner().invoke(
        attendance_cli, ["import", str(by_id), "--dataset", "office"], env=cli_env
    )
    assert again.exit_code == 0, again.output
    assert "imported: 1, rejected: 0" in again.output
    assert (("office", bob, "2026-11-16", 1)) in _records(path)
    assert (DATASET, bob, "2026-11-16", 0) in _records(path)


def test_cli_import_unusable_file_exits_2(tmp_path: Path, cli_env: dict[str, str]) -> None:
    path, _ = _prepare(cli_env)
    bad = tmp_path / "bad.csv"
    bad.write_text("name,when\nAnn,2026-11-16\n", encoding="utf-8")
    result = CliRunner().invoke(attendance_cli, ["import", str(bad)], env=cli_env)
    assert result.exit_code == 2
    assert "Nothing was imported" in result.output
    missing = CliRunner().invoke(
        attendance_cli, ["import", str(tmp_path / "missing.csv")], env=cli_env
    )
    assert missing.exit_code == 2
    assert _records(path) == []


def test_weekend_days_of_any_window() -> None:
    """The weekdays filter leaves out the window's Saturdays and Sundays, whatever day the window
    starts on (a window starting on a Sunday keeps that Sunday out)."""
    for offset in range(14):
        start = date(2026, 10, 1) + timedelta(days=offset)
        for length in range(-1, 40):
            end = start + timedelta(days=length)
            every = [start + timedelta(days=i) for i in range(length + 1)]
            assert weekend_days(start, end) == [d for d in every if d.weekday() >= 5]

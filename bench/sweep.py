"""Daily sweep benchmark: the set-based rule evaluators against a naive per-member loop.

    .venv/bin/python -m bench.sweep [--members 100000] [--pg-url URL]

The issue's acceptance: "A benchmark in bench/ times the daily sweep (birthdays, anniversaries,
attendance, one achievement) over 100,000 members on PostgreSQL against a naive per-member loop,
and the README shows the ratio."

- set-based: each evaluator called once, as the sweep calls it (`rewards.rules.calendar`,
  `rewards.rules.attendance`, `rewards.rules.achievement` with the function's batch form), through
  the project's `Database`; then, when `rewards.rules.evaluate.sweep` exists, the whole sweep,
  which also writes the day's awards and announcements (timed once on the fresh data, then again
  as a same-day re-run that finds everything already awarded);
- naive: what a first implementation does, through the same `Database`: for every member, read
  the member's row, compute the local date, decide birthday / anniversary in Python, read the
  member's attendance rows of the window with one query and count them, and call the registered
  achievement function for that member through the per-member adapter (`SqlConnection`), one
  member after another. O(members) queries per rule.

Both must select exactly the same members; the run fails (exit status 1) if they differ. The naive
loop takes minutes at 100,000 members, so by default it runs on a seeded random sample of
`--naive-sample` members and its time is extrapolated linearly (stated in the output).

The data (seeded, see `bench.dataset`): the leaderboard benchmark's members (birthdays, hire
dates, nine zones, 1% inactive), ~62 days of weekday attendance records and ~61 days of daily
activity with login streaks, bulk loaded (`bench.loaders`). The rewards are loaded into the
`reward` table by the catalogue loader (`rewards.services.catalog.load_catalog`).
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import gc
import inspect
import os
import random
import shlex
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bench.dataset import (
    ATTENDANCE_DATASET,
    DEFAULT_SEED,
    NOW,
    Dataset,
    activity_rows,
    attendance_rows,
    generate,
)
from bench.leaderboards import _file_version, _libpq_dsn, _postgres_version, _sqlalchemy_url
from bench.loaders import copy_rows_postgresql, load_postgresql
from bench.pgserver import SERVER_SETTINGS, throwaway_postgres
from bench.timing import Budget, Sample, fmt_ms, fmt_ratio, machine_lines, measure
from rewards.catalog.loader import RewardDefinition, parse_catalog
from rewards.catalog.rules import (
    AchievementRule,
    AttendanceRule,
    EmploymentDuration,
    WorkAnniversary,
)
from rewards.clock import FixedClock, local_today
from rewards.functions.registry import FunctionKind, default_registry
from rewards.rules.activity import rebuild_streaks
from rewards.rules.attendance import attendance, attendance_window, expected_days
from rewards.rules.base import Candidate, EvalContext
from rewards.rules.calendar import birthdays, employment_anniversaries, work_anniversaries
from rewards.services.catalog import load_catalog
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.migrate import upgrade_async
from rewards.store.models import AttendanceRecord, Award, Member

TIMEZONE = "America/New_York"
RESULTS_DIR = Path(__file__).parent / "results"
ATTENDANCE_DAYS = 62  # 2026-09-17 .. 2026-11-17: all of October and the rolling 30 days
ACTIVITY_DAYS = 61

# The rewards of the sweep, as a catalogue file would hold them (cf. examples/rewards.json).
CATALOGUE: list[dict[str, Any]] = [
    {
        "reward_id": 9001,
        "reward": "Happy Birthday!",
        "points": 10,
        "reward_type": "Achievement Badge",
        "reward_category": "Celebrations",
        "multiple": True,
        "timeframe": "yearly",
        "rules": [["Birthday"]],
    },
    {
        "reward_id": 9002,
        "reward": "First Year",
        "points": 100,
        "reward_type": "Achievement Badge",
        "reward_category": "Milestones",
        "rules": [["WorkAnniversary", {"years": 1}]],
    },
    {
        "reward_id": 9003,
        "reward": "Work Anniversary",
        "points": 50,
        "reward_type": "Achievement Badge",
        "reward_category": "Milestones",
        "multiple": True,
        "timeframe": "yearly",
        "rules": [["EmploymentDuration"]],
    },
    {
        "reward_id": 9004,
        "reward": "Perfect Attendance - Monthly",
        "points": 1000,
        "reward_type": "Achievement Badge",
        "reward_category": "Attendance",
        "multiple": True,
        "timeframe": "monthly",
        "rules": [
            [
                "AttendanceRule",
                {
                    "count": 1,
                    "unit": "month",
                    "dataset": ATTENDANCE_DATASET,
                    "match": "perfect",
                    "only_weekdays": True,
                },
            ]
        ],
    },
    {
        "reward_id": 9006,
        "reward": "Rolling 30-Day Streak",
        "points": 300,
        "reward_type": "Achievement Badge",
        "reward_category": "Attendance",
        "multiple": True,
        "timeframe": "monthly",
        "rules": [
            [
                "AttendanceRule",
                {
                    "count": 30,
                    "unit": "day",
                    "period_type": "rolling",
                    "dataset": ATTENDANCE_DATASET,
                    "match": "perfect",
                    "only_weekdays": True,
                },
            ]
        ],
    },
    {
        "reward_id": 3000,
        "reward": "Consistency King",
        "description": "Maintained 30-day login streak",
        "points": 1000,
        "reward_type": "Achievement Badge",
        "reward_category": "Engagement",
        "rules": [
            [
                "AchievementRule",
                {
                    "function_path": "rewards.functions.engagement.get_login_streak",
                    "threshold": 30,
                    "operator": "gte",
                },
            ]
        ],
    },
]
LABELS = {
    9001: "birthdays (Birthday)",
    9002: "first work anniversary (WorkAnniversary years=1)",
    9003: "any work anniversary (EmploymentDuration)",
    9004: "perfect attendance, previous month (AttendanceRule)",
    9006: "perfect attendance, rolling 30 days (AttendanceRule)",
    3000: "login streak >= 30 (AchievementRule get_login_streak)",
}


@dataclass
class Row:
    """One rule: its set-based timing, the naive loop's and the members each selected."""

    label: str
    reward_id: int
    set_based: Sample | None = None
    naive_ms: float | None = None  # extrapolated to all members when sampled
    selected: int = 0
    mismatch: str = ""


@dataclass
class Setup:
    db: Database
    settings: Settings
    definitions: dict[int, RewardDefinition]
    member_ids: list[int]
    sample: list[int]
    lines: list[str] = field(default_factory=list)

    def ctx(self, reward_id: int) -> EvalContext:
        return EvalContext(self.db, NOW, self.settings, reward_id)

    def rule(self, reward_id: int) -> Any:
        return self.definitions[reward_id].rules[0]


# --- achievement: whatever rewards.rules.achievement exposes ------------------------------------


def _achievement_module() -> Any | None:
    try:
        from rewards.rules import achievement
    except ImportError:
        return None
    needed = ("achievements", "reward_period", "SqlConnection", "MemberInfo", "MemberEnv")
    return achievement if all(hasattr(achievement, name) for name in needed) else None


async def set_based_achievement(setup: Setup, reward_id: int) -> list[Candidate]:
    module = _achievement_module()
    assert module is not None
    definition = setup.definitions[reward_id]
    period = module.reward_period(definition.timeframe, NOW, setup.settings.timezone)
    result: list[Candidate] = await module.achievements(
        setup.ctx(reward_id), setup.rule(reward_id), default_registry(), period
    )
    return result


# --- the naive per-member loop ------------------------------------------------------------------


def _observed(month: int, day: int, year: int) -> tuple[int, int]:
    if (month, day) == (2, 29) and not calendar.isleap(year):
        return (2, 28)
    return (month, day)


async def _member(session: AsyncSession, member_id: int) -> Member:
    """One member's row, one query (no identity-map shortcut)."""
    return (await session.scalars(select(Member).where(col(Member.id) == member_id))).one()


async def naive_calendar(setup: Setup, reward_id: int, ids: Sequence[int]) -> set[int]:
    rule = setup.rule(reward_id)
    years = rule.years if isinstance(rule, WorkAnniversary | EmploymentDuration) else None
    chosen: set[int] = set()
    async with setup.db.read() as session:
        for member_id in ids:
            m = await _member(session, member_id)
            if not m.active or m.celebrations_opt_out:
                continue
            today = local_today(NOW, m.timezone, setup.settings.timezone)
            if reward_id == 9001:
                if m.birthday_month is None or m.birthday_day is None:
                    continue
                if _observed(m.birthday_month, m.birthday_day, today.year) == (
                    today.month,
                    today.day,
                ):
                    chosen.add(member_id)
                continue
            hired = m.hire_date
            if hired is None:
                continue
            completed = today.year - hired.year
            if completed < 1 or (years is not None and completed != years):
                continue
            if _observed(hired.month, hired.day, today.year) == (today.month, today.day):
                chosen.add(member_id)
    return chosen


async def naive_attendance(setup: Setup, reward_id: int, ids: Sequence[int]) -> set[int]:
    rule: AttendanceRule = setup.rule(reward_id)
    today = local_today(NOW, setup.settings.timezone)
    start, end = attendance_window(rule, today)
    expected = expected_days(start, end, only_weekdays=rule.only_weekdays)
    allowed = (rule.deviation or 0) if rule.match == "partial" else 0
    chosen: set[int] = set()
    async with setup.db.read() as session:
        for member_id in ids:
            m = await _member(session, member_id)
            if not m.active:
                continue
            records = (
                await session.execute(
                    select(col(AttendanceRecord.day), col(AttendanceRecord.present)).where(
                        col(AttendanceRecord.dataset) == rule.dataset,
                        col(AttendanceRecord.member_id) == member_id,
                        col(AttendanceRecord.day) >= start,
                        col(AttendanceRecord.day) <= end,
                    )
                )
            ).all()
            if not records or expected == 0:
                continue
            present = sum(
                1
                for day, was_present in records
                if was_present and (not rule.only_weekdays or day.weekday() < 5)
            )
            if expected - present <= allowed:
                chosen.add(member_id)
    return chosen


async def naive_achievement(setup: Setup, reward_id: int, ids: Sequence[int]) -> set[int]:
    """The registered function itself, per member, through the per-member adapter."""
    module = _achievement_module()
    assert module is not None
    rule: AchievementRule = setup.rule(reward_id)
    entry = default_registry().get(rule.function_path, FunctionKind.ACHIEVEMENT)
    period = module.reward_period(
        setup.definitions[reward_id].timeframe, NOW, setup.settings.timezone
    )
    conn = module.SqlConnection(setup.db)
    chosen: set[int] = set()
    for member_id in ids:
        async with setup.db.read() as session:
            m = await _member(session, member_id)
        if not m.active:
            continue
        user = module.MemberInfo(
            member_id, m.email, m.display_name, m.timezone, m.job_code, m.department
        )
        today = local_today(NOW, m.timezone, setup.settings.timezone)
        env = module.MemberEnv(today, period.start, period.end)
        value = await entry.func(user, env, conn, **rule.function_params)
        if module.passes(value, rule):
            chosen.add(member_id)
    return chosen


NaiveLoop = Callable[[Setup, int, Sequence[int]], Awaitable[set[int]]]


def _naive_for(reward_id: int) -> NaiveLoop:
    rule = CATALOGUE_RULES[reward_id]
    if rule == "AttendanceRule":
        return naive_attendance
    if rule == "AchievementRule":
        return naive_achievement
    return naive_calendar


CATALOGUE_RULES = {int(r["reward_id"]): str(r["rules"][0][0]) for r in CATALOGUE}


def _set_based_for(setup: Setup, reward_id: int) -> Callable[[], Awaitable[list[Candidate]]]:
    rule = setup.rule(reward_id)
    ctx = setup.ctx(reward_id)
    if reward_id == 9001:
        return lambda: birthdays(ctx)
    if isinstance(rule, WorkAnniversary):
        return lambda: work_anniversaries(ctx, rule)
    if isinstance(rule, EmploymentDuration):
        return lambda: employment_anniversaries(ctx, rule)
    if isinstance(rule, AttendanceRule):
        return lambda: attendance(ctx, rule)
    return lambda: set_based_achievement(setup, reward_id)


# --- the whole sweep ----------------------------------------------------------------------------


def _sweep_function() -> Callable[..., Awaitable[Any]] | None:
    try:
        from rewards.rules import evaluate
    except ImportError:
        return None
    sweep = getattr(evaluate, "sweep", None)
    return sweep if inspect.iscoroutinefunction(sweep) else None


async def _counts(db: Database) -> dict[str, int]:
    from rewards.store.models import Announcement, Award, LedgerEntry

    counts = {}
    async with db.read() as session:
        for name, model in (
            ("award", Award),
            ("ledger_entry", LedgerEntry),
            ("announcement", Announcement),
        ):
            counts[name] = int(await session.scalar(select(func.count()).select_from(model)) or 0)
    return counts


async def time_sweep(setup: Setup) -> list[str]:
    """The whole `sweep(core, now=...)`: once on fresh data (writes), once as a same-day re-run."""
    sweep = _sweep_function()
    if sweep is None:
        return ["- whole `sweep()`: not measured, `rewards.rules.evaluate.sweep` is not available"]
    core = _sweep_core(setup)
    lines = []
    for label in ("first run of the day (evaluates and writes)", "same-day re-run"):
        before = await _counts(setup.db)
        start = time.perf_counter()
        result = await sweep(core, now=NOW)
        elapsed = (time.perf_counter() - start) * 1000
        after = await _counts(setup.db)
        written = ", ".join(f"{after[k] - before[k]:,} {k} rows" for k in after)
        lines.append(
            f"- whole `sweep()`, {label}: {fmt_ms(elapsed)} ms; wrote {written}"
            + (f"; returned {_describe(result)}" if result is not None else "")
        )
        stages = _stages(result)
        if stages:
            lines.append(
                "  - by stage (ms, all rewards): "
                + ", ".join(f"{name} {fmt_ms(ms)}" for name, ms in stages.items())
            )
    return lines


def _stages(reports: Any) -> dict[str, float]:
    """Milliseconds per stage summed over the sweep's reports (`EvaluationReport.stages`)."""
    total: dict[str, float] = {}
    for report in reports if isinstance(reports, list) else []:
        for name, seconds in getattr(report, "stages", {}).items():
            total[name] = total.get(name, 0.0) + seconds * 1000
    return total


LOTTERY_RULES: dict[str, dict[str, Any]] = {
    "unweighted, count 10": {"count": 10},
    "weighted by department, count 10": {
        "count": 10,
        "weights": {"department": {"Engineering": 2, "Sales": 3}},
    },
    "unweighted, count 10, exclude_recent_winners": {"count": 10, "exclude_recent_winners": True},
}


async def _legacy_draw(setup: Setup, rule: Any) -> list[int]:
    """The draw before algorithm 2: every eligible row loaded through the session, one random
    number and a log per eligible member, a sort (kept here as the baseline)."""
    from rewards.rules.lottery import _weight, replay

    query = (
        select(Member.id, col(Member.department), col(Member.job_code))
        .where(col(Member.active).is_(True))
        .order_by(col(Member.id))
    )
    async with setup.db.read() as session:
        rows = (await session.execute(query)).all()
    ids = [int(r[0]) for r in rows]
    weights = {int(r[0]): _weight(rule, r[1], r[2], ()) for r in rows}
    return replay("0" * 32, ids, weights, rule.count, 1)


async def _algorithm_2(setup: Setup, rule: Any) -> list[int]:
    """The draw before algorithm 3 (what `verify` still does for algorithm-2 runs): every
    eligible id (and, weighted, department and job code) fetched as arrays, hashed and weighed
    in Python, then algorithm 2's O(count) sampling."""
    from rewards.rules.lottery import _eligible, replay

    async with setup.db.read() as session:
        eligible = await _eligible(session, 9001, rule, NOW, TIMEZONE)
    assert eligible.hash
    return replay("0" * 32, eligible.ids, eligible.weights, rule.count, 2)


async def _algorithm_3(setup: Setup, rule: Any) -> list[int]:
    """Algorithm 3 alone (`draw_v3` in a read transaction): no run recorded, no outbox."""
    from rewards.rules.lottery_sql import draw_v3

    async with setup.db.read() as session:
        outcome = await draw_v3(session, 9001, rule, NOW, TIMEZONE, "0" * 32)
    return outcome.winners


async def time_lottery(setup: Setup, budget: Budget) -> list[str]:
    """`draw()` (eligible set, sampling, recording the run and its outbox event) per rule, each
    repetition under a new draw key; the draw alone with algorithm 3 and with algorithm 2 (the
    eligible set loaded into Python) and the algorithm-1 baseline, in the same run; `verify`."""
    from rewards.catalog.rules import RandomUsers
    from rewards.rules.lottery import draw, verify

    lines = [
        "| lottery draw (100,000 members, 1% inactive) | eligible | `draw()` ms | "
        "algorithm 3 alone ms | algorithm 2 alone ms | algorithm 1 baseline ms | `verify` ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    ctx = setup.ctx(9001)
    for label, params in LOTTERY_RULES.items():
        rule = RandomUsers.model_validate(params)
        counter = iter(range(1_000_000))

        async def one(r: Any = rule, label: str = label, keys: Any = counter) -> Any:
            return await draw(ctx, r, draw_key=f"bench:{label}:{next(keys)}")

        drawn = await measure(one, budget)
        alone = await measure(lambda r=rule: _algorithm_3(setup, r), budget)
        before = await measure(lambda r=rule: _algorithm_2(setup, r), budget)
        legacy = await measure(lambda r=rule: _legacy_draw(setup, r), budget)
        run_id = drawn.result.run.id
        checked = await measure(lambda run=run_id: verify(setup.db, run), budget)
        assert checked.result is not None and checked.result.matches
        lines.append(
            f"| {label} | {drawn.result.run.eligible_count:,} | {fmt_ms(drawn.median)} "
            f"| {fmt_ms(alone.median)} | {fmt_ms(before.median)} "
            f"| {fmt_ms(legacy.median)} | {fmt_ms(checked.median)} |"
        )
    return lines


def _sweep_core(setup: Setup) -> Any:
    """The application core `sweep` runs on: same database, settings, and a clock fixed at now."""
    from rewards.core import Core

    return Core(settings=setup.settings, db=setup.db, clock=FixedClock(NOW))


def _describe(result: Any) -> str:
    if isinstance(result, dict | list | tuple):
        return f"{type(result).__name__} of {len(result)}"
    text = repr(result)
    return text if len(text) < 200 else text[:200] + "…"


# --- orchestration ------------------------------------------------------------------------------


# What the measurements write (awards, ledger, counters, announcements, draws, events): cleared
# before a `--keep` run measures again on the data an earlier run loaded.
WRITTEN_TABLES = (
    "award",
    "ledger_entry",
    "leaderboard_counter",
    "announcement",
    "delivery",
    "outbox_event",
    "event_hook",
    "lottery_run",
    "job_run",
)


async def _reuse(dsn: str, members: int) -> bool:
    """Whether the database at `dsn` already holds the data set (`--keep`); when it does, what
    earlier measurements wrote is cleared, so the sweep's first run is a first run again."""
    conn = await asyncpg.connect(dsn)
    try:
        loaded = int(await conn.fetchval("SELECT count(*) FROM member"))
        if not loaded:
            return False
        if loaded != members:
            raise SystemExit(f"{dsn}: holds {loaded:,} members, not {members:,}")
        await conn.execute(f"TRUNCATE {', '.join(WRITTEN_TABLES)} CASCADE")
        for table in WRITTEN_TABLES:
            await conn.execute(f"VACUUM ANALYZE {table}")
        return True
    finally:
        await conn.close()


async def prepare(backend_url: str, dsn: str, ds: Dataset, args: argparse.Namespace) -> Setup:
    """Migrate, bulk load the members, attendance and activity, load the catalogue (with
    `--keep`, a database an earlier `--keep` run loaded is used as it is)."""
    await upgrade_async(backend_url)
    if args.keep and await _reuse(dsn, len(ds.members)):
        print("reusing the loaded data set (--keep)", file=sys.stderr)
        return _setup(Database(backend_url), ds, args, ["- data set loaded by an earlier run"])
    conn = await asyncpg.connect(dsn)
    try:
        if await conn.fetchval("SELECT count(*) FROM member"):
            raise SystemExit(f"{dsn}: the database is not empty; use a new one (or --keep)")
    finally:
        await conn.close()
    lines: list[str] = []
    print("bulk loading members", file=sys.stderr)
    load = await load_postgresql(dsn, ds)
    lines.append(f"- members bulk load (setup): {load.describe()}")
    if args.only == "lottery":
        return await _lottery_setup(backend_url, ds, lines)
    print("loading attendance and activity", file=sys.stderr)
    start = time.perf_counter()
    attended = await copy_rows_postgresql(
        dsn,
        "attendance_record",
        ("dataset", "member_id", "day", "present"),
        attendance_rows(ds.members, ATTENDANCE_DAYS, ds.seed),
    )
    attendance_s = time.perf_counter() - start
    start = time.perf_counter()
    active = await copy_rows_postgresql(
        dsn,
        "member_activity",
        ("member_id", "day", "first_seen_at"),
        activity_rows(ds.members, ACTIVITY_DAYS, ds.seed),
    )
    activity_s = time.perf_counter() - start
    db = Database(backend_url)
    start = time.perf_counter()
    streaks = await rebuild_streaks(db)
    streak_s = time.perf_counter() - start
    lines.append(
        f"- attendance_record: {attended:,} rows ({ATTENDANCE_DAYS} days before now, weekdays "
        f"and a few weekend shifts, 92% of members), generated and COPYed in {attendance_s:.1f} s"
    )
    lines.append(
        f"- member_activity: {active:,} rows ({ACTIVITY_DAYS} local days up to each member's "
        f"today, login streaks), generated and COPYed in {activity_s:.1f} s"
    )
    lines.append(
        f"- member_streak: {streaks:,} streak counters rebuilt from the COPYed activity "
        f"(`rebuild_streaks`, what `record_activity` maintains one day at a time) in "
        f"{streak_s:.1f} s"
    )
    definitions = parse_catalog(CATALOGUE)
    report = await load_catalog(db, definitions, clock=FixedClock(NOW))
    lines.append(
        f"- catalogue: {len(report.added)} rewards added by `load_catalog` "
        f"({', '.join(str(r) for r in report.added)})"
    )
    return _setup(db, ds, args, lines)


def _setup(db: Database, ds: Dataset, args: argparse.Namespace, lines: list[str]) -> Setup:
    member_ids = [m.id for m in ds.members]
    if args.naive_sample and args.naive_sample < len(member_ids):
        sample = sorted(random.Random(args.seed).sample(member_ids, args.naive_sample))
    else:
        sample = member_ids
    return Setup(
        db,
        Settings(timezone=TIMEZONE),
        {d.reward_id: d for d in parse_catalog(CATALOGUE)},
        member_ids,
        sample,
        lines,
    )


async def _lottery_setup(backend_url: str, ds: Dataset, lines: list[str]) -> Setup:
    """`--only lottery`: the members and the catalogue, without attendance and activity (the
    draws read neither)."""
    db = Database(backend_url)
    definitions = parse_catalog(CATALOGUE)
    report = await load_catalog(db, definitions, clock=FixedClock(NOW))
    lines.append(f"- catalogue: {len(report.added)} rewards added by `load_catalog`")
    member_ids = [m.id for m in ds.members]
    # Recent winners for `exclude_recent_winners`, as the full run's sweep leaves (it awards
    # reward 9001 to the day's ~300 birthdays before the draws).
    winners = random.Random(ds.seed).sample(member_ids, min(300, len(member_ids)))
    async with db.write() as session:
        session.add_all(
            Award(
                reward_id=9001,
                member_id=member_id,
                source="bench",
                award_key=f"bench:lottery:{member_id}",
                awarded_at=NOW - timedelta(days=1),
            )
            for member_id in winners
        )
    lines.append(f"- {len(winners)} awards of reward 9001 a day before now (recent winners)")
    return Setup(
        db,
        Settings(timezone=TIMEZONE),
        {d.reward_id: d for d in definitions},
        member_ids,
        member_ids,
        lines,
    )


async def bench(setup: Setup, args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    budget = Budget(args.budget, args.min_repeats, args.max_repeats)
    once = Budget(0.0, 1, 1)
    scale = len(setup.member_ids) / len(setup.sample)
    sample_set = set(setup.sample)
    rows: list[Row] = []
    notes: list[str] = []
    achievement_ok = _achievement_module() is not None
    for definition in setup.definitions.values():
        reward_id = definition.reward_id
        if CATALOGUE_RULES[reward_id] == "AchievementRule" and not achievement_ok:
            notes.append(
                f"- {LABELS[reward_id]}: not measured, `rewards.rules.achievement` is not usable"
            )
            continue
        row = Row(LABELS[reward_id], reward_id)
        print(f"set-based: {row.label}", file=sys.stderr)
        # New connections for every rule: PostgreSQL replans a prepared statement generically
        # after five executions on one connection (see `plan_cache_check`), so without this a
        # rule's timing would depend on how often the rules before it reused its statement.
        await setup.db.dispose()
        row.set_based = await measure(_set_based_for(setup, reward_id), budget)
        selected = {c.member_id for c in row.set_based.result}
        row.selected = len(selected)
        if not args.skip_naive:
            print(f"naive ({len(setup.sample):,} members): {row.label}", file=sys.stderr)
            naive = _naive_for(reward_id)

            def call(n: NaiveLoop = naive, r: int = reward_id) -> Awaitable[set[int]]:
                return n(setup, r, setup.sample)

            sample_run = await measure(call, once, warmup=False)
            row.naive_ms = sample_run.median * scale
            expected = selected & sample_set
            got: set[int] = sample_run.result
            if got != expected:
                only_set = sorted(expected - got)[:10]
                only_naive = sorted(got - expected)[:10]
                row.mismatch = (
                    f"set-based {len(expected):,} vs naive {len(got):,} members in the sample; "
                    f"only set-based: {only_set}, only naive: {only_naive}"
                )
            else:
                notes.append(
                    f"- {row.label}: same {len(got):,} members in the naive sample "
                    f"({row.selected:,} of all members)"
                )
        rows.append(row)
    return rows, notes


PLAN_CACHE_RUNS = 7


async def plan_cache_check(setup: Setup, rows: Sequence[Row]) -> list[str]:
    """Each rule run `PLAN_CACHE_RUNS` times on one pooled connection: runs 1-5 against 6-7.

    asyncpg prepares every statement, and from the sixth execution of a prepared statement on a
    connection PostgreSQL may use a generic plan, chosen without the parameter values (for a date
    range it guesses a small fraction of the table). A scheduler running the sweep every hour on
    a pooled connection gets that plan from the sixth run on.
    """
    lines = [
        f"Plan-cache check: each rule {PLAN_CACHE_RUNS} times in a row on one pooled connection "
        "(asyncpg prepares statements; PostgreSQL may switch a prepared statement to a generic "
        "plan from its 6th execution):",
        "",
    ]
    for row in rows:
        await setup.db.dispose()
        call = _set_based_for(setup, row.reward_id)
        times: list[float] = []
        for _ in range(PLAN_CACHE_RUNS):
            start = time.perf_counter()
            await call()
            times.append((time.perf_counter() - start) * 1000)
        first, later = statistics.median(times[:5]), statistics.median(times[5:])
        flag = " ⚠ slower from the 6th run" if later > 1.5 * first and later - first > 50 else ""
        lines.append(
            f"- {row.label}: runs 1–5 median {fmt_ms(first)} ms, runs 6–{PLAN_CACHE_RUNS} "
            f"median {fmt_ms(later)} ms{flag}"
        )
    return lines


def table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| operation | members selected | set-based ms | naive ms | naive / set-based |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        assert row.set_based is not None
        mark = " ⚠" if row.mismatch else ""
        lines.append(
            f"| {row.label}{mark} | {row.selected:,} | {fmt_ms(row.set_based.median)} "
            f"| {fmt_ms(row.naive_ms)} | {fmt_ratio(row.naive_ms, row.set_based.median)} |"
        )
    total_set = sum(r.set_based.median for r in rows if r.set_based)
    naive_values = [r.naive_ms for r in rows]
    total_naive = (
        sum(v for v in naive_values if v is not None) if None not in naive_values else None
    )
    lines.append(
        f"| **daily sweep, all {len(rows)} rules** | {sum(r.selected for r in rows):,} "
        f"| **{fmt_ms(total_set)}** | **{fmt_ms(total_naive)}** "
        f"| **{fmt_ratio(total_naive, total_set)}** |"
    )
    return lines


async def run_on(backend_url: str, dsn: str, ds: Dataset, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    version = await _postgres_version(dsn)
    machine = machine_lines(version)  # the load average at the start
    setup = await prepare(backend_url, dsn, ds, args)
    if args.only == "lottery":
        return await _run_lottery_only(setup, args, version, machine, started)
    try:
        rows, notes = await bench(setup, args)
        print("plan-cache check", file=sys.stderr)
        plan_lines = await plan_cache_check(setup, rows)
        sweep_lines = await time_sweep(setup) if not args.skip_sweep else []
        lottery_lines = []
        if not args.skip_lottery:
            print("lottery", file=sys.stderr)
            lottery_lines = await time_lottery(
                setup, Budget(args.budget, args.min_repeats, args.max_repeats)
            )
    finally:
        await setup.db.dispose()
    members = len(setup.member_ids)
    sampled = len(setup.sample) < members
    out = [
        f"## Daily sweep — PostgreSQL {version}",
        "",
        f"Command: `{args.command}`",
        "",
        "Machine:",
        "",
        *machine,
        f"- code measured: {_rule_versions()}",
        "",
        "### Setup",
        "",
        f"- {members:,} members (seed {ds.seed}; 1% inactive), now = {NOW.isoformat()}, "
        f"TIMEZONE={TIMEZONE}",
        *setup.lines,
        "- "
        + (
            "given --pg-url server"
            if args.pg_url
            else "throwaway server: " + ", ".join(f"{k}={v}" for k, v in SERVER_SETTINGS.items())
        )
        + "; VACUUM ANALYZE after the load",
        "",
        "### Timings",
        "",
        f"Milliseconds. Set-based: median of as many runs as fit in ~{args.budget:g} s after one "
        f"warm-up (at least {args.min_repeats}). Naive: one run over "
        + (
            f"a seeded random sample of {len(setup.sample):,} members (seed {args.seed}), "
            f"**extrapolated linearly to all {members:,} members** "
            f"(×{members / len(setup.sample):.1f})."
            if sampled
            else f"all {members:,} members."
        ),
        "",
        *table(rows),
        "",
        *notes,
        *sweep_lines,
        "",
        "### Lottery",
        "",
        f"Milliseconds, median of as many runs as fit in ~{args.budget:g} s after a warm-up.",
        "",
        *lottery_lines,
        "",
        *plan_lines,
        "",
    ]
    mismatches = [f"- {r.label}: {r.mismatch}" for r in rows if r.mismatch]
    if mismatches:
        out += ["**RESULT MISMATCHES** (set-based vs naive):", "", *mismatches, ""]
    load = os.getloadavg()
    out.append(
        f"Run time: {time.perf_counter() - started:.0f} s; load average at the end: "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    text = "\n".join(out) + "\n"
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "sweep-postgresql.md").write_text(text, encoding="utf-8")
    if mismatches:
        print("FAILED: the set-based and naive results differ", file=sys.stderr)
        return 1
    return 0


async def _run_lottery_only(
    setup: Setup, args: argparse.Namespace, version: str, machine: list[str], started: float
) -> int:
    """`--only lottery`: the lottery table alone, written to bench/results/lottery-postgresql.md."""
    print("lottery", file=sys.stderr)
    try:
        lottery_lines = await time_lottery(
            setup, Budget(args.budget, args.min_repeats, args.max_repeats)
        )
    finally:
        await setup.db.dispose()
    load = os.getloadavg()
    draw_module = "rewards.rules.lottery"
    out = [
        f"## Lottery — PostgreSQL {version}",
        "",
        f"Command: `{args.command}`",
        "",
        "Machine:",
        "",
        *machine,
        "- code measured: "
        + "; ".join(
            _file_version(Path(sys.modules[name].__file__ or ""))
            for name in (draw_module, f"{draw_module}_sql")
        ),
        "",
        f"- {len(setup.member_ids):,} members (seed {args.seed}; 1% inactive), now = "
        f"{NOW.isoformat()}; no attendance or activity loaded",
        *setup.lines,
        "",
        f"Milliseconds, median of as many runs as fit in ~{args.budget:g} s after a warm-up.",
        "",
        *lottery_lines,
        "",
        f"Run time: {time.perf_counter() - started:.0f} s; load average at the end: "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    ]
    text = "\n".join(out) + "\n"
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "lottery-postgresql.md").write_text(text, encoding="utf-8")
    return 0


def _rule_versions() -> str:
    names = ["calendar", "attendance", "achievement", "evaluate"]
    root = Path(sys.modules["rewards.rules.base"].__file__ or "").parent
    files = [root / f"{name}.py" for name in names if (root / f"{name}.py").exists()]
    engagement = Path(sys.modules["rewards.functions.registry"].__file__ or "").parent
    files.append(engagement / "engagement.py")
    return "; ".join(_file_version(f) for f in files)


async def run(args: argparse.Namespace) -> int:
    print(f"generating {args.members:,} members", file=sys.stderr)
    # Members only: no ledger, and none of the leaderboard catalogue (the sweep's rewards come
    # from `CATALOGUE` through the catalogue loader).
    full = generate(args.members, 0, args.seed)
    ds = Dataset(seed=full.seed, members=full.members, rewards=[], tags=[])
    gc.collect()
    gc.freeze()
    if args.keep and not args.pg_url:
        raise SystemExit("--keep needs --pg-url (a throwaway server is deleted after the run)")
    if args.pg_url:
        dsn = _libpq_dsn(args.pg_url)
        return await run_on(_sqlalchemy_url(dsn), dsn, ds, args)
    with throwaway_postgres() as admin_dsn:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute("CREATE DATABASE rewards_sweep")
        finally:
            await conn.close()
        dsn = str(make_url(admin_dsn).set(database="rewards_sweep"))
        return await run_on(_sqlalchemy_url(dsn), dsn, ds, args)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sweep", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument(
        "--pg-url",
        default="",
        help="an EMPTY PostgreSQL database to use instead of a throwaway server",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--naive-sample",
        type=int,
        default=5_000,
        help="members the naive loop runs on (0: all); its time is extrapolated to all",
    )
    parser.add_argument(
        "--budget", type=float, default=2.0, help="seconds of repeats per measurement"
    )
    parser.add_argument("--min-repeats", type=int, default=3)
    parser.add_argument("--max-repeats", type=int, default=20)
    parser.add_argument("--skip-naive", action="store_true", help="leave the naive loop out")
    parser.add_argument("--skip-sweep", action="store_true", help="do not run the whole sweep()")
    parser.add_argument(
        "--only",
        choices=["lottery"],
        default="",
        help="lottery: load the members and time the lottery draws alone (no attendance, "
        "activity, rules or sweep)",
    )
    parser.add_argument("--skip-lottery", action="store_true", help="leave the lottery draws out")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="with --pg-url: load an empty database, or reuse one an earlier --keep run loaded "
        "(same --members and --seed), clearing what earlier measurements wrote",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    shown = [make_url(a).render_as_string(hide_password=True) if "://" in a else a for a in argv]
    args.command = shlex.join([".venv/bin/python", "-m", "bench.sweep", *shown])
    raise SystemExit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()

"""The scheduler: triggers from the catalogue, exactly-once claims, takeover of abandoned runs."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from bots.scheduler import (
    SWEEP_JOB_ID,
    JobPlan,
    RewardScheduler,
    RunOutcome,
    ScheduledJob,
    plan_jobs,
    sweep_job,
)
from bots.server import SCHEDULER, create_app
from rewards.catalog.loader import definition_from_json, load_file
from rewards.core import Core
from rewards.services import jobs as runs
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import JobRun

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "rewards.json"
NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


def _plan(*definitions: dict[str, object], now: datetime = NOW, zone: str = "UTC") -> JobPlan:
    return plan_jobs(
        [definition_from_json(d) for d in definitions],
        default_zone=zone,
        sweep_minutes=60,
        now=now,
    )


def _reward(reward_id: int, job: dict[str, object], **extra: object) -> dict[str, object]:
    return {
        "reward_id": reward_id,
        "reward": f"Reward {reward_id}",
        "reward_type": "Computed Badge",
        "reward_category": "Lottery",
        "points": 10,
        "rules": [["RandomUsers", {"count": 1}]],
        "job": job,
        **extra,
    }


def _fire_times(job: ScheduledJob, start: datetime, end: datetime) -> list[datetime]:
    times: list[datetime] = []
    moment = job.trigger.get_next_fire_time(None, start)
    while moment is not None and moment < end:
        times.append(moment)
        moment = job.trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
    return times


# --- triggers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("year", "last_day"), [(2028, 29), (2027, 28)])
def test_monthly_mega_lottery_fires_on_the_last_day_of_february(year: int, last_day: int) -> None:
    plan = plan_jobs(load_file(EXAMPLES), default_zone="UTC", sweep_minutes=60, now=NOW)
    job = plan.jobs["monthly_mega_lottery"]
    zone = ZoneInfo(job.timezone)

    fired = _fire_times(job, datetime(year, 2, 1, tzinfo=zone), datetime(year, 3, 1, tzinfo=zone))

    assert fired == [datetime(year, 2, last_day, 16, 0, tzinfo=zone)]
    # ...and the next one is the last day of March, not the 28th/29th.
    after = job.trigger.get_next_fire_time(fired[0], fired[0] + timedelta(seconds=1))
    assert after == datetime(year, 3, 31, 16, 0, tzinfo=zone)


def test_a_cron_job_fires_in_its_own_time_zone_across_daylight_saving() -> None:
    plan = _plan(
        _reward(
            1,
            {"trigger": "cron", "cron": {"hour": 16, "minute": 0}, "timezone": "America/New_York"},
        )
    )
    job = plan.jobs["reward_1"]
    zone = ZoneInfo("America/New_York")

    fired = _fire_times(job, datetime(2026, 3, 7, tzinfo=zone), datetime(2026, 3, 10, tzinfo=zone))

    assert [t.astimezone(UTC).hour for t in fired] == [21, 20, 20]  # EST, then EDT
    assert all(t.astimezone(zone).hour == 16 for t in fired)


def test_interval_fire_times_do_not_depend_on_when_a_process_started() -> None:
    job = {"trigger": "interval", "interval": {"seconds": 7}}
    early = _plan(_reward(1, job), now=NOW).jobs["reward_1"]
    late = _plan(_reward(1, job), now=NOW + timedelta(seconds=3.3)).jobs["reward_1"]
    probe = NOW + timedelta(hours=5, seconds=1.234)

    first = early.next_fire_time(probe)
    second = late.next_fire_time(probe)

    assert first == second
    assert first is not None and early.fire_key(first) == late.fire_key(first)
    # The claim key is the grid point, even for a run time that float rounding moved by a hair.
    assert early.fire_key(first + timedelta(microseconds=3)) == early.fire_key(first)


def test_jobs_that_cannot_run_yet_are_listed_with_the_reason() -> None:
    plan = _plan(
        _reward(
            1,
            {"trigger": "date", "run_date": "2025-12-25 10:00:00", "skip_past_dates": True},
        ),
        _reward(2, {"trigger": "date", "run_date": "2025-12-25 10:00:00"}),
        _reward(3, {"trigger": "cron", "cron": {"hour": 9}}, reward_type="Nomination Badge"),
        _reward(4, {"trigger": "cron", "cron": {"hour": 9}, "id": "reward_2"}),
    )

    assert "date has passed" in plan.not_scheduled["reward_1"]
    assert "reward_3" in plan.jobs  # a Nomination Badge's job opens its campaign
    assert "already used" in plan.not_scheduled["reward_2 (reward 4)"]
    # A past date without skip_past_dates is due: it runs once, however late.
    due = plan.jobs["reward_2"]
    assert due.misfire_grace_time is None
    assert due.trigger.get_next_fire_time(None, NOW - due.catch_up) == datetime(
        2025, 12, 25, 10, tzinfo=UTC
    )
    assert SWEEP_JOB_ID in plan.jobs


# --- claims -----------------------------------------------------------------------------------


async def test_each_fire_time_is_claimed_once_among_concurrent_claimers(
    database: Database,
) -> None:
    fire = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)

    claims = await asyncio.gather(
        *(
            runs.claim_run(
                database, "lottery", fire, owner=f"p{i}", now=NOW, run_key=fire.isoformat()
            )
            for i in range(8)
        )
    )

    won = [claim for claim in claims if claim is not None]
    assert len(won) == 1
    again = await runs.claim_run(database, "lottery", fire, owner="late", now=NOW, run_key="x")
    assert again is None
    other = await runs.claim_run(
        database, "lottery", fire + timedelta(days=1), owner="late", now=NOW, run_key="y"
    )
    assert other is not None


async def test_an_abandoned_run_is_taken_over_by_exactly_one_process(database: Database) -> None:
    fire = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    claim = await runs.claim_run(database, "lottery", fire, owner="dead", now=NOW, run_key="k")
    assert claim is not None
    alive = await runs.claim_run(
        database, "lottery", fire + timedelta(days=1), owner="alive", now=NOW, run_key="k2"
    )
    assert alive is not None
    later = NOW + timedelta(seconds=30)
    assert await runs.heartbeat(database, alive, now=later)

    taken = await asyncio.gather(
        *(
            runs.take_over_stale(
                database, owner=f"taker{i}", now=later, stale_after=timedelta(seconds=10)
            )
            for i in range(4)
        )
    )

    winners = [claims for claims in taken if claims]
    assert len(winners) == 1 and len(winners[0]) == 1
    new = winners[0][0]
    assert (new.job_id, new.fire_time, new.run_key, new.attempts) == ("lottery", fire, "k", 2)
    # The dead owner can no longer finish it; the taker can.
    assert not await runs.finish_run(database, claim, now=later)
    assert await runs.finish_run(database, new, now=later, detail="drew 2 winners")
    stored = (await runs.recent_runs(database, job_id="lottery"))[-1]
    assert (stored.status, stored.claimed_by, stored.detail) == (
        "done",
        new.owner,
        "drew 2 winners",
    )


async def test_a_run_that_keeps_killing_its_process_is_given_up(database: Database) -> None:
    fire = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    await runs.claim_run(database, "poison", fire, owner="p0", now=NOW, run_key="k")
    moment = NOW
    for attempt in range(2, 4):
        moment += timedelta(minutes=1)
        taken = await runs.take_over_stale(
            database, owner=f"p{attempt}", now=moment, stale_after=timedelta(seconds=10)
        )
        assert [claim.attempts for claim in taken] == [attempt]

    moment += timedelta(minutes=1)
    assert not await runs.take_over_stale(
        database, owner="p9", now=moment, stale_after=timedelta(seconds=10)
    )
    [run] = await runs.recent_runs(database, job_id="poison")
    assert run.status == "failed"
    assert run.detail is not None and "Abandoned after 3 attempts" in run.detail


# --- the scheduler in a process ---------------------------------------------------------------


class Recorder:
    """A job body that records what it was asked to run."""

    def __init__(self, *, delay: float = 0.0, fail: bool = False) -> None:
        self.calls: list[tuple[datetime, str]] = []
        self.delay = delay
        self.fail = fail

    async def __call__(self, _core: Core, now: datetime, run_key: str) -> RunOutcome:
        self.calls.append((now, run_key))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("the lottery service is down")
        return RunOutcome(runs.DONE, f"ran {run_key}")


def _every_second(body: Recorder) -> JobPlan:
    template = sweep_job(1)
    job = ScheduledJob(
        id="tick",
        name="Tick",
        description="every second",
        timezone="UTC",
        trigger=type(template.trigger)(
            seconds=1, start_date=datetime(2000, 1, 1, tzinfo=UTC), timezone=UTC
        ),
        body=body,
        interval=timedelta(seconds=1),
        anchor=datetime(2000, 1, 1, tzinfo=UTC),
        misfire_grace_time=5,
    )
    return JobPlan(jobs={job.id: job})


async def _job_runs(db: Database, job_id: str) -> list[JobRun]:
    async with db.read() as session:
        query = select(JobRun).where(JobRun.job_id == job_id).order_by(JobRun.fire_time)  # type: ignore[arg-type]
        return list((await session.scalars(query)).all())


async def test_two_schedulers_on_one_database_run_each_fire_time_once(
    database: Database,
) -> None:
    core = Core(settings=Settings(database_url=database.url), db=database)
    bodies = [Recorder(), Recorder()]
    schedulers = [RewardScheduler(core, owner=f"replica{i}") for i in range(2)]
    for scheduler, body in zip(schedulers, bodies, strict=True):
        await scheduler.start(_every_second(body))
    try:
        await asyncio.sleep(3.6)
    finally:
        for scheduler in schedulers:
            await scheduler.stop()

    calls = bodies[0].calls + bodies[1].calls
    stored = await _job_runs(database, "tick")
    assert len(calls) >= 3
    assert len(stored) == len(calls)  # every claim ran once, no fire time twice
    keys = [key for _, key in calls]
    assert len(set(keys)) == len(keys)
    for now, key in calls:
        # The body is told its scheduled fire time (a whole second), which is also its run key.
        assert now.microsecond == 0 and now.tzinfo is not None
        assert key == f"tick:{now.astimezone(UTC).isoformat()}"
    assert {run.status for run in stored} == {"done"}
    seconds = sorted(run.fire_time for run in stored)
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(seconds))


async def test_a_failing_run_is_recorded_and_the_next_fire_time_still_runs(
    database: Database,
) -> None:
    core = Core(settings=Settings(database_url=database.url), db=database)
    body = Recorder(fail=True)
    scheduler = RewardScheduler(core, owner="solo")
    await scheduler.start(_every_second(body))
    try:
        await asyncio.sleep(2.5)
    finally:
        await scheduler.stop()

    stored = await _job_runs(database, "tick")
    assert len(stored) >= 2
    assert {run.status for run in stored} == {"failed"}
    assert stored[0].detail == "The run failed: the lottery service is down"


async def test_a_run_abandoned_by_a_dead_process_is_finished_by_another(
    database: Database,
) -> None:
    core = Core(settings=Settings(database_url=database.url), db=database)
    fire = datetime(2026, 11, 18, 14, 0, tzinfo=UTC)
    dead = await runs.claim_run(
        database, "tick", fire, owner="dead:1", now=datetime.now(UTC), run_key=fire.isoformat()
    )
    assert dead is not None
    body = Recorder()
    scheduler = RewardScheduler(
        core, owner="survivor", stale_after_seconds=1.0, reap_every_seconds=0.2
    )
    plan = _every_second(body)
    await scheduler.start(plan)
    try:
        for _ in range(50):
            await asyncio.sleep(0.1)
            if (fire, fire.isoformat()) in body.calls:
                break
    finally:
        await scheduler.stop()

    assert (fire, fire.isoformat()) in body.calls  # re-run with the original time and key
    [run] = [r for r in await _job_runs(database, "tick") if r.fire_time == fire]
    assert (run.status, run.claimed_by, run.attempts) == ("done", "survivor", 2)


async def test_a_run_that_outlasts_its_interval_does_not_make_the_next_fire_time_skipped(
    database: Database,
) -> None:
    """Each fire time has its own claim, so the next one starts while a slow run still goes (a
    busy machine made a one-second lottery lose fire times: APScheduler skipped each fire time
    that came while the previous run of the job was still running)."""
    core = Core(settings=Settings(database_url=database.url), db=database)
    body = Recorder(delay=1.4)
    scheduler = RewardScheduler(core, owner="slow")
    await scheduler.start(_every_second(body))
    try:
        await asyncio.sleep(4.2)
    finally:
        await scheduler.stop()

    fire_times = sorted(run.fire_time for run in await _job_runs(database, "tick"))
    assert len(fire_times) >= 4
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(fire_times))


async def test_a_long_run_keeps_its_claim_alive(database: Database) -> None:
    core = Core(settings=Settings(database_url=database.url), db=database)
    body = Recorder(delay=1.5)
    owner = RewardScheduler(core, owner="slow", heartbeat_seconds=0.2)
    rival = RewardScheduler(core, owner="rival", stale_after_seconds=0.8, reap_every_seconds=0.2)
    plan = _every_second(body)
    await owner.start(plan)
    await rival.start(JobPlan(jobs={"tick": plan.jobs["tick"]}))
    rival._scheduler.pause()  # the rival only reaps
    try:
        await asyncio.sleep(2.6)
    finally:
        await owner.stop()
        await rival.stop()

    stored = await _job_runs(database, "tick")
    assert stored and all(run.claimed_by == "slow" and run.attempts == 1 for run in stored)
    keys = Counter(key for _, key in body.calls)
    assert max(keys.values()) == 1


async def test_the_server_starts_and_stops_the_scheduler(database: Database) -> None:
    on = Settings(database_url=database.url, catalog_files=(str(EXAMPLES),))
    async with TestClient(TestServer(create_app(on, platforms=False))) as client:
        scheduler = client.app[SCHEDULER]
        assert scheduler.running
        assert "monthly_mega_lottery" in scheduler.next_run_times()
    assert not scheduler.running

    off = Settings(database_url=database.url, catalog_files=(), reward_scheduler=False)
    async with TestClient(TestServer(create_app(off, platforms=False))) as client:
        assert SCHEDULER not in client.app


async def test_recent_runs_list_the_latest_first(database: Database) -> None:
    for hour in (1, 3, 2):
        fire = datetime(2026, 11, 18, hour, tzinfo=UTC)
        await runs.claim_run(database, "job", fire, owner="p", now=NOW, run_key=str(hour))
    async with database.write() as session:
        await session.execute(update(JobRun).values(status="done"))

    recent = await runs.recent_runs(database, job_id="job", limit=2)
    last = await runs.last_runs(database, ["job", "other"])

    assert [run.run_key for run in recent] == ["3", "2"]
    assert set(last) == {"job"}

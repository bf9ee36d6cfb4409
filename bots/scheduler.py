"""The scheduler: one APScheduler 3 `AsyncIOScheduler` per server process, running the catalogue's
`job`s and the built-in sweep, each fire time exactly once across every process.

How "exactly once" holds with several replicas, restarts and crashes:

- Every process schedules every job from the same triggers, so they agree on the fire times.
  Interval triggers are anchored at a fixed moment (2000-01-01 00:00 in the job's zone) rather
  than at process start, otherwise two replicas started a second apart would fire a second apart
  and both run.
- The body is told its *scheduled* fire time, not "now": `ClaimingExecutor` passes the run time
  APScheduler computed to the job function. (APScheduler's own jitter would shift that time
  randomly per process, so it is not used; jitter is a random pause before the claim instead.)
- Before the body runs, the process claims (job id, fire time in UTC) in `job_run`; a unique
  constraint lets one process through (`rewards.services.jobs`). The others skip.
- While the body runs, the owner refreshes the claim's heartbeat. Every process looks for
  "running" claims whose heartbeat stopped (their process died mid-run), takes one over and runs
  the body again with the same run key. Bodies are idempotent per run key (a lottery draws under
  ``draw_key = "<reward_id>:<run_key>"``, awards have unique keys), so the re-run finishes the work
  without repeating any of it: no draw is lost, none is doubled.

Misfires: a fire time may run up to `misfire_grace_time` seconds late (default
`DEFAULT_MISFIRE_GRACE`). Fire times that passed while no process was running are only caught up
at start when the job sets `misfire_grace_time` itself (then those within the grace run, once
each or coalesced); a date job whose date passed while down runs once unless `skip_past_dates`.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import logging
import os
import random
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from rewards.catalog.jobs import CRON_FIELDS, JobSpec
from rewards.catalog.loader import RewardDefinition
from rewards.catalog.model import RewardKind
from rewards.clock import as_utc
from rewards.core import Core
from rewards.errors import RewardsError
from rewards.rules.evaluate import EvaluationReport, evaluate_reward, sweep
from rewards.services import housekeeping
from rewards.services import jobs as runs
from rewards.services.announcements import NOWHERE, went_nowhere
from rewards.services.catalog import list_definitions
from rewards.store.models import JobRun

log = logging.getLogger("rewards.scheduler")

SWEEP_JOB_ID = "rewards.sweep"
NOMINATIONS_JOB_ID = "rewards.nominations"  # moves nomination campaigns through their phases
HOUSEKEEPING_JOB_ID = "rewards.housekeeping"  # prunes idempotency records, once a day
BUILT_IN_JOBS = (SWEEP_JOB_ID, NOMINATIONS_JOB_ID, HOUSEKEEPING_JOB_ID)
# A fire time may start this late (event loop busy, jitter) and still run.
DEFAULT_MISFIRE_GRACE = 300
# Claim liveness: the owner beats every HEARTBEAT seconds; after STALE_AFTER without a beat (five
# missed beats) the run counts as abandoned and another process takes it over.
HEARTBEAT_SECONDS = 2.0
STALE_AFTER_SECONDS = 10.0
REAP_EVERY_SECONDS = 3.0
# How long a stopping server waits for runs in progress before leaving them to a takeover.
STOP_GRACE_SECONDS = 10.0

_INTERVAL_ANCHOR = datetime(2000, 1, 1)

# Rewards whose jobs do something other than evaluating rules: they get their own body later
# (nomination campaigns, workflows); until then their jobs are listed as not scheduled.
_NOT_YET = {
    RewardKind.WORKFLOW: "Workflow Badge jobs advance workflows, which are not available yet",
}


@dataclass(frozen=True)
class RunOutcome:
    """What a job body did: DONE or SKIPPED, and a sentence for `job_run.detail` and the CLI."""

    status: str
    summary: str


Body = Callable[[Core, datetime, str], Awaitable[RunOutcome]]


@dataclass(frozen=True)
class ScheduledJob:
    """One job as this process schedules it."""

    id: str
    name: str
    description: str
    timezone: str
    trigger: BaseTrigger
    body: Body = field(repr=False)
    reward_id: int | None = None
    interval: timedelta | None = None  # interval jobs: fire times are anchor + k * interval
    anchor: datetime | None = None
    misfire_grace_time: int | None = DEFAULT_MISFIRE_GRACE
    catch_up: timedelta = timedelta(0)  # how far back to look for missed fire times at start
    coalesce: bool = True
    jitter: int = 0

    def fire_key(self, fire_time: datetime) -> datetime:
        """The claim key of a fire time: UTC, and for intervals snapped to the exact grid point,
        so float rounding in APScheduler can never make two processes disagree by a microsecond."""
        moment = as_utc(fire_time)
        if self.interval is not None and self.anchor is not None:
            steps = round((moment - self.anchor) / self.interval)
            moment = as_utc(self.anchor + self.interval * steps)
        return moment

    def next_fire_time(self, now: datetime) -> datetime | None:
        """The next scheduled fire time at or after `now` (aware, in the job's zone)."""
        result: datetime | None = self.trigger.get_next_fire_time(None, now)
        return result


@dataclass
class JobPlan:
    """The jobs to schedule, and a sentence for each catalogue job that is not scheduled."""

    jobs: dict[str, ScheduledJob] = field(default_factory=dict)
    not_scheduled: dict[str, str] = field(default_factory=dict)


# ---- bodies ---------------------------------------------------------------------------------


def summarise(report: EvaluationReport) -> RunOutcome:
    """What an evaluation did, in sentences: who was awarded (the winners, for a draw), who was
    skipped and why. A reward with nothing to evaluate is a skipped run."""
    name = report.reward_name or f"reward #{report.reward_id}"
    if report.error:
        return RunOutcome(runs.FAILED, f"{name}: {report.error}")
    if report.note:
        return RunOutcome(runs.SKIPPED, report.note)
    draw = f" (draw #{report.draw_run_id})" if report.draw_run_id is not None else ""
    if report.awarded:
        people = ", ".join(f"{view.member_name} (#{view.member_id})" for view in report.awarded)
        verb = "won" if report.draw_run_id is not None else "received"
        text = f"{name}{draw}: {people} {verb} it."
    else:
        text = f"{name}{draw}: nobody new was awarded."
    if report.skipped:
        reasons = "; ".join(f"#{member_id}: {reason}" for member_id, reason in report.skipped)
        text += f" Skipped {len(report.skipped)}: {reasons}"
    return RunOutcome(runs.DONE, text)


def scheduled_run_key(job_id: str, fire_time: datetime) -> str:
    """``<job id>:<fire time, UTC ISO>``: what a scheduled run's body is told, and so part of its
    lottery draw key (200 characters at most, so a very long job id is shortened to a hash)."""
    if len(job_id) > 120:
        job_id = "job-" + hashlib.sha256(job_id.encode()).hexdigest()[:16]
    return f"{job_id}:{as_utc(fire_time).isoformat()}"


def reward_body(reward_id: int) -> Body:
    """Evaluate one reward's rules for the run (lottery draws, birthdays, attendance...)."""

    async def body(core: Core, now: datetime, run_key: str) -> RunOutcome:
        report = await evaluate_reward(core, reward_id, now=now, run_key=run_key)
        return await _with_nowhere(core, summarise(report), [report])

    return body


async def _with_nowhere(
    core: Core, outcome: RunOutcome, reports: list[EvaluationReport]
) -> RunOutcome:
    """The outcome, saying which of the runs' announcements had nowhere to go (no channel, no
    reachable recipient), instead of them being dropped silently."""
    ids = [r.announcement_id for r in reports if r.announcement_id is not None]
    lost = await went_nowhere(core.db, ids=ids) if ids else []
    if not lost:
        return outcome
    notes = " ".join(f"Announcement #{a.announcement_id} ({a.title}) had {NOWHERE}." for a in lost)
    return RunOutcome(outcome.status, f"{outcome.summary} {notes}")


async def sweep_body(core: Core, now: datetime, run_key: str) -> RunOutcome:
    """Evaluate every reward with rules but no job of its own (awards are idempotent)."""
    reports = await sweep(core, now=now)
    failed = [summarise(report).summary for report in reports if report.error]
    awarded = [summarise(report).summary for report in reports if report.awarded]
    text = f"Swept {len(reports)} reward{'s' if len(reports) != 1 else ''}"
    text += f", {len(failed)} failed." if failed else "."
    if not awarded:
        text += " Nobody new was awarded."
    # One broken reward does not fail the sweep (the others ran); it is named first.
    return await _with_nowhere(
        core, RunOutcome(runs.DONE, " ".join([text, *failed, *awarded])), reports
    )


def nomination_body(reward_id: int) -> Body:
    """A Nomination Badge's job opens a campaign under the run key, so replicas open one."""

    async def body(core: Core, now: datetime, run_key: str) -> RunOutcome:
        try:
            view = await core.nominations.open(reward_id, by=None, key=run_key, now=now)
        except RewardsError as refused:  # e.g. the previous campaign is still open
            return RunOutcome(runs.SKIPPED, str(refused))
        return RunOutcome(
            runs.DONE,
            f"{view.reward_name}: campaign #{view.id} is {view.status} until "
            f"{view.nominations_close_at.isoformat()}.",
        )

    return body


async def nominations_body(core: Core, now: datetime, run_key: str) -> RunOutcome:
    """Move due nomination campaigns on (voting, closed with winners awarded, cancelled)."""
    changed = await core.nominations.advance(now)
    if not changed:
        return RunOutcome(runs.DONE, "No nomination campaign was due.")
    return RunOutcome(
        runs.DONE,
        "; ".join(f"{view.reward_name} campaign #{view.id}: {view.status}" for view in changed)
        + ".",
    )


async def housekeeping_body(core: Core, now: datetime, run_key: str) -> RunOutcome:
    """Prune the records that only guard against repeats (`rewards.services.housekeeping`)."""
    report = await housekeeping.prune(core.db, now=now)
    return RunOutcome(
        runs.DONE,
        f"Pruned {report.inbound_events} handled deliveries, {report.idempotency_keys} "
        f"idempotency keys, {report.conversations} expired conversations and "
        f"{report.link_codes} expired link codes.",
    )


def housekeeping_job() -> ScheduledJob:
    """The built-in daily clean-up, at 03:30 UTC (one replica runs it: runs are claimed)."""
    return ScheduledJob(
        id=HOUSEKEEPING_JOB_ID,
        name="Housekeeping: old delivery ids, idempotency keys, expired conversations",
        description="every day at 03:30 UTC",
        timezone="UTC",
        trigger=CronTrigger(hour=3, minute=30, timezone=UTC),
        body=housekeeping_body,
    )


def nominations_job() -> ScheduledJob:
    """The built-in job moving nomination campaigns through their phases, every minute."""
    anchor = _INTERVAL_ANCHOR.replace(tzinfo=UTC)
    return ScheduledJob(
        id=NOMINATIONS_JOB_ID,
        name="Nomination campaigns: phases and closing",
        description="every minute",
        timezone="UTC",
        trigger=IntervalTrigger(minutes=1, start_date=anchor, timezone=UTC),
        body=nominations_body,
        interval=timedelta(minutes=1),
        anchor=anchor,
    )


def body_for(definition: RewardDefinition) -> Body | str:
    """The body of a reward's job, or the sentence why it is not scheduled. One dispatch point, so
    the nomination and workflow bodies plug in here when they exist."""
    if definition.kind is RewardKind.NOMINATION:
        return nomination_body(definition.reward_id)
    reason = _NOT_YET.get(definition.kind)
    if reason is not None:
        return reason
    return reward_body(definition.reward_id)


# ---- triggers -------------------------------------------------------------------------------


def _localise(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def build_trigger(spec: JobSpec, zone_name: str, now: datetime) -> BaseTrigger | None:
    """The APScheduler trigger of a catalogue job (no jitter: see the module docstring); None for
    a date job that is past and skips past dates."""
    zone = ZoneInfo(zone_name)
    if spec.trigger == "cron" and spec.cron is not None:
        fields = {
            name: getattr(spec.cron, name)
            for name in CRON_FIELDS
            if getattr(spec.cron, name) is not None
        }
        return CronTrigger(
            **fields,
            start_date=_localise(spec.cron.start_date, zone),
            end_date=_localise(spec.cron.end_date, zone),
            timezone=zone,
        )
    if spec.trigger == "interval" and spec.interval is not None:
        return IntervalTrigger(
            seconds=spec.interval.length().total_seconds(),
            start_date=_INTERVAL_ANCHOR.replace(tzinfo=zone),
            timezone=zone,
        )
    run_at = spec.first_run(now, zone_name)
    return None if run_at is None else DateTrigger(run_date=run_at, timezone=zone)


def schedule_reward(
    definition: RewardDefinition, default_zone: str, now: datetime
) -> ScheduledJob | str:
    """The scheduled job of a reward with a `job`, or the sentence why it is not scheduled."""
    spec = definition.job
    assert spec is not None
    spec = spec.with_default_id(definition.reward_id)
    assert spec.id is not None
    body = body_for(definition)
    if isinstance(body, str):
        return f"{body}."
    zone_name = spec.timezone or default_zone
    trigger = build_trigger(spec, zone_name, now)
    if trigger is None:
        return "its date has passed and skip_past_dates is set."
    zone = ZoneInfo(zone_name)
    grace: int | None = spec.misfire_grace_time or DEFAULT_MISFIRE_GRACE
    catch_up = timedelta(seconds=spec.misfire_grace_time or 0)
    if spec.trigger == "date" and spec.run_date is not None:
        run_at = spec.first_run(now, zone_name)
        if run_at is not None and run_at <= now:
            # Due and never skipped: runs once however late (the claim makes it once ever).
            grace, catch_up = None, now - run_at
    interval = spec.interval.length() if spec.trigger == "interval" and spec.interval else None
    return ScheduledJob(
        id=spec.id,
        name=spec.name or definition.reward,
        description=spec.describe(),
        timezone=zone_name,
        trigger=trigger,
        body=body,
        reward_id=definition.reward_id,
        interval=interval,
        anchor=_INTERVAL_ANCHOR.replace(tzinfo=zone) if interval else None,
        misfire_grace_time=grace,
        catch_up=catch_up,
        coalesce=True if spec.coalesce is None else spec.coalesce,
        jitter=spec.jitter or 0,
    )


def sweep_job(minutes: int) -> ScheduledJob:
    """The built-in job evaluating rewards that have rules but no job, every `minutes`."""
    anchor = _INTERVAL_ANCHOR.replace(tzinfo=UTC)
    interval = timedelta(minutes=minutes)
    return ScheduledJob(
        id=SWEEP_JOB_ID,
        name="Sweep: rewards without a job of their own",
        description=f"every {minutes} minute{'s' if minutes != 1 else ''}",
        timezone="UTC",
        trigger=IntervalTrigger(minutes=minutes, start_date=anchor, timezone=UTC),
        body=sweep_body,
        interval=interval,
        anchor=anchor,
    )


def plan_jobs(
    definitions: Iterable[RewardDefinition], *, default_zone: str, sweep_minutes: int, now: datetime
) -> JobPlan:
    """Every job to schedule from enabled definitions, plus the sweep."""
    plan = JobPlan()
    for definition in definitions:
        if definition.job is None or not definition.enabled:
            continue
        job_id = definition.job.with_default_id(definition.reward_id).id or ""
        if job_id in BUILT_IN_JOBS:
            plan.not_scheduled[f"{job_id} (reward {definition.reward_id})"] = (
                f'the job id "{job_id}" is a built-in job\'s; give this job another id.'
            )
            continue
        if job_id in plan.jobs or job_id in plan.not_scheduled:
            plan.not_scheduled[f"{job_id} (reward {definition.reward_id})"] = (
                f'the job id "{job_id}" is already used by another job; give this one its own id.'
            )
            continue
        scheduled = schedule_reward(definition, default_zone, now)
        if isinstance(scheduled, str):
            plan.not_scheduled[job_id] = scheduled
        else:
            plan.jobs[job_id] = scheduled
    plan.jobs[SWEEP_JOB_ID] = sweep_job(sweep_minutes)
    plan.jobs[NOMINATIONS_JOB_ID] = nominations_job()
    plan.jobs[HOUSEKEEPING_JOB_ID] = housekeeping_job()
    return plan


async def load_plan(core: Core, now: datetime | None = None) -> JobPlan:
    """The jobs of the stored catalogue (what `rewards serve` loaded)."""
    definitions = await list_definitions(core.db, enabled=True)
    return plan_jobs(
        definitions,
        default_zone=core.settings.timezone,
        sweep_minutes=core.settings.sweep_minutes,
        now=now or datetime.now(UTC),
    )


@dataclass(frozen=True)
class JobState:
    """One job as `rewards jobs list` and `GET /rewards/api/v1/jobs` show it."""

    job: ScheduledJob
    next_run: datetime | None  # the next fire time (None: none left; before `now`: due)
    finished: bool  # a one-time job whose fire time passed and that has run
    last_run: JobRun | None


async def job_states(core: Core) -> tuple[JobPlan, list[JobState], datetime]:
    """The stored catalogue's plan, each job with its next and last run, and the `now` used."""
    plan = await load_plan(core)
    last = await runs.last_runs(core.db, list(plan.jobs))
    now = datetime.now(UTC)
    states = []
    for job in plan.jobs.values():
        upcoming = job.next_fire_time(now)
        finished = upcoming is not None and upcoming < now and job.id in last
        states.append(JobState(job, upcoming, finished, last.get(job.id)))
    return plan, states, now


def unknown_job(job_id: str, plan: JobPlan) -> str:
    """Why `job_id` cannot run: not scheduled (and why), or unknown (with close matches)."""
    reason = plan.not_scheduled.get(job_id)
    if reason is not None:
        return f'The job "{job_id}" is not scheduled: {reason}'
    close = difflib.get_close_matches(job_id, list(plan.jobs), n=3, cutoff=0.5)
    hint = (
        f" Did you mean {' or '.join(close)}?" if close else " `rewards jobs list` shows the jobs."
    )
    return f'There is no job "{job_id}".{hint}'


# ---- running --------------------------------------------------------------------------------


def process_owner(prefix: str = "") -> str:
    """Who holds a claim: host, pid and a random part (pids are reused after restarts)."""
    return f"{prefix}{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


async def execute(
    core: Core,
    job: ScheduledJob,
    claim: runs.Claim,
    *,
    now: datetime,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> RunOutcome:
    """Run the body for a claim we hold, beating while it runs, and finish the claim.

    A failing body ends the run as failed with the error as its detail (logged with its stack);
    the next fire time runs as usual."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(heartbeat_seconds)
            try:
                if not await runs.heartbeat(core.db, claim, now=datetime.now(UTC)):
                    log.warning(
                        "job %s run at %s is no longer ours (taken over or finished)",
                        job.id,
                        claim.fire_time.isoformat(),
                    )
                    return
            except Exception:  # a database hiccup: keep beating
                log.warning("job %s: heartbeat failed", job.id, exc_info=True)

    beating = asyncio.create_task(beat())
    started = time.perf_counter()
    try:
        outcome = await job.body(core, now, claim.run_key)
    except Exception as error:
        log.exception("job %s run at %s failed", job.id, claim.fire_time.isoformat())
        outcome = RunOutcome(
            runs.FAILED,
            f"The run failed: {error}"
            if str(error)
            else f"The run failed ({type(error).__name__}).",
        )
    finally:
        beating.cancel()
    core.signals.job_finished(job.id, outcome.status == runs.FAILED, time.perf_counter() - started)
    await runs.finish_run(
        core.db, claim, now=datetime.now(UTC), status=outcome.status, detail=outcome.summary
    )
    return outcome


async def run_now(core: Core, job: ScheduledJob, *, owner: str) -> RunOutcome:
    """`rewards jobs run`: run a job's body now under run key ``manual:<UTC ISO time>``."""
    now = datetime.now(UTC)
    run_key = f"manual:{now.isoformat()}"
    claim = await runs.claim_run(core.db, job.id, now, owner=owner, now=now, run_key=run_key)
    if claim is None:
        return RunOutcome(runs.SKIPPED, "Another run of this job started at the same instant.")
    return await execute(core, job, claim, now=now)


MAX_OVERLAPPING_RUNS = 3
"""Fire times of one job that may run at once in one process. Each fire time has its own claim
and run key, so a run that outlasts its interval (a slow database, a busy machine, a process
that just started) must not make APScheduler skip the next fire time, as its default of one
instance does: that fire time would then be drawn by no process at all. Three bounds the pile-up
of a job that is always slower than its interval."""


class ClaimingExecutor(AsyncIOExecutor):  # type: ignore[misc]
    """An AsyncIOExecutor that hands each run's scheduled fire time to the job function (as
    ``fire_time=``), which APScheduler 3's own executors do not. Misfire handling and events are
    APScheduler's, per run time."""

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        async def run() -> list[JobExecutionEvent]:
            events = []
            for run_time in run_times:
                if job.misfire_grace_time is not None:
                    late = datetime.now(UTC) - run_time
                    if late > timedelta(seconds=job.misfire_grace_time):
                        log.warning(
                            "job %s: the run at %s was missed by %s", job.id, run_time, late
                        )
                        events.append(
                            JobExecutionEvent(
                                EVENT_JOB_MISSED, job.id, job._jobstore_alias, run_time
                            )
                        )
                        continue
                try:
                    value = await job.func(*job.args, fire_time=run_time, **job.kwargs)
                except Exception as error:
                    log.exception("job %s raised", job.id)
                    events.append(
                        JobExecutionEvent(
                            EVENT_JOB_ERROR, job.id, job._jobstore_alias, run_time, exception=error
                        )
                    )
                else:
                    events.append(
                        JobExecutionEvent(
                            EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, run_time, retval=value
                        )
                    )
            return events

        def done(future: asyncio.Future[list[JobExecutionEvent]]) -> None:
            self._pending_futures.discard(future)
            try:
                events = future.result()
            except BaseException:
                self._run_job_error(job.id, *sys.exc_info()[1:])
            else:
                self._run_job_success(job.id, events)

        task = self._eventloop.create_task(run())
        task.add_done_callback(done)
        self._pending_futures.add(task)


class RewardScheduler:
    """The process's scheduler: APScheduler for the fire times, `job_run` claims for exactly-once,
    and a reaper task that takes over runs abandoned by dead processes."""

    def __init__(
        self,
        core: Core,
        *,
        owner: str | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        stale_after_seconds: float = STALE_AFTER_SECONDS,
        reap_every_seconds: float = REAP_EVERY_SECONDS,
    ) -> None:
        self.core = core
        self.owner = owner or process_owner()
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_after = timedelta(seconds=stale_after_seconds)
        self.reap_every = reap_every_seconds
        self.plan = JobPlan()
        self._executor = ClaimingExecutor()
        self._scheduler = AsyncIOScheduler(
            timezone=ZoneInfo(core.settings.timezone), executors={"default": self._executor}
        )
        self._reaper: asyncio.Task[None] | None = None
        self._takeovers: set[asyncio.Task[RunOutcome]] = set()

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    async def start(self, plan: JobPlan | None = None) -> None:
        now = datetime.now(UTC)
        self.plan = plan or await load_plan(self.core, now)
        for note_id, reason in self.plan.not_scheduled.items():
            log.info("job %s is not scheduled: %s", note_id, reason)
        for job in self.plan.jobs.values():
            self._scheduler.add_job(
                self._fire,
                trigger=job.trigger,
                args=(job.id,),
                id=job.id,
                name=job.name,
                misfire_grace_time=job.misfire_grace_time,
                coalesce=job.coalesce,
                max_instances=MAX_OVERLAPPING_RUNS,
                replace_existing=True,
                next_run_time=job.trigger.get_next_fire_time(None, now - job.catch_up),
            )
        self._scheduler.start()
        self._reaper = asyncio.create_task(self._reap_forever())
        log.info("scheduler started as %s with %d jobs", self.owner, len(self.plan.jobs))

    async def stop(self) -> None:
        """Stop firing, give runs in progress a moment to finish, then stop. A run still going
        after that keeps its claim and is taken over by another process."""
        if not self._scheduler.running:
            return
        self._scheduler.pause()
        if self._reaper is not None:
            self._reaper.cancel()
        pending = set(self._executor._pending_futures) | self._takeovers
        if pending:
            await asyncio.wait(pending, timeout=STOP_GRACE_SECONDS)
        running = [*self._executor._pending_futures, *self._takeovers]
        leftovers = [task for task in (self._reaper, *running) if task is not None]
        for task in leftovers:
            task.cancel()
        # Wait for the cancelled tasks to unwind now, while the database is still open: a task
        # cancelled mid-query and left for the event loop's shutdown would clean its connection
        # up against a closed pool, and the loop's close then never ends.
        await asyncio.gather(*leftovers, return_exceptions=True)
        self._scheduler.shutdown(wait=False)
        # AsyncIOScheduler.shutdown only schedules itself on the loop (`run_in_event_loop`): let
        # it happen before the database it would use is closed.
        await asyncio.sleep(0)
        log.info("scheduler stopped")

    def next_run_times(self) -> dict[str, datetime | None]:
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}

    async def _fire(self, job_id: str, fire_time: datetime | None = None) -> RunOutcome | None:
        # `fire_time` comes from ClaimingExecutor; the default only satisfies APScheduler's check
        # of the function's signature when the job is added.
        if fire_time is None:
            raise RuntimeError("The scheduler ran a job without its fire time.")
        job = self.plan.jobs[job_id]
        key = job.fire_key(fire_time)
        if job.jitter:
            await asyncio.sleep(random.uniform(0, job.jitter))
        claim = await runs.claim_run(
            self.core.db,
            job.id,
            key,
            owner=self.owner,
            now=datetime.now(UTC),
            run_key=scheduled_run_key(job.id, key),
        )
        if claim is None:
            log.debug("job %s at %s: claimed by another process", job.id, key.isoformat())
            return None
        log.info("job %s: running the fire time %s", job.id, key.isoformat())
        outcome = await execute(
            self.core, job, claim, now=key, heartbeat_seconds=self.heartbeat_seconds
        )
        log.info("job %s at %s: %s: %s", job.id, key.isoformat(), outcome.status, outcome.summary)
        return outcome

    async def reap_once(self) -> list[runs.Claim]:
        """Take over abandoned runs of jobs this process knows and start running them again."""
        claims = await runs.take_over_stale(
            self.core.db,
            owner=self.owner,
            now=datetime.now(UTC),
            stale_after=self.stale_after,
            job_ids=list(self.plan.jobs),
        )
        for claim in claims:
            job = self.plan.jobs[claim.job_id]
            log.warning(
                "job %s: taking over the run at %s (attempt %d), abandoned by a stopped process",
                job.id,
                claim.fire_time.isoformat(),
                claim.attempts,
            )
            now = claim.fire_time if not claim.run_key.startswith("manual:") else datetime.now(UTC)
            task = asyncio.create_task(
                execute(self.core, job, claim, now=now, heartbeat_seconds=self.heartbeat_seconds)
            )
            self._takeovers.add(task)
            task.add_done_callback(self._takeovers.discard)
        return claims

    async def _reap_forever(self) -> None:
        while True:
            try:
                await self.reap_once()
            except Exception:  # the database may be briefly away; try again next round
                log.warning("scheduler: looking for abandoned runs failed", exc_info=True)
            await asyncio.sleep(self.reap_every)

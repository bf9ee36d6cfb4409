"""`rewards jobs list` and `rewards jobs run JOB_ID`: the scheduler's jobs from the command line.

`list` computes next run times with the same trigger objects the server schedules (no scheduler
is started). `run` runs one job's body now, claimed like a scheduled run under the run key
``manual:<UTC time>``, so it is recorded in the run history and a lottery draws a new, separate
draw. Exit codes: 0 done or skipped; 1 the run failed, or there is no such job.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from bots.commands.common import with_database
from bots.scheduler import (
    JobPlan,
    JobState,
    RunOutcome,
    job_states,
    load_plan,
    process_owner,
    run_now,
    unknown_job,
)
from rewards.core import Core
from rewards.services import jobs as runs
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import JobRun


@click.group()
def jobs() -> None:
    """Scheduled jobs: lotteries, birthdays, the sweep."""


def _when(moment: datetime | None, zone: str, now: datetime) -> str:
    if moment is None:
        return "never (no fire time left)"
    local = moment.strftime("%Y-%m-%d %H:%M:%S %Z")
    utc = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    text = local if zone == "UTC" else f"{local} ({utc})"
    # A date job whose date passed without skip_past_dates runs once, at the next start.
    return f"due since {text}" if moment < now else text


def _last(run: JobRun | None) -> str:
    if run is None:
        return "never"
    text = f"{run.status}, fire time {run.fire_time.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    return text + (f": {run.detail}" if run.detail else "")


@jobs.command("list")
def list_command() -> None:
    """Every job with its trigger, time zone, next run time and last run."""

    async def work(
        db: Database, settings: Settings
    ) -> tuple[JobPlan, list[JobState], datetime, bool]:
        core = Core(settings=settings, db=db)
        plan, states, now = await job_states(core)
        return plan, states, now, settings.reward_scheduler

    plan, states, now, enabled = with_database(work)
    if not enabled:
        click.echo("note: REWARD_SCHEDULER is off, so `rewards serve` runs none of these.")
    for state in states:
        job = state.job
        reward = f"reward #{job.reward_id}" if job.reward_id is not None else "built-in"
        click.echo(f"{job.id}  ({job.name}, {reward})")
        click.echo(f"  trigger:   {job.description}")
        click.echo(f"  time zone: {job.timezone}")
        if state.finished:
            next_text = "none (a one-time job that has run)"
        else:
            next_text = _when(state.next_run, job.timezone, now)
        click.echo(f"  next run:  {next_text}")
        click.echo(f"  last run:  {_last(state.last_run)}")
    for job_id, reason in plan.not_scheduled.items():
        click.echo(f"{job_id}  not scheduled: {reason}")


@jobs.command("run")
@click.argument("job_id")
def run_command(job_id: str) -> None:
    """Run JOB_ID now (a reward's job, or rewards.sweep) and say what happened."""

    async def work(db: Database, settings: Settings) -> RunOutcome | str:
        core = Core(settings=settings, db=db)
        plan = await load_plan(core)
        job = plan.jobs.get(job_id)
        if job is None:
            return unknown_job(job_id, plan)
        return await run_now(core, job, owner=process_owner("cli:"))

    result = with_database(work)
    if isinstance(result, str):
        click.echo(f"Error: {result}", err=True)
        sys.exit(1)
    click.echo(f"{job_id}: {result.status}")
    click.echo(result.summary)
    sys.exit(1 if result.status == runs.FAILED else 0)

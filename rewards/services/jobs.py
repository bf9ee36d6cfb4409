"""Scheduler run claims: which process runs each (job, fire time), exactly once.

Every process of a deployment runs the same scheduler with the same jobs, so every process sees
every fire time. Before running a job body a process inserts a `job_run` row for
(job id, scheduled fire time) with ``INSERT .. ON CONFLICT DO NOTHING``; the unique constraint
lets exactly one insert through, and only that process runs the body. The rest is bookkeeping
around that one row:

- the owner refreshes `heartbeat_at` while the body runs (`heartbeat`);
- it ends the run as done, skipped or failed (`finish_run`), only while it still owns it;
- a "running" row whose heartbeat stopped belongs to a process that died mid-run. Another process
  takes it over (`take_over_stale`: a conditional UPDATE, so one taker wins) and runs the body
  again with the same run key. Job bodies are idempotent per run key (lottery draw keys, award
  keys), so the re-run completes the work without repeating any of it.

Pure SQL: the scheduler itself lives under `bots/` (this layer may not import APScheduler).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from rewards.clock import as_utc
from rewards.store.db import Database
from rewards.store.models import JobRun

RUNNING = "running"
DONE = "done"
SKIPPED = "skipped"
FAILED = "failed"
STATUSES = (RUNNING, DONE, SKIPPED, FAILED)

_DETAIL_MAX = 4000


@dataclass(frozen=True)
class Claim:
    """A run this process owns: it may run the body and must finish the run."""

    id: int
    job_id: str
    fire_time: datetime
    run_key: str
    owner: str
    attempts: int


def _rowcount(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


async def claim_run(
    db: Database, job_id: str, fire_time: datetime, *, owner: str, now: datetime, run_key: str
) -> Claim | None:
    """Claim (job_id, fire_time) for `owner`; None when any process (this one included) already
    claimed it, whatever became of that run."""
    fire_time = as_utc(fire_time)
    now = as_utc(now)
    values = {
        "job_id": job_id,
        "fire_time": fire_time,
        "run_key": run_key,
        "claimed_by": owner,
        "claimed_at": now,
        "heartbeat_at": now,
        "attempts": 1,
        "status": RUNNING,
    }
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    statement = (
        insert(JobRun)
        .values(values)
        .on_conflict_do_nothing(index_elements=["job_id", "fire_time"])
        .returning(col(JobRun.id))
    )
    async with db.write() as session:
        ident = (await session.execute(statement)).scalar_one_or_none()
    if ident is None:
        return None
    return Claim(
        id=int(ident),
        job_id=job_id,
        fire_time=fire_time,
        run_key=run_key,
        owner=owner,
        attempts=1,
    )


def _owned(claim: Claim) -> list[Any]:
    return [
        col(JobRun.id) == claim.id,
        col(JobRun.claimed_by) == claim.owner,
        col(JobRun.status) == RUNNING,
    ]


async def heartbeat(db: Database, claim: Claim, *, now: datetime) -> bool:
    """Tell the other processes this run is alive; False when it is no longer ours (taken over
    after this process stalled, or already finished)."""
    async with db.write() as session:
        result = await session.execute(
            update(JobRun).where(*_owned(claim)).values(heartbeat_at=as_utc(now))
        )
    return _rowcount(result) == 1


async def finish_run(
    db: Database, claim: Claim, *, now: datetime, status: str = DONE, detail: str | None = None
) -> bool:
    """End a run we own as done, skipped or failed, with a sentence saying what happened.

    False when the run was taken over meanwhile: the taker finishes it (the bodies are
    idempotent, so both did the same work once)."""
    if status not in (DONE, SKIPPED, FAILED):
        raise ValueError(f"A run ends as done, skipped or failed, not {status!r}.")
    now = as_utc(now)
    async with db.write() as session:
        result = await session.execute(
            update(JobRun)
            .where(*_owned(claim))
            .values(
                status=status,
                finished_at=now,
                heartbeat_at=now,
                detail=detail[:_DETAIL_MAX] if detail else None,
            )
        )
    return _rowcount(result) == 1


async def fail_run(db: Database, claim: Claim, *, now: datetime, detail: str) -> bool:
    return await finish_run(db, claim, now=now, status=FAILED, detail=detail)


async def take_over_stale(
    db: Database,
    *,
    owner: str,
    now: datetime,
    stale_after: timedelta,
    job_ids: Collection[str] | None = None,
    max_attempts: int = 3,
    limit: int = 20,
) -> list[Claim]:
    """Take over "running" runs whose heartbeat is older than `stale_after` and return them for
    `owner` to run again.

    Each takeover is a conditional UPDATE on the row as it was read (same owner, still stale), so
    when several processes try at once exactly one wins. `job_ids` limits it to jobs this process
    knows how to run. A run that already had `max_attempts` owners is marked failed instead: a body
    that kills its process every time must not take the whole deployment down in turn.
    """
    now = as_utc(now)
    cutoff = now - stale_after
    query = (
        select(JobRun)
        .where(col(JobRun.status) == RUNNING, col(JobRun.heartbeat_at) < cutoff)
        .order_by(col(JobRun.fire_time))
        .limit(limit)
    )
    if job_ids is not None:
        query = query.where(col(JobRun.job_id).in_(list(job_ids)))
    async with db.read() as session:
        stale = list((await session.scalars(query)).all())
    taken: list[Claim] = []
    for run in stale:
        conditions = [
            col(JobRun.id) == run.id,
            col(JobRun.status) == RUNNING,
            col(JobRun.claimed_by) == run.claimed_by,
            col(JobRun.heartbeat_at) < cutoff,
        ]
        give_up = run.attempts >= max_attempts
        values: dict[str, Any] = (
            {
                "status": FAILED,
                "finished_at": now,
                "detail": (
                    f"Abandoned after {run.attempts} attempts: each process that ran it "
                    f"stopped before finishing (last: {run.claimed_by})."
                ),
            }
            if give_up
            else {"claimed_by": owner, "heartbeat_at": now, "attempts": run.attempts + 1}
        )
        async with db.write() as session:
            result = await session.execute(update(JobRun).where(*conditions).values(**values))
        if _rowcount(result) == 1 and not give_up:
            taken.append(
                Claim(
                    id=int(run.id or 0),
                    job_id=run.job_id,
                    fire_time=run.fire_time,
                    run_key=run.run_key,
                    owner=owner,
                    attempts=run.attempts + 1,
                )
            )
    return taken


async def recent_runs(db: Database, *, job_id: str | None = None, limit: int = 20) -> list[JobRun]:
    """The latest runs, newest fire time first, optionally of one job."""
    query = select(JobRun).order_by(col(JobRun.fire_time).desc(), col(JobRun.id).desc())
    if job_id is not None:
        query = query.where(col(JobRun.job_id) == job_id)
    async with db.read() as session:
        return list((await session.scalars(query.limit(limit))).all())


async def last_runs(db: Database, job_ids: Collection[str]) -> dict[str, JobRun]:
    """The latest run (the highest id: ids grow with claim time) of each of `job_ids` that ran."""
    if not job_ids:
        return {}
    newest = (
        select(func.max(col(JobRun.id)))
        .where(col(JobRun.job_id).in_(list(job_ids)))
        .group_by(col(JobRun.job_id))
    )
    async with db.read() as session:
        runs = (await session.scalars(select(JobRun).where(col(JobRun.id).in_(newest)))).all()
    return {run.job_id: run for run in runs}

"""The daily housekeeping job prunes what only guards against repeats, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bots.scheduler import HOUSEKEEPING_JOB_ID, plan_jobs
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.membership import issue_code
from rewards.services import housekeeping
from rewards.services.apikeys import create_key
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import ApiIdempotency, ConversationState, InboundEvent, Kudos, LinkCode
from tests.factories import add_member

NOW = datetime(2026, 11, 18, 3, 30, tzinfo=UTC)


async def _count(db: Database, model: type) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_prune_keeps_recent_records_and_everything_else(
    database: Database, clock: FixedClock
) -> None:
    key, _ = await create_key(database, "intranet", "write")
    ana, li = await add_member(database, "Ana"), await add_member(database, "Li")
    await Core(settings=Settings(), db=database, clock=clock).kudos.give(ana, [li], "Thanks")
    async with database.write() as session:
        for n, age in enumerate((31, 29)):  # days
            received = NOW - timedelta(days=age)
            session.add(InboundEvent(platform="rabbitmq", event_id=f"e{n}", received_at=received))
            session.add(
                ApiIdempotency(
                    api_key_id=key.id,
                    key=f"k{n}",
                    route="POST /kudos",
                    status=201,
                    created_at=NOW - timedelta(days=age - 22),  # 9 and 7 days
                )
            )
        for chat, expires in (("old", NOW - timedelta(seconds=1)), ("live", NOW + timedelta(1))):
            session.add(
                ConversationState(
                    platform="teams",
                    chat=chat,
                    user_id="u",
                    dialog="kudos",
                    step="message",
                    nonce="n",
                    expires_at=expires,
                    updated_at=NOW,
                )
            )

    report = await housekeeping.prune(database, now=NOW)

    assert (report.inbound_events, report.idempotency_keys, report.conversations) == (1, 1, 1)
    async with database.read() as session:
        assert (await session.scalars(select(InboundEvent.event_id))).all() == ["e1"]
        assert (await session.scalars(select(ApiIdempotency.key))).all() == ["k1"]
        assert (await session.scalars(select(ConversationState.chat))).all() == ["live"]
    assert await _count(database, Kudos) == 1  # records of what happened are never touched
    assert (await housekeeping.prune(database, now=NOW)).total == 0


def test_the_housekeeping_job_runs_daily_at_half_past_three_utc() -> None:
    plan = plan_jobs([], default_zone="Europe/Madrid", sweep_minutes=60, now=NOW)
    job = plan.jobs[HOUSEKEEPING_JOB_ID]
    assert job.reward_id is None
    assert job.next_fire_time(NOW + timedelta(minutes=1)) == NOW + timedelta(days=1)
    assert job.next_fire_time(NOW - timedelta(minutes=1)) == NOW


async def test_prune_drops_link_codes_a_day_after_they_expired(database: Database) -> None:
    ana = await add_member(database, "Ana")
    await issue_code(database, ana, "slack", clock=FixedClock(NOW - timedelta(days=2)))
    li = await add_member(database, "Li")
    await issue_code(database, li, "slack", clock=FixedClock(NOW - timedelta(hours=2)))

    report = await housekeeping.prune(database, now=NOW)

    assert report.link_codes == 1
    async with database.read() as session:
        assert (await session.scalars(select(LinkCode.member_id))).all() == [li]

"""The batch award path behaves like the single award: once-only, timeframes, idempotency keys,
refusals, ledger and outbox rows, re-runs that write nothing; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from rewards.awarding.batch import Wanted, award_batch
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.errors import AlreadyAwarded, InvalidInput
from rewards.rules.evaluate import evaluate_reward
from rewards.services.announcements import announce_awards
from rewards.services.awards import AwardSource
from rewards.settings import EventManagerSettings, Settings
from rewards.store.db import Database
from rewards.store.models import Announcement, AnnouncePending, Award, LedgerEntry, OutboxEvent
from tests.factories import add_member, add_reward


def _core(database: Database, clock: FixedClock, **settings: Any) -> Core:
    return Core(settings=Settings(**settings), db=database, clock=clock)


async def _count(db: Database, model: Any) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _people(db: Database, n: int) -> list[int]:
    return [await add_member(db, f"person{i}") for i in range(n)]


async def test_a_once_only_reward_is_awarded_once_whichever_path_came_first(
    database: Database, clock: FixedClock
) -> None:
    core = _core(database, clock)
    await add_reward(database, reward_id=1, reward_type="Achievement Badge", points=25)
    ana, bo, cy = await _people(database, 3)
    await core.awards.award(1, ana, source=AwardSource.RULE)  # the single path first

    first = await award_batch(core.awards, 1, [Wanted(ana), Wanted(bo), Wanted(cy)])

    assert [v.member_id for v in first.awarded] == [bo, cy]
    assert first.skipped == [(ana, "They already have Badge 1.")]
    assert all(v.points == 25 and v.source == "rule" for v in first.awarded)
    again = await award_batch(core.awards, 1, [Wanted(ana), Wanted(bo), Wanted(cy)])
    assert again.awarded == [] and [m for m, _ in again.skipped] == [ana, bo, cy]
    with pytest.raises(AlreadyAwarded):  # and the single path sees the batch's awards
        await core.awards.award(1, bo, source=AwardSource.RULE)
    assert await _count(database, Award) == 3
    async with database.read() as session:
        points = await session.scalar(select(func.sum(col(LedgerEntry.points))))
    assert points == 75


async def test_a_timeframe_allows_one_award_per_bucket(
    database: Database, clock: FixedClock
) -> None:
    core = _core(database, clock)
    await add_reward(
        database, reward_id=2, reward_type="Achievement Badge", multiple=True, timeframe="daily"
    )
    members = await _people(database, 4)
    wanted = [Wanted(m) for m in members]

    assert len((await award_batch(core.awards, 2, wanted)).awarded) == 4
    clock.advance(timedelta(hours=2))
    assert (await award_batch(core.awards, 2, wanted)).awarded == []
    clock.advance(timedelta(days=1))
    assert len((await award_batch(core.awards, 2, wanted)).awarded) == 4
    assert await _count(database, Award) == 8


async def test_idempotency_keys_batches_and_a_rerun_that_writes_nothing(
    database: Database, clock: FixedClock
) -> None:
    core = _core(database, clock)
    await add_reward(
        database,
        reward_id=3,
        reward_type="Achievement Badge",
        multiple=True,
        message="Well done {{ user.first_name }}: {{ args.value }}",
    )
    members = await _people(database, 7)
    wanted = [Wanted(m, f"run-1:m{m}", {"value": i}) for i, m in enumerate(members)]

    made = await award_batch(core.awards, 3, wanted, batch_size=3)  # three transactions

    assert [v.member_id for v in made.awarded] == members
    assert made.awarded[2].message == "Well done person2: 2"
    ledger = await _count(database, LedgerEntry)
    rerun = await award_batch(core.awards, 3, wanted, batch_size=3)
    assert rerun.awarded == [] and len(rerun.skipped) == 7
    assert rerun.skipped[0][1] == "They already have Badge 3."
    assert (await _count(database, Award), await _count(database, LedgerEntry)) == (7, ledger)


async def test_refusals_are_skips_with_the_single_awards_sentences(
    database: Database, clock: FixedClock
) -> None:
    core = _core(database, clock)
    await add_reward(
        database,
        reward_id=4,
        reward_type="Achievement Badge",
        awardee=[{"job_code": ["EMPLOYEE"]}],
    )
    ok = await add_member(database, "ok")
    manager = await add_member(database, "boss", job_code="MANAGER")
    gone = await add_member(database, "gone", active=False)

    result = await award_batch(
        core.awards, 4, [Wanted(ok), Wanted(manager), Wanted(gone), Wanted(999)]
    )

    assert [v.member_id for v in result.awarded] == [ok]
    reasons = dict(result.skipped)
    for member_id in (manager, gone):
        with pytest.raises(Exception) as single:
            await core.awards.award(4, member_id, source=AwardSource.RULE)
        assert reasons[member_id] == str(single.value)
    assert reasons[999] == "I don't know a member with id 999."
    with pytest.raises(InvalidInput):
        await award_batch(core.awards, 4, [Wanted(ok)], source=AwardSource.DIALOG)


async def test_concurrent_batches_award_each_member_once(
    database: Database, clock: FixedClock
) -> None:
    core = _core(database, clock)
    await add_reward(database, reward_id=5, reward_type="Achievement Badge")
    wanted = [Wanted(m) for m in await _people(database, 12)]

    results = await asyncio.gather(*(award_batch(core.awards, 5, wanted) for _ in range(3)))

    assert sum(len(r.awarded) for r in results) == 12
    assert await _count(database, Award) == 12


async def test_outbox_rows_for_exactly_the_inserted_awards(
    database: Database, clock: FixedClock
) -> None:
    core = _core(database, clock, event_manager=EventManagerSettings(enabled=True))
    await add_reward(database, reward_id=6, reward_type="Achievement Badge", points=5)
    members = await _people(database, 3)
    await core.awards.award(6, members[0], source=AwardSource.RULE)
    async with database.read() as session:
        single = (await session.scalars(select(OutboxEvent))).one().payload

    made = await award_batch(core.awards, 6, [Wanted(m) for m in members])

    async with database.read() as session:
        rows = list(await session.scalars(select(OutboxEvent).order_by(col(OutboxEvent.id))))
    assert len(rows) == 3 and {r.type for r in rows} == {"badge.awarded"}
    payloads = [r.payload for r in rows[1:]]
    assert [p["award_id"] for p in payloads] == [v.id for v in made.awarded]
    assert set(payloads[0]) == set(single)
    assert {k: v for k, v in payloads[0].items() if k not in ("award_id", "member")} == {
        k: v for k, v in single.items() if k not in ("award_id", "member")
    }


async def test_a_sweep_fires_badge_awarded_for_each_member_and_a_rerun_awards_nothing(
    database: Database, clock: FixedClock
) -> None:
    core = _core(database, clock)
    await add_reward(
        database, reward_id=7, reward_type="Achievement Badge", rules=[["Birthday"]], points=10
    )
    await add_reward(
        database,
        reward_id=8,
        reward_type="Automated Badge",
        events=["badge.awarded"],
        multiple=True,
        points=1,
    )
    today = (clock.now().month, clock.now().day)
    born = [await add_member(database, f"b{i}", birthday=today) for i in range(3)]
    await add_member(database, "other", birthday=(1, 1))

    first = await evaluate_reward(core, 7, now=clock.now(), run_key="t:1")
    again = await evaluate_reward(core, 7, now=clock.now(), run_key="t:1")

    assert first.awarded_ids == born and first.announcement_id is not None
    assert again.awarded == [] and again.announcement_id is None
    async with database.read() as session:
        bonus = (await session.scalars(select(Award.member_id).where(Award.reward_id == 8))).all()  # type: ignore[arg-type]
    assert sorted(bonus) == born


@pytest.mark.parametrize(
    ("moment", "auckland_bucket"),
    [
        (datetime(2026, 11, 18, 15, 0, tzinfo=UTC), "2026-11"),  # every zone in November
        (datetime(2026, 11, 30, 20, 0, tzinfo=UTC), "2026-12"),  # Auckland already in December
    ],
)
async def test_a_monthly_bucket_follows_each_members_zone_on_either_side_of_the_month_end(
    database: Database, moment: datetime, auckland_bucket: str
) -> None:
    """Mid-month every zone shares the bucket, so the batch reads no zone; at the month's end
    it reads them, and a member already in the next month gets that month's key."""
    core = _core(database, FixedClock(moment), timezone="America/New_York")
    await add_reward(
        database, reward_id=3, reward_type="Achievement Badge", multiple=True, timeframe="monthly"
    )
    kiwi = await add_member(database, "kiwi", timezone="Pacific/Auckland")
    yank = await add_member(database, "yank", timezone="America/New_York")

    made = await award_batch(core.awards, 3, [Wanted(kiwi), Wanted(yank)])

    assert len(made.awarded) == 2
    async with database.read() as session:
        keys = dict((await session.execute(select(Award.member_id, Award.award_key))).all())
    assert keys == {kiwi: f"r3:m{kiwi}:{auckland_bucket}", yank: f"r3:m{yank}:2026-11"}


async def test_a_run_still_writing_while_another_announces_has_each_award_announced_once(
    database: Database, clock: FixedClock
) -> None:
    """Another run may announce a run's first batches while that run is still writing: its
    later batches are announced by the next announcement, and no award is named twice."""
    core = _core(database, clock)
    await add_reward(database, reward_id=9, reward_type="Achievement Badge", multiple=True)
    members = await _people(database, 5)

    async def announce() -> list[int]:
        return await announce_awards(
            database, core.settings, reward_id=9, kind="award", title="Badge 9", now=clock.now()
        )

    first = await award_batch(
        core.awards, 9, [Wanted(m, f"a:{m}") for m in members[:3]], batch_size=2, announce_as="A"
    )
    assert len(await announce()) == 1  # another run announces the batches written so far
    rest = await award_batch(
        core.awards, 9, [Wanted(m, f"a:{m}") for m in members[3:]], announce_as="A"
    )
    assert len(await announce()) == 1  # the run's own announcement names only the rest
    assert await announce() == []  # and nothing is left to announce

    async with database.read() as session:
        announced = list(await session.scalars(select(Announcement).order_by(col(Announcement.id))))
        pending = list(await session.scalars(select(AnnouncePending)))
    named = [[item["member_id"] for item in a.payload["items"]] for a in announced]
    assert named == [members[:3], members[3:]]
    assert [a.payload["run_key"] for a in announced] == ["A", "A"]
    assert len(first.awarded) == 3 and len(rest.awarded) == 2 and pending == []

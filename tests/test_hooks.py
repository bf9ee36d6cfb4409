"""Event hooks (`rewards.hooks`): staged with the write, run after it exactly once, and at a cost
that does not grow with the number of members."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, select, text

from rewards import hooks
from rewards.catalog.loader import load_file
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.services.catalog import load_catalog
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import (
    Award,
    EventHook,
    Member,
    MetricRecord,
    WorkflowEnrollment,
    WorkflowStepDone,
)
from tests.factories import add_member, add_reward

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "rewards.json"
SALES_MASTERY = 7002
KUDOS_BONUS = 60  # an Automated Badge on kudos.received (repeatable, no timeframe)
T0 = datetime(2026, 1, 1, tzinfo=UTC)

# Tables whose size grows with the population: no statement of a kudos may scan them.
POPULATION_TABLES = (
    "member",
    "member_group",
    "award",
    "ledger_entry",
    "kudos",
    "kudos_receiver",
    "workflow_enrollment",
    "workflow_step_done",
    "member_activity",
    "metric_record",
)


def _core(database: Database, clock: FixedClock) -> Core:
    return Core(settings=Settings(), db=database, clock=clock)


async def _awards(db: Database) -> list[tuple[int, int, str]]:
    query = select(Award.reward_id, Award.member_id, Award.source).order_by(Award.id)  # type: ignore[arg-type]
    async with db.read() as session:
        return [(int(r), int(m), str(s)) for r, m, s in (await session.execute(query)).all()]


async def _catalogue(db: Database, clock: FixedClock) -> None:
    await load_catalog(db, load_file(EXAMPLES), clock=clock)
    await add_reward(
        db,
        reward_id=KUDOS_BONUS,
        reward="Kudos Magnet",
        reward_type="Automated Badge",
        multiple=True,
        events=["kudos.received"],
    )


async def _bulk_members(db: Database, first: int, count: int) -> None:
    """`count` members numbered from `first`, in a few multi-row Core inserts."""
    rows = [
        {
            "email": f"m{i}@example.com",
            "display_name": f"Member {i}",
            "job_code": "EMPLOYEE",
            "department": "Sales",
            "active": True,
            "leaderboard_opt_out": False,
            "celebrations_opt_out": False,
            "created_at": T0,
            "updated_at": T0,
        }
        for i in range(first, first + count)
    ]
    async with db.write() as session:
        for start in range(0, len(rows), 2000):
            await session.execute(insert(Member), rows[start : start + 2000])


async def _member_ids(db: Database, limit: int) -> list[int]:
    async with db.read() as session:
        found = await session.scalars(select(Member.id).order_by(Member.id).limit(limit))  # type: ignore[arg-type]
        return [int(i) for i in found.all() if i is not None]


async def _trained(db: Database, member_id: int) -> None:
    """Every Sales Mastery condition holds for `member_id`: the kudos' hook completes it."""
    day = date(2026, 11, 1)
    async with db.write() as session:
        session.add_all(
            [
                MetricRecord(
                    dataset="training",
                    member_id=member_id,
                    day=day,
                    name="product_knowledge",
                    value=90,
                ),
                MetricRecord(
                    dataset="training",
                    member_id=member_id,
                    day=day,
                    name="sales_techniques",
                    value=100,
                ),
                MetricRecord(
                    dataset="sales", member_id=member_id, day=day, name="sales_count", value=1
                ),
            ]
        )


class _Statements:
    """Every statement sent to the database while recording, with its parameters."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        self.seen.append((statement, params))

    @property
    def count(self) -> int:
        return len(self.seen)


@contextmanager
def _recording(db: Database) -> Iterator[_Statements]:
    statements = _Statements()
    event.listen(db.engine.sync_engine, "before_cursor_execute", statements)
    try:
        yield statements
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", statements)


async def _kudos_with_hooks(core: Core, giver: int, receiver: int) -> _Statements:
    await core.hooks.drain()  # nothing of an earlier write is counted here
    with _recording(core.db) as statements:
        await core.kudos.give(giver, [receiver], "Thanks for the demo!")
        # kudos.given + kudos.received, and what they staged (a completion's badge.awarded)
        assert await core.hooks.drain() >= 2
    return statements


async def test_a_kudos_costs_the_same_statements_at_10_and_10000_members(
    database: Database, clock: FixedClock
) -> None:
    try:
        await _measure_a_kudos_at_two_sizes(database, clock)
    finally:
        if database.dialect == "postgresql":  # quicker than the fixture's row-by-row emptying
            async with database.write() as session:
                await session.execute(text("TRUNCATE member CASCADE"))


async def _measure_a_kudos_at_two_sizes(database: Database, clock: FixedClock) -> None:
    core = _core(database, clock)
    await _catalogue(database, clock)
    await _bulk_members(database, 1, 10)
    ids = await _member_ids(database, 10)
    for member in (ids[2], ids[6]):
        await _trained(database, member)
    await _kudos_with_hooks(core, ids[0], ids[1])  # warm-up: first tag, first enrolments...

    small = await _kudos_with_hooks(core, ids[2], ids[3])
    await _bulk_members(database, 11, 9_990)
    large = await _kudos_with_hooks(core, ids[6], ids[7])

    assert large.count == small.count, "a kudos' statements grew with the member count"
    # The hooks did their work: bonus badge for the receiver, Sales Mastery completed by the
    # trained giver, every kudos' giver and receiver enrolled.
    awards = await _awards(database)
    assert (KUDOS_BONUS, ids[7], "event") in awards
    assert (SALES_MASTERY, ids[6], "workflow") in awards
    async with database.read() as session:
        enrolled = set((await session.scalars(select(WorkflowEnrollment.member_id))).all())
    assert enrolled == {ids[i] for i in (0, 1, 2, 3, 6, 7)}

    for statement, plan in await _plans(database, large.seen):
        for table in POPULATION_TABLES:
            assert not _scans(plan, table), f"{statement}\n{plan}"


async def _plans(db: Database, seen: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The plan of every recorded statement, as the database would run it now."""
    found = []
    async with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            await conn.exec_driver_sql("ANALYZE")
            explain = "EXPLAIN (FORMAT JSON) "
        else:
            explain = "EXPLAIN QUERY PLAN "
        for statement, params in seen:
            verb = statement.lstrip().split(None, 1)[0].upper()
            if verb not in {"SELECT", "UPDATE", "DELETE", "INSERT", "WITH"}:
                continue
            if isinstance(params, list):  # executemany: one plan serves every row
                params = params[0] if params else ()
            rows = (await conn.exec_driver_sql(explain + statement, params)).all()
            if db.dialect == "postgresql":
                found.append((statement, rows[0][0][0]["Plan"]))
            else:
                found.append((statement, [str(row[3]) for row in rows]))
        await conn.rollback()
    return found


def _scans(plan: Any, table: str) -> list[str]:
    """The nodes of `plan` reading much of `table`: on PostgreSQL any scan estimated to return
    more than 100 of its rows (a sequential scan, or a whole index walked in order); on SQLite a
    SCAN of it (a look-up is a SEARCH)."""
    if isinstance(plan, list):  # SQLite: one line per table access
        return [line for line in plan if line.split(" ")[:2] == ["SCAN", table]]
    found = []
    if plan.get("Relation Name") == table and plan.get("Plan Rows", 0) > 100:
        found.append(f"{plan['Node Type']} on {table}: {plan['Plan Rows']} rows")
    for child in plan.get("Plans", []):
        found.extend(_scans(child, table))
    return found


async def test_hooks_run_after_the_write_not_inside_it_and_survive_a_crash(
    database: Database, clock: FixedClock
) -> None:
    """A process that dies after the kudos commits leaves its hooks queued; the next process
    runs them once."""
    ana = await add_member(database, "Ana")
    ben = await add_member(database, "Ben")
    await add_reward(
        database, reward_id=KUDOS_BONUS, reward_type="Automated Badge", events=["kudos.received"]
    )
    crashed = _core(database, clock)
    database.hook_listeners.remove(crashed.hooks.nudge)  # it dies before draining
    await crashed.kudos.give(ana, [ben], "Thanks!")
    assert await _awards(database) == []
    assert await hooks.pending(database) == 2

    survivor = _core(database, clock)
    assert await survivor.hooks.drain() == 2
    assert await _awards(database) == [(KUDOS_BONUS, ben, "event")]
    assert await hooks.pending(database) == 0
    assert await survivor.hooks.drain() == 0


async def test_a_hook_handled_twice_awards_once(database: Database, clock: FixedClock) -> None:
    """Handling is idempotent: a row claimed again after a crash (handled, not yet deleted)
    changes nothing the second time, even for a repeatable badge."""
    ana = await add_member(database, "Ana")
    ben = await add_member(database, "Ben")
    await add_reward(
        database,
        reward_id=KUDOS_BONUS,
        reward_type="Automated Badge",
        multiple=True,
        events=["kudos.received"],
    )
    core = _core(database, clock)
    database.hook_listeners.remove(core.hooks.nudge)
    await core.kudos.give(ana, [ben], "Thanks!")
    batch = await hooks.claim(database, now=clock.now())
    for hook in batch + batch:
        await core.events.handle(hook)
    await hooks.finish(database, [hook.id for hook in batch])
    assert await _awards(database) == [(KUDOS_BONUS, ben, "event")]
    await core.kudos.give(ana, [ben], "Thanks again!")  # another kudos: another award
    await core.hooks.drain()
    assert await _awards(database) == [(KUDOS_BONUS, ben, "event")] * 2


async def test_a_claimed_row_is_left_alone_until_its_lease_runs_out(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    ben = await add_member(database, "Ben")
    core = _core(database, clock)
    database.hook_listeners.remove(core.hooks.nudge)
    await core.kudos.give(ana, [ben], "Thanks!")
    taken = await hooks.claim(database, now=clock.now(), lease=timedelta(seconds=60))
    assert len(taken) == 2
    assert await hooks.claim(database, now=clock.now()) == []  # another runner skips them
    assert await core.hooks.drain() == 0
    clock.advance(timedelta(seconds=61))  # the claimer died: the lease ran out
    assert await core.hooks.drain() == 2
    assert await hooks.pending(database) == 0


async def test_a_failing_hook_is_retried_later_then_dropped(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    ben = await add_member(database, "Ben")
    core = _core(database, clock)
    database.hook_listeners.remove(core.hooks.nudge)
    await core.kudos.give(ana, [ben], "Thanks!")
    calls: list[int] = []  # the size of each batch the handler was given

    async def broken(batch: Sequence[hooks.StagedHook]) -> None:
        calls.append(len(batch))
        raise RuntimeError("database went away")

    core.hooks.handler = broken
    assert await core.hooks.drain() == 0
    # The batch failed, then each hook alone, and both were given back.
    assert calls == [2, 1, 1] and await hooks.pending(database) == 2
    async with database.read() as session:
        errors = (await session.scalars(select(EventHook.last_error))).all()
    assert errors == ["RuntimeError: database went away"] * 2
    for _ in range(10):
        clock.advance(timedelta(minutes=1))
        await core.hooks.drain()
    assert await hooks.pending(database) == 0
    assert calls.count(1) == 2 * hooks.queue.MAX_ATTEMPTS


async def test_a_chat_login_is_staged_with_the_activity(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    await add_reward(database, reward_id=1007, reward_type="Automated Badge", multiple=True)
    core = _core(database, clock)
    database.hook_listeners.remove(core.hooks.nudge)
    assert await core.events.touch(ana) is True
    assert await core.events.touch(ana) is False
    assert await _awards(database) == []
    assert await core.hooks.drain() == 1
    assert await _awards(database) == [(1007, ana, "event")]


async def test_a_workflow_completion_does_not_re_evaluate_from_its_own_award(
    database: Database, clock: FixedClock
) -> None:
    """The completion award's ``badge.awarded`` is queued like any other, and (as when it ran
    inline) does not evaluate the member's workflows again."""
    core = _core(database, clock)
    await _catalogue(database, clock)
    ana = await add_member(database, "Ana", department="Sales")
    ben = await add_member(database, "Ben", department="Sales")
    await _trained(database, ana)
    await core.kudos.give(ana, [ben], "Thanks!")
    await core.hooks.drain()
    assert (SALES_MASTERY, ana, "workflow") in await _awards(database)
    async with database.read() as session:
        steps = (await session.scalars(select(WorkflowStepDone.step_index))).all()
    assert sorted(steps) == [0, 1, 2]
    assert await hooks.pending(database) == 0


async def test_auto_enrol_asks_about_the_named_member_only(
    database: Database, clock: FixedClock
) -> None:
    """The auto-enrol query probes the enrolment index per member (NOT EXISTS), never hashes
    every enrolment of the workflow (NOT IN)."""
    core = _core(database, clock)
    await _catalogue(database, clock)
    ana = await add_member(database, "Ana", department="Sales")
    with _recording(database) as statements:
        await core.workflows.evaluate(member_id=ana, automatic=True)
    probes = [s for s, _ in statements.seen if "workflow_enrollment" in s and "member" in s]
    assert probes and not any("NOT IN" in s.upper() for s in probes)
    async with database.engine.connect() as conn:
        count = await conn.scalar(text("SELECT count(*) FROM workflow_enrollment"))
    assert count == 1


async def test_hooks_run_in_their_own_context_not_the_committer_s(
    database: Database, clock: FixedClock
) -> None:
    """A commit made while a workflow completes (its context says "completing") wakes the
    runner; the hooks it then runs, here another member's kudos, still evaluate workflows."""
    from rewards.services import workflows

    core = _core(database, clock)
    await _catalogue(database, clock)
    ana = await add_member(database, "Ana", department="Sales")
    ben = await add_member(database, "Ben", department="Sales")
    token = workflows._COMPLETING.set(True)
    try:
        await core.kudos.give(ana, [ben], "Thanks!")
    finally:
        workflows._COMPLETING.reset(token)
    await core.hooks.stop()  # waits for the drain that commit spawned
    async with database.read() as session:
        enrolled = set((await session.scalars(select(WorkflowEnrollment.member_id))).all())
    assert enrolled == {ana, ben}


async def _staged_kudos(core: Core, pairs: list[tuple[int, int]]) -> None:
    """The kudos of `pairs`, their hooks left queued (the runner is not woken)."""
    for giver, receiver in pairs:
        await core.kudos.give(giver, [receiver], "Thanks for the demo!")


async def test_hooks_drained_together_cost_fewer_statements_than_one_by_one(
    database: Database, clock: FixedClock, monkeypatch: Any
) -> None:
    """A batch reads the catalogue version once, and the workflows of all the members it names
    with one query each for their enrolments, steps and rows; the same hooks one by one pay that
    per hook. Both ways do the same work."""
    from rewards.hooks import runner

    core = _core(database, clock)
    database.hook_listeners.remove(core.hooks.nudge)
    await _catalogue(database, clock)
    await _bulk_members(database, 1, 20)
    ids = await _member_ids(database, 20)
    await _staged_kudos(core, [(ids[0], ids[1])])  # warm-up: first tag...
    await core.hooks.drain()

    together_pairs = [(ids[2], ids[3]), (ids[4], ids[5]), (ids[6], ids[7]), (ids[8], ids[9])]
    alone_pairs = [(ids[10], ids[11]), (ids[12], ids[13]), (ids[14], ids[15]), (ids[16], ids[17])]
    await _staged_kudos(core, together_pairs)
    with _recording(database) as together:
        assert await core.hooks.drain() == 8
    monkeypatch.setattr(runner, "BATCH", 1)
    await _staged_kudos(core, alone_pairs)
    with _recording(database) as alone:
        assert await core.hooks.drain() == 8

    assert together.count < alone.count, (together.count, alone.count)
    versions = [s for s, _ in together.seen if "catalog_version" in s]
    assert len(versions) == 1, versions
    reads = [s for s, _ in together.seen if s.lstrip().upper().startswith("SELECT")]
    # No steps to read (every member is enrolled by this batch); the members are read by the
    # workflows and by the Kudos Magnet's batch award.
    for table, most in (("workflow_enrollment", 1), ("workflow_step_done", 0), ("member ", 2)):
        assert len([s for s in reads if f"FROM {table}" in s]) <= most, (table, reads)
    awards = await _awards(database)
    for pairs in (together_pairs, alone_pairs):
        assert {(KUDOS_BONUS, r, "event") for _, r in pairs} <= set(awards)
    async with database.read() as session:
        enrolled = set((await session.scalars(select(WorkflowEnrollment.member_id))).all())
    assert enrolled == set(ids[:18])


async def test_a_failing_hook_of_a_batch_is_released_and_the_others_finish(
    database: Database, clock: FixedClock
) -> None:
    """When a batch fails, its hooks run one by one: the failing one goes back to the queue
    with its error, the others are handled and deleted."""
    core = _core(database, clock)
    database.hook_listeners.remove(core.hooks.nudge)
    await _catalogue(database, clock)
    ana = await add_member(database, "Ana")
    ben = await add_member(database, "Ben")
    cleo = await add_member(database, "Cleo")
    await _staged_kudos(core, [(ana, ben), (ana, cleo)])
    handle_many = core.events.handle_many

    async def cleo_breaks(batch: Sequence[hooks.StagedHook]) -> None:
        if any(hook.member_id == cleo for hook in batch):
            raise RuntimeError("cleo's row is locked")
        await handle_many(batch)

    core.hooks.handler = cleo_breaks
    assert await core.hooks.drain() == 3
    assert sorted((m, s) for r, m, s in await _awards(database) if r == KUDOS_BONUS) == [
        (ben, "event")
    ]
    async with database.read() as session:
        left = (await session.execute(select(EventHook.member_id, EventHook.last_error))).all()
    assert [tuple(row) for row in left] == [(cleo, "RuntimeError: cleo's row is locked")]
    core.hooks.handler = handle_many
    clock.advance(timedelta(minutes=1))
    assert await core.hooks.drain() == 1
    assert (KUDOS_BONUS, cleo, "event") in await _awards(database)


async def test_a_drain_claims_handles_and_deletes_in_one_transaction(
    database: Database, clock: FixedClock
) -> None:
    """A kudos' hooks (the example catalogue's Kudos Magnet badge and workflows) are claimed,
    run and deleted on one connection with one commit; a batch whose handling fails half way
    leaves nothing of its work behind, and its rows are run again, hook by hook."""
    await _catalogue(database, clock)
    ana = await add_member(database, "Ana")
    ben = await add_member(database, "Ben")
    core = _core(database, clock)
    database.hook_listeners.remove(core.hooks.nudge)
    await core.kudos.give(ana, [ben], "Thanks!")
    commits: list[int] = []
    checkouts: list[int] = []
    engine = database.engine.sync_engine

    def on_commit(_conn: Any) -> None:
        commits.append(1)

    def on_checkout(*_args: Any) -> None:
        checkouts.append(1)

    event.listen(engine, "commit", on_commit)
    event.listen(engine.pool, "checkout", on_checkout)
    try:
        assert await core.hooks.drain() == 2
    finally:
        event.remove(engine, "commit", on_commit)
        event.remove(engine.pool, "checkout", on_checkout)
    assert len(commits) == 1 and len(checkouts) == 1
    assert (KUDOS_BONUS, ben, "event") in await _awards(database)
    assert await hooks.pending(database) == 0

    # The handler awards, then fails: the award is rolled back with the claim, and the
    # hook-by-hook retry awards once.
    await core.kudos.give(ana, [ben], "Thanks again!")
    handle_many = core.events.handle_many
    failures: list[int] = []

    async def half_way(batch: Sequence[hooks.StagedHook]) -> None:
        await handle_many(batch)
        if len(batch) > 1:
            failures.append(len(batch))
            raise RuntimeError("crashed after the awards")

    core.hooks.handler = half_way
    before = len(await _awards(database))
    assert await core.hooks.drain() == 2
    assert failures == [2]
    assert len(await _awards(database)) == before + 1  # the second kudos' bonus, once
    assert await hooks.pending(database) == 0


async def test_a_busy_server_drains_the_hooks_of_many_kudos_together(
    database: Database, clock: FixedClock
) -> None:
    """The server's runner starts a drain at most every `DRAIN_EVERY` seconds, so kudos that
    come faster than that have their hooks handled in a few batches, not one drain each (which
    cost a busy server a fifth of its CPU); every hook still runs."""
    import asyncio
    import time

    from rewards.hooks import runner

    core = _core(database, clock)
    await _catalogue(database, clock)
    await _bulk_members(database, 1, 12)
    ids = await _member_ids(database, 12)
    batches: list[int] = []
    handle = core.hooks.handler

    async def counting(batch: Sequence[hooks.StagedHook]) -> None:
        batches.append(len(batch))
        await handle(batch)

    core.hooks.handler = counting
    core.hooks.start()
    started = time.monotonic()
    try:
        for giver, receiver in itertools.pairwise(ids[0:11]):
            await core.kudos.give(giver, [receiver], "Thanks for the demo!")
            await asyncio.sleep(0.03)  # a kudos every 30 ms: slower than one drain each
        given = time.monotonic() - started
        for _ in range(100):
            if sum(batches) == 20:
                break
            await asyncio.sleep(0.05)
    finally:
        await core.hooks.stop()
    assert sum(batches) == 20  # kudos.given and kudos.received of each kudos
    # A drain per DRAIN_EVERY while the kudos came, and the last (a drain claims once more when
    # a commit nudged it meanwhile): fewer batches than kudos, where it was one batch a kudos.
    drains = int(given / runner.DRAIN_EVERY) + 2
    assert len(batches) <= min(9, 2 * drains), (batches, given)
    awards = await _awards(database)
    assert {(KUDOS_BONUS, r, "event") for r in ids[1:11]} <= set(awards)


async def test_a_paced_drain_leaves_what_commits_during_it_for_the_next_drain(
    database: Database, clock: FixedClock, monkeypatch: Any
) -> None:
    """Under steady load kudos commit (and nudge the runner) while a batch is handled. The
    started loop's drain (`paced`) ends after a short batch all the same: what came meanwhile
    waits for the next drain, `DRAIN_EVERY` later, which takes it together. A drain called
    directly (a CLI command, a test) claims again until a claim finds nothing new."""
    from rewards.hooks import runner

    core = _core(database, clock)
    database.hook_listeners.remove(core.hooks.nudge)
    ana, ben = [await add_member(database, name) for name in ("Ana", "Ben")]
    takes: list[int] = []
    take = runner.queue.take

    async def counted(*args: Any, **kwargs: Any) -> Any:
        batch = await take(*args, **kwargs)
        takes.append(len(batch))
        return batch

    async def handle(batch: Sequence[Any]) -> None:
        drainer.nudge()  # a kudos committed meanwhile (its rows come with the next drain)

    monkeypatch.setattr(runner.queue, "take", counted)
    drainer = runner.HookRunner(database, clock, handle)
    await core.kudos.give(ana, [ben], "Thanks!")
    assert await drainer.drain(paced=True) == 2
    assert takes == [2]  # one claim: the nudge waits for the next paced drain
    # That nudge also scheduled a drain of its own, 10 ms on (no loop runs here): let it find
    # nothing now, not take the next kudos' hooks from under the drain below.
    await asyncio.gather(*drainer._spawned)
    assert takes == [2, 0]
    await core.kudos.give(ben, [ana], "Thanks!")
    assert await drainer.drain() == 2
    assert takes == [2, 0, 2, 0]  # unpaced: claims again after the nudge, finds nothing

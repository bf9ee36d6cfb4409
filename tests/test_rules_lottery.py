"""RandomUsers draws: eligibility, weighting, recording under draw_key, verification and CLI."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import event, func, insert, select, update

from bots.commands.lottery import lottery
from rewards.catalog.rules import MemberCriteria, RandomUsers, RandomWeights
from rewards.rules.base import EvalContext
from rewards.rules.lottery import ALGORITHM, draw, eligible_hash, replay, verify
from rewards.rules.lottery_sql import WeightClasses, replay_classes
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.migrate import upgrade
from rewards.store.models import Award, LotteryRun, Member
from tests.factories import add_member, add_reward

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


async def _ctx(db: Database, now: datetime = NOW) -> EvalContext:
    reward_id = await add_reward(db, reward_id=7, reward="Lucky Draw")
    return EvalContext(db=db, now=now, settings=Settings(), reward_id=reward_id)


async def _hire(db: Database, member_id: int, hired: date) -> None:
    async with db.write() as session:
        await session.execute(
            update(Member).where(Member.id == member_id).values(hire_date=hired)  # type: ignore[arg-type]
        )


async def _win(
    db: Database, reward_id: int, member_id: int, at: datetime, *, revoked: bool = False
) -> None:
    async with db.write() as session:
        session.add(
            Award(
                reward_id=reward_id,
                member_id=member_id,
                source="lottery",
                award_key=f"test:{reward_id}:{member_id}:{at.isoformat()}",
                awarded_at=at,
                revoked_at=at if revoked else None,
            )
        )


async def _runs(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(LotteryRun)) or 0)


# --- the pure draw ----------------------------------------------------------------------------


def test_replay_is_deterministic_and_ignores_input_order() -> None:
    ids = list(range(1, 21))
    first = replay("abc", ids, {}, 5)
    assert first == replay("abc", list(reversed(ids)), {}, 5)
    assert len(first) == len(set(first)) == 5
    assert replay("abd", ids, {}, 5) != first
    assert replay("abc", ids, {}, 50) == replay("abc", ids, {}, 20)  # everyone, once
    assert sorted(replay("abc", ids, {}, 50)) == ids
    assert replay("abc", [], {}, 3) == []


def test_weights_bias_the_draw_in_proportion() -> None:
    # Member 1 has weight 5 among nine of weight 1: drawn first with probability 5/14.
    ids = list(range(1, 11))
    weights = {1: 5.0}
    runs = 4000
    first = Counter(replay(f"seed-{i}", ids, weights, 1)[0] for i in range(runs))
    assert abs(first[1] / runs - 5 / 14) < 0.03
    for other in range(2, 11):
        assert abs(first[other] / runs - 1 / 14) < 0.02
    # Without replacement: in a draw of 3 the heavy member is almost always included, never twice.
    three = [replay(f"seed-{i}", ids, weights, 3) for i in range(1000)]
    assert all(len(set(w)) == 3 for w in three)
    unweighted = Counter(replay(f"seed-{i}", ids, {}, 1)[0] for i in range(runs))
    assert abs(unweighted[1] / runs - 0.1) < 0.02


# --- draws against the store ------------------------------------------------------------------


async def test_draw_picks_count_winners_and_records_the_run(database: Database) -> None:
    ids = [await add_member(database, f"Member {i}") for i in range(6)]
    await add_member(database, "Gone", active=False)
    ctx = await _ctx(database)

    result = await draw(ctx, RandomUsers(count=2), draw_key="7:2026-11")

    assert result.created
    assert len(result.winners) == 2 and set(result.winners) <= set(ids)
    run = result.run
    assert run.eligible_count == 6
    assert run.eligible_hash == eligible_hash(ids)
    assert run.winners == result.winners
    assert run.parameters == {
        "rule": RandomUsers(count=2).to_json(),
        "now": NOW.isoformat(),
        "timezone": "UTC",
        "algorithm": ALGORITHM,
    }
    assert replay(run.seed, ids, {}, 2, ALGORITHM) == run.winners
    assert [c.member_id for c in result.candidates] == result.winners
    assert {c.key for c in result.candidates} == {"draw:7:2026-11"}


async def test_filters_departments_job_codes_groups_and_tenure(database: Database) -> None:
    match = await add_member(
        database, "Match", department="Sales", job_code="REP", groups=("Mentors",)
    )
    await add_member(database, "Wrong Dept", department="Ops", job_code="REP", groups=("Mentors",))
    await add_member(database, "Wrong Job", department="Sales", job_code="MGR", groups=("Mentors",))
    await add_member(database, "No Group", department="Sales", job_code="REP", groups=("Other",))
    junior = await add_member(
        database, "Junior", department="Sales", job_code="REP", groups=("Mentors",)
    )
    await _hire(database, match, date(2026, 1, 1))
    await _hire(database, junior, date(2026, 11, 1))
    ctx = await _ctx(database)
    rule = RandomUsers(
        count=5,
        filters=MemberCriteria(
            departments=("Sales",), job_codes=("REP",), groups=("Mentors",), min_tenure_days=30
        ),
    )

    result = await draw(ctx, rule, draw_key="filters")

    assert result.winners == [match]
    assert result.run.eligible_count == 1


async def test_recent_winners_of_this_reward_are_excluded(database: Database) -> None:
    recent = await add_member(database, "Recent")
    old = await add_member(database, "Old")
    revoked = await add_member(database, "Revoked")
    other_reward = await add_member(database, "Other Reward")
    ctx = await _ctx(database)
    await add_reward(database, reward_id=8)
    await _win(database, 7, recent, NOW - timedelta(days=3))
    await _win(database, 7, old, NOW - timedelta(days=40))
    await _win(database, 7, revoked, NOW - timedelta(days=1), revoked=True)
    await _win(database, 8, other_reward, NOW - timedelta(days=1))
    rule = RandomUsers(count=10, exclude_recent_winners=True, recent_winner_days=30)

    result = await draw(ctx, rule, draw_key="recent")

    assert sorted(result.winners) == sorted([old, revoked, other_reward])
    without = await draw(ctx, RandomUsers(count=10), draw_key="no-exclusion")
    assert sorted(without.winners) == sorted([recent, old, revoked, other_reward])


async def test_weights_are_applied_by_member_attributes(database: Database) -> None:
    sales = await add_member(database, "Sales", department="Sales", groups=("Mentors",))
    ops = await add_member(database, "Ops", department="Ops", job_code="LEAD")
    plain = await add_member(database, "Plain", department="Ops")
    ctx = await _ctx(database)
    rule = RandomUsers(
        count=3,
        weights=RandomWeights(
            department={"Sales": 2}, job_code={"LEAD": 0.5}, group={"Mentors": 1.5}
        ),
    )

    result = await draw(ctx, rule, draw_key="weighted")

    # Algorithm 3 weighs classes: code = department + 2 × (job code + 2 × group mask).
    classes = WeightClasses.of(rule)
    assert classes is not None
    codes = {sales: 1 + 2 * 2, ops: 2, plain: 0}
    assert {m: classes.weight(c) for m, c in codes.items()} == {sales: 3.0, ops: 0.5, plain: 1.0}
    weights = {c: classes.weight(c) for c in codes.values()}
    assert result.winners == replay_classes(result.run.seed, list(codes.items()), weights, 3)


async def test_the_same_draw_key_returns_the_recorded_run(database: Database) -> None:
    for i in range(10):
        await add_member(database, f"Member {i}")
    ctx = await _ctx(database)
    first = await draw(ctx, RandomUsers(count=3), draw_key="7:2026-W47")
    again = await draw(ctx, RandomUsers(count=3), draw_key="7:2026-W47")
    assert not again.created
    assert again.run.id == first.run.id and again.winners == first.winners
    assert await _runs(database) == 1


async def test_concurrent_draws_with_one_key_record_one_run(database: Database) -> None:
    for i in range(10):
        await add_member(database, f"Member {i}")
    ctx = await _ctx(database)
    results = await asyncio.gather(
        *(draw(ctx, RandomUsers(count=2), draw_key="race") for _ in range(10))
    )
    assert len({r.run.id for r in results}) == 1
    assert len({tuple(r.winners) for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert await _runs(database) == 1


async def test_verify_reproduces_the_recorded_winners(database: Database) -> None:
    ids = [
        await add_member(database, f"Member {i}", department="Sales" if i % 2 else "Ops")
        for i in range(8)
    ]
    ctx = await _ctx(database)
    rule = RandomUsers(count=3, weights=RandomWeights(department={"Sales": 3}))
    result = await draw(ctx, rule, draw_key="verify")
    assert result.run.id is not None

    checked = await verify(database, result.run.id)

    assert checked is not None
    assert checked.matches and checked.eligible_hash_matches
    assert checked.recomputed_winners == result.winners
    assert checked.reward_name == "Lucky Draw"
    assert set(checked.names) == set(result.winners)
    # A member joining later changes the eligible hash (and may change the winners).
    await add_member(database, "Newcomer")
    later = await verify(database, result.run.id)
    assert later is not None and not later.eligible_hash_matches
    assert later.current_eligible_count == len(ids) + 1
    assert await verify(database, 999) is None


LEGACY_SEED = "0123456789abcdef0123456789abcdef"


def test_the_legacy_algorithm_is_kept_bit_for_bit() -> None:
    """Algorithm 1's winners for a fixed seed, computed by the code that recorded the old runs."""
    ids = list(range(1, 9))
    assert replay(LEGACY_SEED, ids, {}, 3, 1) == [5, 6, 3]
    assert replay(LEGACY_SEED, ids, {2: 3.0, 4: 3.0, 6: 3.0, 8: 3.0}, 3, 1) == [6, 2, 5]


@pytest.mark.parametrize("algorithm", [2, 3])
def test_draws_everyone_once_even_with_one_overwhelming_weight(algorithm: int) -> None:
    ids = list(range(1, 41))
    if algorithm == 2:
        weights = {7: 1e9, 8: 0.5}
        zero = {i: 0.0 for i in ids if i > 2}

        def run(seed: str, weights: dict[int, float], count: int) -> list[int]:
            return replay(seed, ids, weights, count, 2)
    else:  # classes: 7 alone in class 1, 8 alone in class 2, everyone else in class 0
        weights = {1: 1e9, 2: 0.5}
        zero = {0: 0.0}

        def run(seed: str, weights: dict[int, float], count: int) -> list[int]:
            members = [(i, 1 if i == 7 else 2 if i == 8 else 0) for i in ids]
            if weights is zero:
                members = [(i, 3 if i <= 2 else 0) for i in ids]
            return replay_classes(seed, members, weights, count)

    drawn = run("heavy", weights, 40)
    assert drawn[0] == 7 and sorted(drawn) == ids
    assert run("heavy", weights, 5) == drawn[:5]
    assert run("zero", zero, 10) in ([1, 2], [2, 1])


@pytest.mark.parametrize("weighted", [False, True])
async def test_verify_reproduces_a_draw_recorded_before_algorithm_2(
    database: Database, weighted: bool
) -> None:
    """A run recorded by the old code (no "algorithm" in its parameters) still verifies."""
    ids = [
        await add_member(database, f"Member {i}", department="Sales" if i % 2 else "Ops")
        for i in range(8)
    ]
    ctx = await _ctx(database)
    weights = RandomWeights(department={"Sales": 3}) if weighted else None
    rule = RandomUsers(count=3, weights=weights)
    # What algorithm 1 drew for these positions (see the test above).
    winners = [ids[5], ids[1], ids[4]] if weighted else [ids[4], ids[5], ids[2]]
    async with database.write() as session:
        run = LotteryRun(
            reward_id=ctx.reward_id,
            draw_key="before-algorithm-2",
            seed=LEGACY_SEED,
            eligible_count=8,
            eligible_hash=eligible_hash(ids),
            winners=winners,
            parameters={"rule": rule.to_json(), "now": NOW.isoformat(), "timezone": "UTC"},
            drawn_at=NOW,
        )
        session.add(run)
        await session.flush()
        run_id = run.id
    assert run_id is not None

    checked = await verify(database, run_id)

    assert checked is not None and checked.matches and checked.eligible_hash_matches
    assert checked.recomputed_winners == winners
    new = await draw(ctx, rule, draw_key="after")
    assert new.run.parameters["algorithm"] == ALGORITHM
    assert new.run.id is not None
    again = await verify(database, new.run.id)
    assert again is not None and again.matches


# --- the CLI ----------------------------------------------------------------------------------


def _cli_setup(path: Path) -> tuple[dict[str, str], int]:
    upgrade(f"sqlite+aiosqlite:///{path}")

    async def setup() -> int:
        db = Database(f"sqlite+aiosqlite:///{path}")
        try:
            for i in range(5):
                await add_member(db, f"Member {i}")
            ctx = await _ctx(db)
            result = await draw(ctx, RandomUsers(count=2), draw_key="cli")
            assert result.run.id is not None
            return result.run.id
        finally:
            await db.dispose()

    run_id = asyncio.run(setup())
    env = {"DATABASE_URL": f"sqlite:///{path}", "REWARDS_ENV_FILE": str(path.parent / "no.env")}
    return env, run_id


def test_cli_verify_exit_codes(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    env, run_id = _cli_setup(path)

    ok = CliRunner().invoke(lottery, ["verify", str(run_id)], env=env)
    assert ok.exit_code == 0, ok.output
    assert "verified: the same winners" in ok.output
    assert "Lucky Draw" in ok.output and "draw key:  cli" in ok.output
    assert "Member " in ok.output

    missing = CliRunner().invoke(lottery, ["verify", "999"], env=env)
    assert missing.exit_code == 2
    assert "no lottery run 999" in missing.output

    async def tamper() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        try:
            async with db.write() as session:
                run = await session.get(LotteryRun, run_id)
                assert run is not None
                everyone = [1, 2, 3, 4, 5]
                run.winners = [m for m in everyone if m not in run.winners][:2]
        finally:
            await db.dispose()

    asyncio.run(tamper())
    bad = CliRunner().invoke(lottery, ["verify", str(run_id)], env=env)
    assert bad.exit_code == 1, bad.output
    assert "MISMATCH" in bad.output
    assert "eligible members are the same" in bad.output


# --- algorithm 3: the draw in the database ----------------------------------------------------


def test_algorithm_3_each_members_chance_is_its_weight_over_the_total() -> None:
    """Seeded: two members of weight 5 (class 1) among eight of weight 1 (class 0); the first
    pick is a given heavy member with probability 5/18, a given light one 1/18; later picks
    follow the weight still in the draw, without replacement."""
    members = [(1, 1), (2, 1)] + [(i, 0) for i in range(3, 11)]
    weights = {1: 5.0, 0: 1.0}
    runs = 6000
    first = Counter(replay_classes(f"seed-{i}", members, weights, 1)[0] for i in range(runs))
    for heavy in (1, 2):
        assert abs(first[heavy] / runs - 5 / 18) < 0.025
    for light in range(3, 11):
        assert abs(first[light] / runs - 1 / 18) < 0.015
    # Second pick after heavy member 1: member 2 with 5/13, each light one with 1/13.
    after = [replay_classes(f"s-{i}", members, weights, 2) for i in range(runs * 2)]
    second = Counter(w[1] for w in after if w[0] == 1)
    total = sum(second.values())
    assert abs(second[2] / total - 5 / 13) < 0.04
    assert all(len(set(w)) == 2 for w in after)
    # Unweighted: uniform, and no random number spent choosing among one class.
    uniform = Counter(
        replay_classes(f"u-{i}", [(i, 0) for i in range(10)], None, 1)[0] for i in range(runs)
    )
    assert all(abs(uniform[m] / runs - 0.1) < 0.02 for m in range(10))


def test_algorithm_3_is_deterministic_and_draws_everyone_once() -> None:
    members = [(i, i % 3) for i in range(1, 31)]
    weights = {0: 1.0, 1: 2.0, 2: 0.5}
    drawn = replay_classes("abc", members, weights, 30)
    assert drawn == replay_classes("abc", list(reversed(members)), weights, 30)
    assert sorted(drawn) == list(range(1, 31))
    assert replay_classes("abc", members, weights, 5) == drawn[:5]
    assert replay_classes("abd", members, weights, 5) != drawn[:5]
    assert replay_classes("abc", [], weights, 3) == []
    assert replay_classes("abc", members, None, 50) == replay_classes("abc", members, None, 30)


async def _population(database: Database) -> dict[str, int]:
    """Members across departments, job codes and groups, one inactive."""
    people = {
        "ann": await add_member(database, "Ann", department="Sales", groups=("Mentors",)),
        "bob": await add_member(database, "Bob", department="Sales", job_code="LEAD"),
        "cid": await add_member(database, "Cid", department="Ops", groups=("Mentors", "Leads")),
        "dot": await add_member(database, "Dot", department="Ops", job_code="LEAD"),
        "eve": await add_member(database, "Eve", department=None, job_code=None),
        "fay": await add_member(database, "Fay", department="Eng", groups=("Leads",)),
        "gus": await add_member(database, "Gus", department="Eng"),
        "hal": await add_member(database, "Hal", department="Sales", groups=("Leads",)),
    }
    await add_member(database, "Gone", department="Sales", active=False)
    return people


WEIGHTED = RandomUsers(
    count=5,
    weights=RandomWeights(
        department={"Sales": 3, "Ops": 0.5}, job_code={"LEAD": 2}, group={"Mentors": 1.5}
    ),
)


@pytest.mark.parametrize("rule", [RandomUsers(count=4), WEIGHTED], ids=["unweighted", "weighted"])
async def test_the_database_draw_is_the_in_memory_draw(
    database: Database, rule: RandomUsers
) -> None:
    """`within` and `exclude` narrowed in SQL on PostgreSQL, in Python on SQLite: the same
    winners as `replay_classes` over the same members and classes."""
    people = await _population(database)
    ctx = await _ctx(database)
    within = [people[n] for n in ("ann", "bob", "cid", "dot", "eve", "fay", "gus")]
    exclude = [people["gus"], 999]

    result = await draw(ctx, rule, draw_key="same", within=within, exclude=exclude)

    eligible = [i for i in within if i != people["gus"]]
    assert result.run.eligible_count == len(eligible)
    assert result.run.eligible_hash == eligible_hash(eligible)
    classes = WeightClasses.of(rule)
    # department: 0 none listed, 1 Ops, 2 Sales; job code +3 × LEAD; group +6 × Mentors.
    code = {"ann": 2 + 6, "bob": 2 + 3, "cid": 1 + 6, "dot": 1 + 3, "eve": 0, "fay": 0}
    if classes is None:
        members = [(i, 0) for i in eligible]
        weights: dict[int, float] | None = None
    else:
        members = [(people[n], c) for n, c in code.items()]
        weights = {c: classes.weight(c) for c in code.values()}
        assert classes.weight(code["ann"]) == 3 * 1.5 and classes.weight(code["dot"]) == 0.5 * 2
    assert result.winners == replay_classes(result.run.seed, members, weights, rule.count)
    assert result.run.parameters["algorithm"] == ALGORITHM == 3
    assert result.run.id is not None
    checked = await verify(database, result.run.id)
    assert checked is not None and checked.matches and checked.eligible_hash_matches


async def test_verify_reproduces_runs_of_every_algorithm(database: Database) -> None:
    """Runs recorded by algorithm 1 (no "algorithm"), 2 and 3, weighted and not, with the
    recent winners excluded: each verifies against the same members."""
    people = await _population(database)
    ctx = await _ctx(database)
    await _win(database, ctx.reward_id, people["hal"], NOW - timedelta(days=2))
    eligible = sorted(i for n, i in people.items() if n != "hal")
    # Algorithm 1 and 2 weigh each member: department × job code × groups.
    per_member = {people["ann"]: 4.5, people["bob"]: 6.0, people["cid"]: 0.5, people["dot"]: 1.0}
    run_ids = []
    for algorithm in (1, 2):
        for weighted in (False, True):
            rule = (WEIGHTED if weighted else RandomUsers(count=3)).model_copy(
                update={"exclude_recent_winners": True}
            )
            weights = per_member if weighted else {}
            parameters = {"rule": rule.to_json(), "now": NOW.isoformat(), "timezone": "UTC"}
            if algorithm == 2:
                parameters["algorithm"] = 2
            seed = f"{algorithm}-{weighted}".ljust(32, "0")
            async with database.write() as session:
                run = LotteryRun(
                    reward_id=ctx.reward_id,
                    draw_key=f"algorithm-{algorithm}-{weighted}",
                    seed=seed,
                    eligible_count=len(eligible),
                    eligible_hash=eligible_hash(eligible),
                    winners=replay(seed, eligible, weights, rule.count, algorithm),
                    parameters=parameters,
                    drawn_at=NOW,
                )
                session.add(run)
                await session.flush()
                assert run.id is not None
                run_ids.append(run.id)
    for weighted in (False, True):
        rule = (WEIGHTED if weighted else RandomUsers(count=3)).model_copy(
            update={"exclude_recent_winners": True}
        )
        result = await draw(ctx, rule, draw_key=f"algorithm-3-{weighted}")
        assert result.run.eligible_hash == eligible_hash(eligible)
        assert people["hal"] not in result.winners
        assert result.run.id is not None
        run_ids.append(result.run.id)

    for run_id in run_ids:
        checked = await verify(database, run_id)
        assert checked is not None
        assert checked.matches and checked.eligible_hash_matches, checked.run.draw_key
    # A member leaving changes the hash of every algorithm's eligible set.
    async with database.write() as session:
        await session.execute(
            update(Member).where(Member.id == people["eve"]).values(active=False)  # type: ignore[arg-type]
        )
    for run_id in run_ids:
        changed = await verify(database, run_id)
        assert changed is not None and not changed.eligible_hash_matches
        assert changed.current_eligible_count == len(eligible) - 1


async def _bulk_members(database: Database, members: int) -> None:
    departments = ["Sales", "Ops", "Eng", None]
    async with database.write() as session:
        await session.execute(
            insert(Member),
            [
                {
                    "email": f"bulk{members}.{i}@example.com",
                    "display_name": f"Bulk {i}",
                    "department": departments[i % 4],
                    "job_code": "LEAD" if i % 7 == 0 else "EMPLOYEE",
                    "active": True,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for i in range(members)
            ],
        )


async def _draw_statements(
    database: Database, ctx: EvalContext, members: int, rule: RandomUsers
) -> list[tuple[str, int]]:
    """Each statement a draw over `members` new members sends (the earlier ones leave first),
    with the rows it returns (replayed on its own connection)."""
    async with database.write() as session:
        await session.execute(update(Member).values(active=False))
    await _bulk_members(database, members)
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        result = await draw(ctx, rule, draw_key=f"size-{members}")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert result.run.eligible_count == members and len(result.winners) == rule.count
    shapes = []
    async with database.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        for statement, parameters in sent:
            if not statement.lstrip().upper().startswith("SELECT"):
                shapes.append((statement, 0))
                continue
            rows = await raw.driver_connection.fetch(statement, *parameters)  # type: ignore[union-attr]
            shapes.append((statement, len(rows)))
    return shapes


@pytest.mark.parametrize(
    "rule",
    [RandomUsers(count=10), WEIGHTED.model_copy(update={"count": 10})],
    ids=["unweighted", "weighted"],
)
async def test_draw_statements_do_not_grow_with_the_eligible_set(
    database: Database, rule: RandomUsers
) -> None:
    """PostgreSQL: the same statements at 100 and at 10,000 eligible members, returning the
    same numbers of rows: none returns a row per member."""
    if database.dialect != "postgresql":
        pytest.skip("SQLite, the embedded default, returns the (id, class) pairs to Python")
    ctx = await _ctx(database)
    small = await _draw_statements(database, ctx, 100, rule)
    large = await _draw_statements(database, ctx, 10_000, rule)
    assert [s for s, _ in small] == [s for s, _ in large]
    assert [n for _, n in small] == [n for _, n in large]
    # The draw's statement returns a row per proposal: 4 × count + 16 in its first batch,
    # weighted 2 × ⌈largest possible weight⌉ × count + 16 (here 2 × 9 × 10 + 16).
    assert max(n for _, n in large) <= (196 if rule.weights else 56)

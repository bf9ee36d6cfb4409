"""RandomUsers: a recorded, reproducible, weighted draw without replacement.

- The eligible set: active members matching the rule's `filters` (departments, job codes,
  groups, minimum tenure in the organisation's zone), minus the members who won this reward (a
  non-revoked award) in the `recent_winner_days` before the draw when `exclude_recent_winners`
  is set (`rewards.rules.lottery_sql.conditions`).
- New draws use algorithm 3 (recorded as ``parameters["algorithm"]``, see
  `rewards.rules.lottery_sql`): Python proposes ranks with ``random.Random(seed)`` and the
  database, in one pass over the eligible members, returns their count, the hash of their ids
  and the member (and weight class) at each proposed rank; weighted draws accept a proposal with
  probability weight / bound. O(count) values cross the wire, not the eligible set.
- Algorithm 2 (recorded ``"algorithm": 2``) loaded every eligible id in id order and drew in
  memory with O(count) random numbers: unweighted ``rng.sample(range(n), count)``; weighted
  successively, each pick with probability weight / the weight still in the draw (bisecting the
  cumulative weights, re-drawing a member already picked, rebuilding the sums after a few
  re-draws in a row). Draws recorded before it (no ``algorithm``) used algorithm 1,
  Efraimidis-Spirakis: every eligible member, in id order, gets one ``u`` from the seeded
  generator and the key ``log(u) / weight``; the `count` largest keys win. Both are kept
  (`_eligible`, `replay`) so that `verify` replays every run with the algorithm it was drawn
  with and every recorded draw still reproduces.
- `within` (a RandomUsers rule AND-ed with other rules) narrows the eligible set to the members
  who passed the other rules, and `exclude` removes members who could not receive the reward
  (a once-only reward they already hold); both id lists are recorded with the run's parameters
  so `verify` narrows the same way.
- Every draw is recorded in `lottery_run` under its unique `draw_key` with the seed, the size and
  sha256 of the eligible ids (comma-joined, ascending, for every algorithm), the winners and the
  parameters, so a restart or a second replica returns the recorded run instead of drawing
  again, and `verify` can re-run it.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from rewards.catalog.rules import RandomUsers
from rewards.clock import as_utc
from rewards.rules.base import Candidate, EvalContext
from rewards.rules.lottery_sql import (
    Outcome,
    conditions,
    draw_v3,
    eligible_hash,
    replay_classes,
)
from rewards.services import outbox
from rewards.services._subjects import load_people
from rewards.store.db import Database
from rewards.store.models import LotteryRun, Member, MemberGroup, Reward


@dataclass(frozen=True)
class Eligible:
    """The sorted eligible member ids and each one's weight."""

    ids: list[int]
    weights: dict[int, float]

    @property
    def hash(self) -> str:
        return eligible_hash(self.ids)


@dataclass(frozen=True)
class LotteryResult:
    run: LotteryRun
    winners: list[int]
    candidates: list[Candidate]
    created: bool  # False: the draw_key was already recorded and this is that run


@dataclass(frozen=True)
class VerifyResult:
    run: LotteryRun
    recomputed_winners: list[int]
    matches: bool
    eligible_hash_matches: bool
    current_eligible_count: int
    reward_name: str | None = None
    names: dict[int, str] = field(default_factory=dict)


__all__ = ["ALGORITHM", "draw", "eligible_hash", "replay", "rule_of", "verify"]

ALGORITHM = 3
"""The algorithm new draws use and record (`rewards.rules.lottery_sql`)."""
IN_MEMORY_ALGORITHM = 2
"""What `replay` draws with by default: the nomination tie-breaks are recorded as
``replay(seed, tied, {}, 1)`` and must keep reproducing."""
LEGACY_ALGORITHM = 1
"""Runs recorded without an ``algorithm`` parameter were drawn with this one."""
_REBUILD_AFTER = 8  # re-draws in a row before the cumulative weights drop the picked members


def replay(
    seed: str,
    ids: Sequence[int],
    weights_by_id: Mapping[int, float],
    count: int,
    algorithm: int = IN_MEMORY_ALGORITHM,
) -> list[int]:
    """The winners of a draw, in draw order; pure and deterministic.

    `ids` are taken in ascending order whatever order they are given in; a missing weight is 1.
    `algorithm` is the one the draw was made with (1 for runs recorded before algorithm 2).
    Algorithm 3 weighs by class, not by member: here only unweighted (see
    `rewards.rules.lottery_sql.replay_classes` for the weighted form).
    """
    if algorithm == LEGACY_ALGORITHM:
        return _replay_v1(seed, ids, weights_by_id, count)
    if algorithm == ALGORITHM:
        if any(float(w) != 1.0 for w in weights_by_id.values()):
            raise ValueError("algorithm 3 weighs classes: use lottery_sql.replay_classes")
        return replay_classes(seed, [(int(i), 0) for i in ids], None, count)
    if algorithm != IN_MEMORY_ALGORITHM:
        raise ValueError(f"unknown lottery algorithm {algorithm}")
    return _replay_v2(seed, ids, weights_by_id, count)


def _replay_v2(
    seed: str, ids: Sequence[int], weights_by_id: Mapping[int, float], count: int
) -> list[int]:
    rng = random.Random(seed)
    ordered = sorted(ids)
    wanted = min(max(count, 0), len(ordered))
    weights = [float(weights_by_id.get(i, 1.0)) for i in ordered] if weights_by_id else None
    if weights is None or all(w == 1.0 for w in weights):
        return [ordered[index] for index in rng.sample(range(len(ordered)), wanted)]
    chosen: list[int] = []
    taken: set[int] = set()
    cumulative = list(itertools.accumulate(weights))
    misses = 0
    while len(chosen) < wanted:
        total = cumulative[-1] if cumulative else 0.0
        if total <= 0:
            break  # only members of weight 0 are left
        index = bisect.bisect_right(cumulative, rng.random() * total)
        if index >= len(ordered) or index in taken:
            misses += 1
            if misses >= _REBUILD_AFTER:
                cumulative = list(
                    itertools.accumulate(0.0 if i in taken else w for i, w in enumerate(weights))
                )
                misses = 0
            continue
        misses = 0
        taken.add(index)
        chosen.append(ordered[index])
    return chosen


def _replay_v1(
    seed: str, ids: Sequence[int], weights_by_id: Mapping[int, float], count: int
) -> list[int]:
    """Algorithm 1 (Efraimidis-Spirakis, one random number per eligible member), kept so that
    draws recorded with it still verify."""
    rng = random.Random(seed)
    keyed: list[tuple[float, int]] = []
    for member_id in sorted(ids):
        u = 1.0 - rng.random()  # (0, 1]: log is defined
        weight = float(weights_by_id.get(member_id, 1.0))
        keyed.append((math.log(u) / weight, member_id))
    keyed.sort(key=lambda item: (-item[0], item[1]))
    return [member_id for _, member_id in keyed[: max(count, 0)]]


def _weight(
    rule: RandomUsers, department: str | None, job_code: str | None, groups: Sequence[str]
) -> float:
    weights = rule.weights
    if weights is None:
        return 1.0
    value = 1.0
    if department is not None:
        value *= float(weights.department.get(department, 1.0))
    if job_code is not None:
        value *= float(weights.job_code.get(job_code, 1.0))
    for group in groups:
        value *= float(weights.group.get(group, 1.0))
    return value


async def _eligible(
    session: AsyncSession,
    reward_id: int,
    rule: RandomUsers,
    now: datetime,
    org_zone: str,
    within: Collection[int] | None = None,
    exclude: Collection[int] | None = None,
) -> Eligible:
    """Algorithms 1 and 2 (verify only): every eligible id, sorted, and each one's weight."""
    where = conditions(reward_id, rule, now, org_zone)
    weighted = rule.weights is not None
    columns: list[Any] = [col(Member.id)]
    if weighted:
        columns += [col(Member.department), col(Member.job_code)]
    if session.get_bind().dialect.name == "postgresql":
        # One row of arrays instead of a row per member: the driver decodes an int array of
        # 100,000 in a few ms, where 100,000 result rows cost hundreds.
        arrays = [func.array_agg(aggregate_order_by(c, col(Member.id))) for c in columns]
        row = (await session.execute(select(*arrays).where(*where))).one()
        found = [list(values or ()) for values in row]
    else:
        rows = await session.execute(select(*columns).where(*where).order_by(columns[0]))
        found = [list(values) for values in zip(*rows.all(), strict=True)] or [[] for _ in columns]
    ids: list[int] = found[0]  # ints from both drivers, in id order
    keep: list[int] | None = None
    if within is not None or exclude:
        allowed = None if within is None else {int(i) for i in within}
        barred = {int(i) for i in exclude or ()}
        keep = [
            n
            for n, member_id in enumerate(ids)
            if (allowed is None or member_id in allowed) and member_id not in barred
        ]
        ids = [ids[n] for n in keep]
    if not weighted:
        return Eligible(ids=ids, weights={})
    departments, job_codes = found[1], found[2]
    if keep is not None:
        departments = [departments[n] for n in keep]
        job_codes = [job_codes[n] for n in keep]
    groups: dict[int, list[str]] = {}
    if rule.weights is not None and rule.weights.group and ids:
        # Only the weighted groups; filtered to the eligible members in Python.
        listed = select(MemberGroup.member_id, col(MemberGroup.name)).where(
            col(MemberGroup.name).in_(list(rule.weights.group))
        )
        eligible_ids = set(ids)
        for member_id, name in (await session.execute(listed)).all():
            if member_id in eligible_ids:
                groups.setdefault(int(member_id), []).append(str(name))
    # One weight per distinct (department, job code) among members without weighted groups: a
    # handful of products instead of one per member.
    by_pair: dict[tuple[str | None, str | None], float] = {}
    weights: dict[int, float] = {}
    for member_id, department, job_code in zip(ids, departments, job_codes, strict=True):
        member_groups = groups.get(member_id)
        if member_groups:
            weights[member_id] = _weight(rule, department, job_code, member_groups)
            continue
        pair = (department, job_code)
        if pair not in by_pair:
            by_pair[pair] = _weight(rule, department, job_code, ())
        weights[member_id] = by_pair[pair]
    return Eligible(ids=ids, weights=weights)


def _parameters(
    rule: RandomUsers,
    now: datetime,
    org_zone: str,
    within: Collection[int] | None,
    exclude: Collection[int] | None,
) -> dict[str, Any]:
    recorded: dict[str, Any] = {
        "rule": rule.to_json(),
        "now": as_utc(now).isoformat(),
        "timezone": org_zone,
        "algorithm": ALGORITHM,
    }
    if within is not None:
        recorded["within"] = sorted(int(i) for i in within)
    if exclude:
        recorded["exclude"] = sorted(int(i) for i in exclude)
    return recorded


def _result(run: LotteryRun, *, created: bool) -> LotteryResult:
    winners = [int(w) for w in run.winners]
    candidates = [
        Candidate(
            member_id=w,
            key=f"draw:{run.draw_key}",
            args={"draw_key": run.draw_key, "lottery_run_id": run.id, "rank": rank},
        )
        for rank, w in enumerate(winners, start=1)
    ]
    return LotteryResult(run=run, winners=winners, candidates=candidates, created=created)


async def _recorded(session: AsyncSession, draw_key: str) -> LotteryRun | None:
    found = await session.scalar(select(LotteryRun).where(LotteryRun.draw_key == draw_key))
    return found


async def draw(
    ctx: EvalContext,
    rule: RandomUsers,
    *,
    draw_key: str,
    within: Collection[int] | None = None,
    exclude: Collection[int] | None = None,
) -> LotteryResult:
    """Draw `rule.count` winners for `draw_key`, or return the run already recorded for it.

    `within` limits the draw to those member ids and `exclude` leaves those out (see the module
    docstring).
    """
    async with ctx.db.read() as session:
        existing = await _recorded(session, draw_key)
    if existing is not None:
        return _result(existing, created=False)
    org_zone = ctx.settings.timezone
    try:
        async with ctx.db.write() as session:
            existing = await _recorded(session, draw_key)
            if existing is not None:
                return _result(existing, created=False)
            seed = secrets.token_hex(16)
            outcome = await draw_v3(
                session, ctx.reward_id, rule, ctx.now, org_zone, seed, within, exclude
            )
            run = LotteryRun(
                reward_id=ctx.reward_id,
                draw_key=draw_key,
                seed=seed,
                eligible_count=outcome.eligible_count,
                eligible_hash=outcome.eligible_hash,
                winners=outcome.winners,
                parameters=_parameters(rule, ctx.now, org_zone, within, exclude),
                drawn_at=as_utc(ctx.now),
            )
            session.add(run)
            await session.flush()
            winners = await load_people(session, run.winners)
            reward = await session.get(Reward, ctx.reward_id)
            outbox.stage(
                session,
                ctx.settings,
                outbox.LOTTERY_DRAWN,
                {
                    "lottery_run_id": run.id,
                    "reward_id": ctx.reward_id,
                    "reward": reward.name if reward else "",
                    "draw_key": draw_key,
                    "eligible_count": run.eligible_count,
                    "winners": [outbox.member_ref(winners.get(w)) for w in run.winners],
                },
                at=as_utc(ctx.now),
            )
        return _result(run, created=True)
    except IntegrityError:
        # Another process recorded the same draw_key first: its run is the draw.
        async with ctx.db.read() as session:
            existing = await _recorded(session, draw_key)
        if existing is None:
            raise
        return _result(existing, created=False)


def rule_of(run: LotteryRun) -> RandomUsers:
    """The RandomUsers rule recorded with a run."""
    entry = run.parameters.get("rule") or ["RandomUsers"]
    params = entry[1] if len(entry) > 1 else {}
    return RandomUsers.model_validate(params)


async def verify(db: Database, run_id: int) -> VerifyResult | None:
    """Re-run a recorded draw from its seed and parameters over the CURRENT members.

    `eligible_hash_matches` says whether the eligible set is still the recorded one; when it is
    not (members joined, left or changed since), different winners are expected and do not by
    themselves mean the draw was tampered with. None when there is no such run.
    """
    async with db.read() as session:
        run = await session.get(LotteryRun, run_id)
        if run is None:
            return None
        rule = rule_of(run)
        now = datetime.fromisoformat(run.parameters.get("now") or run.drawn_at.isoformat())
        org_zone = str(run.parameters.get("timezone") or "UTC")
        within = run.parameters.get("within")
        exclude = run.parameters.get("exclude")
        algorithm = int(run.parameters.get("algorithm") or LEGACY_ALGORITHM)
        if algorithm == ALGORITHM:
            outcome = await draw_v3(
                session, run.reward_id, rule, now, org_zone, run.seed, within, exclude
            )
        else:
            eligible = await _eligible(session, run.reward_id, rule, now, org_zone, within, exclude)
            recomputed = replay(run.seed, eligible.ids, eligible.weights, rule.count, algorithm)
            outcome = Outcome(len(eligible.ids), eligible.hash, recomputed)
        reward_name = await session.scalar(select(Reward.name).where(Reward.id == run.reward_id))
        winner_ids = {int(w) for w in run.winners}
        names: dict[int, str] = {}
        if winner_ids:
            named = select(Member.id, col(Member.display_name)).where(
                col(Member.id).in_(winner_ids)
            )
            names = {int(i): str(n) for i, n in (await session.execute(named)).all()}
    return VerifyResult(
        run=run,
        recomputed_winners=outcome.winners,
        matches=outcome.winners == [int(w) for w in run.winners],
        eligible_hash_matches=outcome.eligible_hash == run.eligible_hash,
        current_eligible_count=outcome.eligible_count,
        reward_name=reward_name,
        names=names,
    )

"""Lottery algorithm 3: the draw is computed where the eligible set lives.

Algorithm 2 fetched every eligible id (and, weighted, every member's department and job code)
to hash and weigh them in Python: at 100,000 eligible members the draw cost grew with shipping
the set. Algorithm 3 sends only O(weight classes + count) values across the wire on
PostgreSQL:

1. **Summary.** The database counts the eligible members and hashes their ids (sha256 of the
   comma-joined ascending ids, the same definition as algorithms 1 and 2, so `eligible_hash`
   still describes any run); a weighted draw also gets the size of each *weight class*: members
   grouped by the listed department they are in (or none), the listed job code (or none) and the
   set of listed groups they belong to, encoded as one integer (`WeightClasses`).
2. **Sampling** (`sample`, pure): with ``random.Random(seed)`` each pick chooses a class with
   probability (class weight × members of it still in the draw) / the weight still in the draw
   (no random number when one class is left, so an unweighted draw uses none), then a rank inside
   the class with ``randrange(class size)``, re-drawn while that rank was already picked. Each
   member's chance to be drawn next is exactly its weight / the weight still in the draw.
3. **Resolution.** The database returns the id at each picked (class, rank), ranks counting
   from the smallest id, from one ordered ``array_agg`` per picked class: ``count`` rows.

SQLite, the small embedded default, runs the same eligibility query but returns the (id, class)
pairs as plain tuples and steps 1 and 3 happen in Python (`replay_classes`), with the same
result for the same members.

`within` and `exclude` (see `rewards.rules.lottery`) become part of the query on PostgreSQL: a
bound array for `within` (probed through the primary key) and an anti-join against ``unnest`` of
`exclude` (hashed whatever plan the statement cache settles on; ``<> ALL(array)`` is a linear
search per row under a generic plan).
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Integer,
    and_,
    any_,
    bindparam,
    case,
    exists,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.catalog.rules import RandomUsers
from rewards.clock import as_utc, local_today
from rewards.store.models import Award, Member, MemberGroup

_CODE_LIMIT = 2**62  # class codes are BIGINT on PostgreSQL and 64-bit integers on SQLite


def eligible_hash(ids: Sequence[int]) -> str:
    """sha256 of the comma-joined sorted member ids."""
    return hashlib.sha256(",".join(map(str, sorted(ids))).encode()).hexdigest()


def conditions(
    reward_id: int, rule: RandomUsers, now: datetime, org_zone: str
) -> list[ColumnElement[bool]]:
    """The rule's eligibility as WHERE clauses on `member` (`within`/`exclude` not included)."""
    criteria = rule.filters
    where: list[Any] = [col(Member.active).is_(True)]
    if criteria.departments:
        where.append(col(Member.department).in_(criteria.departments))
    if criteria.job_codes:
        where.append(col(Member.job_code).in_(criteria.job_codes))
    if criteria.groups:
        where.append(
            exists().where(
                col(MemberGroup.member_id) == col(Member.id),
                col(MemberGroup.name).in_(criteria.groups),
            )
        )
    if criteria.min_tenure_days:
        latest = local_today(now, None, org_zone) - timedelta(days=criteria.min_tenure_days)
        where.append(and_(col(Member.hire_date).is_not(None), col(Member.hire_date) <= latest))
    if rule.exclude_recent_winners:
        moment = as_utc(now)
        where.append(
            ~exists().where(
                col(Award.member_id) == col(Member.id),
                col(Award.reward_id) == reward_id,
                col(Award.revoked_at).is_(None),
                col(Award.awarded_at) >= moment - timedelta(days=rule.recent_winner_days),
                col(Award.awarded_at) < moment,
            )
        )
    return where


@dataclass(frozen=True)
class WeightClasses:
    """Members of one class have the same weight: the same listed department (or none listed),
    the same listed job code (or none) and the same listed groups.

    Code = department index + (departments + 1) × (job code index + (job codes + 1) × group
    mask); index 0 is "not listed", listed values are numbered from 1 in sorted order, bit i of
    the mask is the i-th listed group in sorted order. The weight of a class is
    department weight × job code weight × each group's weight in that order (1.0 when not
    listed), the product `rewards.rules.lottery` computes per member, in a fixed order.
    """

    departments: tuple[str, ...]
    job_codes: tuple[str, ...]
    groups: tuple[str, ...]
    department_weights: tuple[float, ...]
    job_code_weights: tuple[float, ...]
    group_weights: tuple[float, ...]

    @classmethod
    def of(cls, rule: RandomUsers) -> WeightClasses | None:
        """None for an unweighted rule (one class, code 0)."""
        weights = rule.weights
        if weights is None:
            return None
        departments = tuple(sorted(weights.department))
        job_codes = tuple(sorted(weights.job_code))
        groups = tuple(sorted(weights.group))
        classes = cls(
            departments,
            job_codes,
            groups,
            tuple(float(weights.department[d]) for d in departments),
            tuple(float(weights.job_code[j]) for j in job_codes),
            tuple(float(weights.group[g]) for g in groups),
        )
        if (len(departments) + 1) * (len(job_codes) + 1) * 2 ** len(groups) > _CODE_LIMIT:
            raise ValueError(f"too many weighted groups to draw by class ({len(groups)})")
        return classes

    def code(self) -> ColumnElement[int]:
        """The class code of a `member` row, in SQL."""
        department: Any = literal(0)
        if self.departments:
            department = case(
                {name: n for n, name in enumerate(self.departments, start=1)},
                value=col(Member.department),
                else_=0,
            )
        job: Any = literal(0)
        if self.job_codes:
            job = case(
                {name: n for n, name in enumerate(self.job_codes, start=1)},
                value=col(Member.job_code),
                else_=0,
            )
        mask: Any = literal(0)
        for bit, name in enumerate(self.groups):
            # IN (subquery): a hashed subplan, built once, not a look-up per member.
            members = select(col(MemberGroup.member_id)).where(col(MemberGroup.name) == name)
            mask = mask + case((col(Member.id).in_(members), 2**bit), else_=0)
        spread_j = len(self.departments) + 1
        spread_g = spread_j * (len(self.job_codes) + 1)
        expression: ColumnElement[int] = (department + job * spread_j + mask * spread_g).cast(
            BigInteger
        )
        return expression

    def weight(self, code: int) -> float:
        department = code % (len(self.departments) + 1)
        rest = code // (len(self.departments) + 1)
        job = rest % (len(self.job_codes) + 1)
        mask = rest // (len(self.job_codes) + 1)
        value = 1.0
        if department:
            value *= self.department_weights[department - 1]
        if job:
            value *= self.job_code_weights[job - 1]
        for bit, weight in enumerate(self.group_weights):
            if mask >> bit & 1:
                value *= weight
        return value


def sample(
    seed: str, classes: Sequence[tuple[int, int, float]], count: int
) -> list[tuple[int, int]]:
    """Algorithm 3's picks, in draw order, as (class code, rank in the class); pure.

    `classes` are (code, size, weight); they are taken in ascending code order whatever order
    they are given in. Ranks count from 0 at the class's smallest id.
    """
    rng = random.Random(seed)
    ordered = sorted((code, size, weight) for code, size, weight in classes if size > 0)
    left = [size for _, size, _ in ordered]
    taken: list[set[int]] = [set() for _ in ordered]
    wanted = min(max(count, 0), sum(left))
    picks: list[tuple[int, int]] = []
    while len(picks) < wanted:
        live = [n for n, (_, _, weight) in enumerate(ordered) if left[n] and weight > 0]
        if not live:
            break  # only members of weight 0 are left
        index = live[0]
        if len(live) > 1:
            cumulative: list[float] = []
            total = 0.0
            for n in live:
                total += ordered[n][2] * left[n]
                cumulative.append(total)
            at = bisect.bisect_right(cumulative, rng.random() * total)
            index = live[min(at, len(live) - 1)]
        code, size, _ = ordered[index]
        rank = rng.randrange(size)
        while rank in taken[index]:
            rank = rng.randrange(size)
        taken[index].add(rank)
        left[index] -= 1
        picks.append((code, rank))
    return picks


def replay_classes(
    seed: str,
    members: Sequence[tuple[int, int]],
    weight_of: Mapping[int, float],
    count: int,
) -> list[int]:
    """Algorithm 3 over (member id, class code) pairs held in memory; pure.

    `weight_of` maps a class code to its weight (missing: 1.0). The draw the databases make.
    """
    by_class: dict[int, list[int]] = {}
    for member_id, code in sorted(members):
        by_class.setdefault(code, []).append(member_id)
    classes = [(c, len(ids), float(weight_of.get(c, 1.0))) for c, ids in by_class.items()]
    return [by_class[code][rank] for code, rank in sample(seed, classes, count)]


@dataclass(frozen=True)
class Outcome:
    eligible_count: int
    eligible_hash: str
    winners: list[int]


async def draw_v3(
    session: AsyncSession,
    reward_id: int,
    rule: RandomUsers,
    now: datetime,
    org_zone: str,
    seed: str,
    within: Collection[int] | None = None,
    exclude: Collection[int] | None = None,
) -> Outcome:
    """The eligible count, hash and winners of an algorithm-3 draw with `seed`."""
    classes = WeightClasses.of(rule)
    code: ColumnElement[int] = classes.code() if classes else literal(0, BigInteger)
    where = conditions(reward_id, rule, now, org_zone)
    weight_of = classes.weight if classes else (lambda _code: 1.0)
    if session.get_bind().dialect.name != "postgresql":
        return await _in_python(session, where, code, weight_of, seed, rule.count, within, exclude)
    if within is not None:
        where.append(col(Member.id) == any_(bindparam("within", sorted(within), ARRAY(Integer))))
    if exclude:
        values = bindparam("exclude", sorted(exclude), ARRAY(Integer))
        barred = func.unnest(values).table_valued("id").render_derived()
        where.append(~exists().select_from(barred).where(barred.c.id == col(Member.id)))
    ids = func.array_agg(aggregate_order_by(col(Member.id), col(Member.id)))
    digest = func.encode(
        func.sha256(func.convert_to(func.array_to_string(ids, ","), "UTF8")), "hex"
    )
    total, hashed = (await session.execute(select(func.count(), digest).where(*where))).one()
    total = int(total)
    if not total:
        return Outcome(0, eligible_hash([]), [])
    if classes is None:
        sizes = [(0, total, 1.0)]
    else:
        counted = select(code, func.count()).where(*where).group_by(code)
        sizes = [(int(c), int(n), weight_of(int(c))) for c, n in await session.execute(counted)]
    picks = sample(seed, sizes, rule.count)
    return Outcome(total, str(hashed), await _resolve(session, where, code, classes, picks))


async def _resolve(
    session: AsyncSession,
    where: list[ColumnElement[bool]],
    code: ColumnElement[int],
    classes: WeightClasses | None,
    picks: list[tuple[int, int]],
) -> list[int]:
    """The ids at the picked (class, rank)s: one ordered id array per picked class, built and
    indexed in PostgreSQL, so only the winners come back."""
    if not picks:
        return []
    wanted = (
        func.unnest(
            bindparam("codes", [c for c, _ in picks], ARRAY(BigInteger)),
            bindparam("ranks", [r for _, r in picks], ARRAY(Integer)),
        )
        .table_valued("code", "rank")
        .render_derived()
    )
    ids = func.array_agg(aggregate_order_by(col(Member.id), col(Member.id)), type_=ARRAY(Integer))
    if classes is None:
        arrays = select(literal(0, BigInteger).label("code"), ids.label("ids")).where(*where)
    else:
        picked = sorted({c for c, _ in picks})
        arrays = (
            select(code.label("code"), ids.label("ids"))
            .where(*where, code == any_(bindparam("picked", picked, ARRAY(BigInteger))))
            .group_by(code)
        )
    by_class = arrays.subquery()
    found = select(wanted.c.code, wanted.c.rank, by_class.c.ids[wanted.c.rank + 1]).join_from(
        wanted, by_class, by_class.c.code == wanted.c.code
    )
    at = {(int(c), int(r)): int(i) for c, r, i in await session.execute(found)}
    return [at[pick] for pick in picks]


async def _in_python(
    session: AsyncSession,
    where: list[ColumnElement[bool]],
    code: ColumnElement[int],
    weight_of: Any,
    seed: str,
    count: int,
    within: Collection[int] | None,
    exclude: Collection[int] | None,
) -> Outcome:
    """SQLite: the (id, class) pairs as plain tuples, the rest of algorithm 3 in Python."""
    member_id_column = cast(ColumnElement[int], col(Member.id))  # the primary key: never NULL
    rows = await session.execute(select(member_id_column, code).where(*where))
    allowed = None if within is None else {int(i) for i in within}
    barred = {int(i) for i in exclude or ()}
    members = [
        (int(member_id), int(c))
        for member_id, c in rows
        if (allowed is None or member_id in allowed) and member_id not in barred
    ]
    ids = sorted(member_id for member_id, _ in members)
    weights = {c: weight_of(c) for c in {c for _, c in members}}
    return Outcome(len(ids), eligible_hash(ids), replay_classes(seed, members, weights, count))

"""Lottery algorithm 3: the draw is computed where the eligible set lives.

Algorithm 2 fetched every eligible id (and, weighted, every member's department and job code)
to hash and weigh them in Python: at 100,000 eligible members the draw's cost grew with
shipping the set. Algorithm 3 makes one pass over the eligible members in the database and
sends O(count) values across the wire:

- **Proposals.** ``random.Random(seed)`` yields, for each proposal, ``r = getrandbits(62)`` and,
  for a weighted rule, ``u = random()``. Proposal ``r`` names the member at rank ``r mod n``
  among the ``n`` eligible members in ascending id order (the bias of ``mod`` is below
  ``n / 2**62``, about 2e-14 at 100,000 members). A proposal naming a member already drawn is
  skipped; a weighted one is accepted when ``u × bound < weight`` (rejection sampling:
  `WeightClasses.bound` is at least every member's weight), so each member's chance to be drawn
  next is exactly its weight / the weight still in the draw. Proposals are taken in order until
  ``count`` members (or all ``n``) are drawn.
- **One statement per batch of proposals** (PostgreSQL): the eligible ids are aggregated into an
  array ordered by id inside the database (weighted, the class sizes are counted in the same
  pass), which returns the count, the sha256 of the comma-joined ids (the same `eligible_hash` as
  algorithms 1 and 2) and, per proposal, the id at its rank and that member's class (a
  primary-key look-up): a row per proposal, none per member. The first
  batch is sized for the usual draw (``count`` much smaller than ``n``); another batch, rarely
  needed, continues the same random stream, so the winners do not depend on the batching.
- **Weight classes.** Members of one class have the same weight (`WeightClasses`): the class
  code is computed by a CASE in SQL and the weight in Python, so weights never depend on SQL
  floating point.

SQLite, the small embedded default, runs the same eligibility query but returns the (id, class)
pairs as plain tuples and the draw happens in Python (`replay_classes`), with the same result
for the same members.

`within` and `exclude` (see `rewards.rules.lottery`) become part of the query on PostgreSQL: a
bound array for `within` (probed through the primary key) and an anti-join against ``unnest`` of
`exclude` (hashed whatever plan the statement cache settles on; ``<> ALL(array)`` is a linear
search per row under a generic plan).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Collection, Mapping, Sequence
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
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
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

    def code(self, member: Any = Member) -> ColumnElement[int]:
        """The class code of a `member` row (or of an alias of the table), in SQL."""
        department: Any = literal(0)
        if self.departments:
            department = case(
                {name: n for n, name in enumerate(self.departments, start=1)},
                value=member.department,
                else_=0,
            )
        job: Any = literal(0)
        if self.job_codes:
            job = case(
                {name: n for n, name in enumerate(self.job_codes, start=1)},
                value=member.job_code,
                else_=0,
            )
        mask: Any = literal(0)
        for bit, name in enumerate(self.groups):
            # IN (subquery): a hashed subplan, built once, not a look-up per member.
            members = select(col(MemberGroup.member_id)).where(col(MemberGroup.name) == name)
            mask = mask + case((member.id.in_(members), 2**bit), else_=0)
        spread_j = len(self.departments) + 1
        spread_g = spread_j * (len(self.job_codes) + 1)
        expression: ColumnElement[int] = (department + job * spread_j + mask * spread_g).cast(
            BigInteger
        )
        return expression

    @property
    def ceiling(self) -> float:
        """At least every member's weight: each attribute's largest factor (1.0 for a value
        not listed) and every listed group's factor above 1, multiplied."""
        value = max((1.0, *self.department_weights)) * max((1.0, *self.job_code_weights))
        for weight in self.group_weights:
            value *= max(1.0, weight)
        return value

    @property
    def space(self) -> int:
        """How many class codes there can be."""
        return int((len(self.departments) + 1) * (len(self.job_codes) + 1) * 2 ** len(self.groups))

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


_BATCH_LIMIT = 100_000  # proposals per statement
_FILTERED_CLASSES = 32  # up to this many possible class codes, sized by filtered counts


class _Draw:
    """The proposals of one draw and what they decided; shared by both databases.

    Weighted, the rejection bound is the largest weight among the classes that still have a
    member to draw (`sizes` are the class sizes), so it drops as the heavy classes empty.
    """

    def __init__(
        self,
        seed: str,
        count: int,
        weight_of: Callable[[int], float] | None,
        ceiling: float = 1.0,
    ) -> None:
        self.rng = random.Random(seed)
        self.count = max(count, 0)
        self.weight_of = weight_of  # None: unweighted, every new member proposed is drawn
        self.sizes: dict[int, int] = {}
        self.taken: dict[int, int] = {}
        self.winners: list[int] = []
        self.drawn: set[int] = set()
        # Enough proposals for the usual draw in one statement: a weighted proposal is accepted
        # with probability weight / largest weight, at least 1 / `ceiling` of the time.
        spread = min(math.ceil(ceiling), 32)
        self.batch = (2 * spread if weight_of else 4) * self.count + 16

    def proposals(self) -> list[tuple[int, float]]:
        """The next batch of (r, u), from the same random stream; each batch is larger."""
        size = min(self.batch, _BATCH_LIMIT)
        self.batch = size * 4
        if self.weight_of is None:
            return [(self.rng.getrandbits(62), 1.0) for _ in range(size)]
        batch = []
        for _ in range(size):
            r = self.rng.getrandbits(62)
            batch.append((r, self.rng.random()))
        return batch

    def wanted(self, n: int) -> int:
        if self.weight_of is None:
            return min(self.count, n)
        weight_of = self.weight_of
        drawable = sum(size for code, size in self.sizes.items() if weight_of(code) > 0)
        return min(self.count, drawable)

    def offer(self, n: int, u: float, member_id: int, code: int) -> None:
        if self.done(n) or member_id in self.drawn:
            return
        if self.weight_of is not None:
            bound = max(
                self.weight_of(c) for c, size in self.sizes.items() if self.taken.get(c, 0) < size
            )
            if not u * bound < self.weight_of(code):
                return
            self.taken[code] = self.taken.get(code, 0) + 1
        self.drawn.add(member_id)
        self.winners.append(member_id)

    def done(self, n: int) -> bool:
        return len(self.winners) >= self.wanted(n)


def replay_classes(
    seed: str,
    members: Sequence[tuple[int, int]],
    weights: Mapping[int, float] | None,
    count: int,
) -> list[int]:
    """Algorithm 3 over (member id, class code) pairs held in memory; pure.

    `weights` maps a class code to its weight (missing: 1.0), None for an unweighted draw.
    Members of weight 0 or less are never drawn. The draw both databases make.
    """
    ordered = sorted(members)
    table = weights
    state = _Draw(seed, count, None if table is None else (lambda c: float(table.get(c, 1.0))))
    for _, code in ordered:
        state.sizes[code] = state.sizes.get(code, 0) + 1
    n = len(ordered)
    while not state.done(n):
        for r, u in state.proposals():
            member_id, code = ordered[r % n]
            state.offer(n, u, member_id, code)
            if state.done(n):
                break
    return state.winners


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
    where = conditions(reward_id, rule, now, org_zone)
    if session.get_bind().dialect.name != "postgresql":
        return await _in_python(session, where, classes, seed, rule.count, within, exclude)
    if within is not None:
        where.append(col(Member.id) == any_(bindparam("within", sorted(within), ARRAY(Integer))))
    if exclude:
        values = bindparam("exclude", sorted(exclude), ARRAY(Integer))
        barred = func.unnest(values).table_valued("id").render_derived()
        where.append(~exists().select_from(barred).where(barred.c.id == col(Member.id)))
    member_id = col(Member.id)
    if classes is None:
        source = select(member_id.label("id")).where(*where).subquery("members")
    else:
        # OFFSET 0 keeps the subquery: the class code is computed once per member for the
        # class sizes, not once per filtered count that reads it.
        code = classes.code().label("code")
        source = select(member_id.label("id"), code).where(*where).offset(0).subquery("members")
    ids = func.array_agg(aggregate_order_by(source.c.id, source.c.id), type_=ARRAY(Integer))
    columns: list[Any] = [
        func.count().label("total"),
        func.encode(
            func.sha256(func.convert_to(func.array_to_string(ids, ","), "UTF8")), "hex"
        ).label("digest"),
        ids.label("ids"),
    ]
    extra: list[Any] = []
    if classes is not None and classes.space <= _FILTERED_CLASSES:
        # The class sizes in the same pass: a filtered count per possible code.
        sized = [func.count().filter(source.c.code == c) for c in range(classes.space)]
        columns.append(postgresql.array(sized).label("sizes"))
    eligible = select(*columns).select_from(source).subquery("eligible")
    grouped: Any = None  # the class sizes of a rule with many possible codes: GROUP BY
    if classes is not None:
        if classes.space <= _FILTERED_CLASSES:
            extra = [eligible.c.sizes]
        else:
            counted = (
                select(source.c.code, func.count().label("size")).group_by(source.c.code).subquery()
            )
            sizes = select(
                func.array_agg(counted.c.code, type_=ARRAY(BigInteger)).label("codes"),
                func.array_agg(counted.c.size, type_=ARRAY(BigInteger)).label("sizes"),
            ).subquery("classes")
            extra = [sizes.c.codes, sizes.c.sizes]
            grouped = sizes
    state = (
        _Draw(seed, rule.count, classes.weight, classes.ceiling)
        if classes
        else _Draw(seed, rule.count, None)
    )
    while True:
        batch = state.proposals()
        proposed = (
            func.unnest(bindparam("proposals", [r for r, _ in batch], ARRAY(BigInteger)))
            .table_valued("r", with_ordinality="n")
            .render_derived()
        )
        rank = (1 + proposed.c.r % func.nullif(eligible.c.total, 0)).cast(Integer)
        picked: list[Any] = [eligible.c.total, eligible.c.digest, eligible.c.ids[rank]]
        statement = select(*picked).select_from(eligible)
        statement = statement.join(proposed, true())
        if classes is not None:
            # The class of a proposed member only: a primary-key look-up per proposal.
            proposed_member = aliased(Member, name="proposed_member")
            statement = statement.add_columns(classes.code(proposed_member), *extra).outerjoin(
                proposed_member, col(proposed_member.id) == eligible.c.ids[rank]
            )
            if grouped is not None:
                statement = statement.join(grouped, true())
        statement = statement.order_by(proposed.c.n)
        rows = (await session.execute(statement)).all()
        total, digest = int(rows[0][0]), rows[0][1]
        if not total:
            return Outcome(0, eligible_hash([]), [])
        if grouped is not None:
            state.sizes = {int(c): int(n) for c, n in zip(rows[0][4], rows[0][5], strict=True)}
        elif classes is not None:
            state.sizes = {c: int(n) for c, n in enumerate(rows[0][4]) if n}
        for (_, u), row in zip(batch, rows, strict=True):
            state.offer(total, u, int(row[2]), int(row[3]) if classes is not None else 0)
            if state.done(total):
                return Outcome(total, str(digest), state.winners)


async def _in_python(
    session: AsyncSession,
    where: list[ColumnElement[bool]],
    classes: WeightClasses | None,
    seed: str,
    count: int,
    within: Collection[int] | None,
    exclude: Collection[int] | None,
) -> Outcome:
    """SQLite: the (id, class) pairs as plain tuples, the rest of algorithm 3 in Python."""
    member_id_column = cast(ColumnElement[int], col(Member.id))  # the primary key: never NULL
    code: ColumnElement[int] = classes.code() if classes else literal(0, BigInteger)
    rows = await session.execute(select(member_id_column, code).where(*where))
    allowed = None if within is None else {int(i) for i in within}
    barred = {int(i) for i in exclude or ()}
    members = [
        (int(member_id), int(c))
        for member_id, c in rows
        if (allowed is None or member_id in allowed) and member_id not in barred
    ]
    ids = sorted(member_id for member_id, _ in members)
    weights = None if classes is None else {c: classes.weight(c) for c in {c for _, c in members}}
    return Outcome(len(ids), eligible_hash(ids), replay_classes(seed, members, weights, count))

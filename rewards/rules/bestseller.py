"""BestSeller: the top `count` members by a metric column over the reward's period.

Data: `metric_record(dataset, member_id, day, name, value)`; the rule sums `value` over the rows
with ``dataset = rule.dataset`` and ``name = rule.column`` whose `day` lies in the reward's
period (its timeframe bucket in the organisation's `TIMEZONE`, else the calendar month; see
`rewards.rules.achievement.reward_period`). One grouped query; ranking in Python.

Ranking is "competition" style: members with equal totals share a rank and the next rank skips
(100, 90, 90, 80 -> 1, 2, 2, 4). Everyone whose rank is at most `count` wins, so a tie at the
boundary gives more than `count` winners rather than breaking the tie by an arbitrary choice;
winners are listed by rank, then member id. A total of 0 (or less) never wins: "best seller with
no sales" is not an achievement. Only active members are ranked.

Candidates' args carry ``{column: total, "rank": n}`` so the seed's "Top Seller" message
``{{args.sales_count}} sales ... ranked #{{args.rank}}`` renders; whole totals are ints. The key is
``bestseller:{period label}``: one win per period.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import col

from rewards.catalog.rules import BestSeller
from rewards.rules.achievement import Period
from rewards.rules.base import Candidate, EvalContext
from rewards.store.models import Member, MetricRecord


def _number(total: float) -> int | float:
    return int(total) if float(total).is_integer() else float(total)


async def best_sellers(ctx: EvalContext, rule: BestSeller, period: Period) -> list[Candidate]:
    """The ranked winners of `rule` over `period`."""
    total = func.sum(col(MetricRecord.value))
    query = (
        select(col(MetricRecord.member_id), total)
        .join(Member, col(Member.id) == col(MetricRecord.member_id))
        .where(
            col(MetricRecord.dataset) == rule.dataset,
            col(MetricRecord.name) == rule.column,
            col(MetricRecord.day) >= period.first_day,
            col(MetricRecord.day) < period.end_day,
            col(Member.active).is_(True),
        )
        .group_by(col(MetricRecord.member_id))
        .having(total > 0)
    )
    async with ctx.db.read() as session:
        rows = (await session.execute(query)).all()
    totals = sorted(
        ((int(member_id), float(value)) for member_id, value in rows),
        key=lambda item: (-item[1], item[0]),
    )
    found: list[Candidate] = []
    rank, previous = 0, None
    for position, (member_id, value) in enumerate(totals, start=1):
        if value != previous:
            rank, previous = position, value
        if rank > rule.count:
            break
        found.append(
            Candidate(
                member_id=member_id,
                key=f"bestseller:{period.label}",
                args={rule.column: _number(value), "rank": rank},
            )
        )
    return found

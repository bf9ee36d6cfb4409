"""The close's count: the votes per candidate, and the tie rule that picks the winners when
the most voted tie.

`earliest_nomination` keeps the candidate nominated first, `co_winners` keeps every tied one, and
`random_draw` draws one; the draw's seed and the sha256 of the tied ids are recorded in the
outcome, so `rewards.rules.lottery.replay` can verify the draw.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.catalog.nomination import NominationConfig
from rewards.clock import as_utc
from rewards.rules.lottery import eligible_hash, replay
from rewards.store.models import Nomination, NominationVote


async def tally(
    session: AsyncSession, campaign_id: int
) -> tuple[dict[int, int], dict[int, tuple[datetime, int]]]:
    """The votes per candidate, and each candidate's first nomination (its time and id, for
    `earliest_nomination`)."""
    tallies: dict[int, int] = {}
    for nominee, count in await session.execute(
        select(col(NominationVote.nominee_id), func.count())
        .where(col(NominationVote.campaign_id) == campaign_id)
        .group_by(col(NominationVote.nominee_id))
    ):
        tallies[int(nominee)] = int(count)
    first: dict[int, tuple[datetime, int]] = {}
    for nominee, created, nomination_id in await session.execute(
        select(col(Nomination.nominee_id), col(Nomination.created_at), col(Nomination.id))
        .where(col(Nomination.campaign_id) == campaign_id)
        .order_by(col(Nomination.created_at), col(Nomination.id))
    ):
        first.setdefault(int(nominee), (as_utc(created), int(nomination_id or 0)))
    return tallies, first


def decide(
    config: NominationConfig,
    tallies: dict[int, int],
    first: dict[int, tuple[datetime, int]],
) -> tuple[list[int], dict[str, Any] | None]:
    """The winners, and how a tie among the most voted was broken (None without a tie);
    candidates without a vote never win."""
    counted = {m: n for m, n in tallies.items() if m in first and n > 0}
    if not counted:
        return [], None
    top = max(counted.values())
    tied = sorted(m for m, n in counted.items() if n == top)
    if len(tied) == 1:
        return tied, None
    if config.tie_rule == "co_winners":
        return tied, {"rule": "co_winners", "tied": tied}
    if config.tie_rule == "random_draw":
        seed = secrets.token_hex(16)
        winners = replay(seed, tied, {}, 1)
        return winners, {
            "rule": "random_draw",
            "tied": tied,
            "seed": seed,
            "hash": eligible_hash(tied),
            "method": "rewards.rules.lottery.replay(seed, tied, {}, 1)",
        }
    earliest = min(tied, key=lambda m: first[m])
    return [earliest], {"rule": "earliest_nomination", "tied": tied}

"""What the nomination service returns and the words it uses: a campaign's statuses, the
longest reason it takes, and the views of campaigns, nominations, candidates, votes and counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

NOMINATING, VOTING, CLOSED, CANCELLED = "nominating", "voting", "closed", "cancelled"
OPEN_PHASES = (NOMINATING, VOTING)
MAX_REASON = 1000


@dataclass(frozen=True)
class CampaignView:
    id: int
    reward_id: int
    reward_name: str
    status: str
    opened_at: datetime
    nominations_close_at: datetime
    voting_close_at: datetime
    closed_at: datetime | None
    max_votes_per_user: int
    max_nominations_per_user: int
    winners: tuple[int, ...] = ()
    tallies: dict[int, int] | None = None  # only once closed
    messages: tuple[dict[str, Any], ...] = ()
    outcome: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NominationView:
    id: int
    campaign_id: int
    nominator_id: int
    nominee_id: int
    nominee_name: str
    reason: str
    created: datetime


@dataclass(frozen=True)
class CandidateView:
    member_id: int
    name: str
    reasons: tuple[str, ...]
    first_nominated_at: datetime


@dataclass(frozen=True)
class VoteResult:
    changed: bool
    previous: int | None  # the nominee whose vote was replaced, if any
    votes: tuple[int, ...]  # the voter's votes after this one, oldest first


@dataclass(frozen=True)
class CampaignStats:
    """Counts for `rewards nominations status`: never who is ahead."""

    candidates: int
    nominations: int
    voters: int

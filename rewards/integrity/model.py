"""What the integrity report finds, as plain frozen views, and the thresholds it uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class Thresholds:
    """When something "stands out". The defaults keep an ordinary organisation's report empty:
    colleagues who thank each other often still receive most of their points from others.

    Rings: every member of the ring received at least `ring_share` of their points (from people,
    in the window) from the other members, gave at least `ring_share` of theirs to them, and
    received at least `ring_min_kudos` kudos or badges from them. Only edges carrying at least
    `edge_share` of the receiver's points and `ring_min_kudos` gifts are followed when looking
    for cycles (a ring of four still has one such edge into each member).

    Bursts: a giver's day counts when they gave at least `burst_min` kudos that day and at least
    `burst_factor` times their usual day (the median of their other active days in the window,
    1 when they have none). A campaign's hour counts when it got at least `vote_burst_min`
    votes and at least `vote_burst_factor` times the campaign's median hour with votes."""

    ring_share: float = 0.5
    ring_min_kudos: int = 5
    edge_share: float = 0.15
    ring_max_size: int = 4
    burst_min: int = 10
    burst_factor: float = 5.0
    vote_burst_min: int = 10
    vote_burst_factor: float = 5.0


@dataclass(frozen=True)
class RingMember:
    member_id: int
    name: str
    received_points: int
    """Points received from people (kudos and badges they gave) in the window."""
    from_ring_points: int
    from_ring_kudos: int
    given_share: float
    """The share of the points this member gave that went to the ring."""

    @property
    def received_share(self) -> float:
        """The share of this member's received points that came from the ring."""
        return self.from_ring_points / self.received_points if self.received_points else 1.0


@dataclass(frozen=True)
class Ring:
    members: tuple[RingMember, ...]

    @property
    def kudos(self) -> int:
        """Kudos and badges the members gave each other in the window."""
        return sum(m.from_ring_kudos for m in self.members)


@dataclass(frozen=True)
class GiverBurst:
    member_id: int
    name: str
    day: date
    count: int
    usual: float
    """The giver's median kudos on their other active days in the window (1 if none)."""


@dataclass(frozen=True)
class VoteBucket:
    start: datetime
    """The hour (UTC) the votes were cast in."""
    votes: int
    voters: int
    burst: bool = False
    usual: float = 0.0
    """The campaign's median hour with votes (the other hours)."""
    top_nominee: str | None = None
    top_votes: int = 0
    """For a burst: the candidate most of its votes went to, and how many."""


@dataclass(frozen=True)
class CampaignTimeline:
    campaign_id: int
    reward_name: str
    status: str
    buckets: tuple[VoteBucket, ...]

    @property
    def bursts(self) -> tuple[VoteBucket, ...]:
        return tuple(b for b in self.buckets if b.burst)


@dataclass(frozen=True)
class IntegrityReport:
    since: datetime
    until: datetime
    rings: tuple[Ring, ...]
    bursts: tuple[GiverBurst, ...]
    campaigns: tuple[CampaignTimeline, ...]
    thresholds: Thresholds

    @property
    def clean(self) -> bool:
        """Nothing stands out: no ring, no giver burst, no vote burst."""
        return not self.rings and not self.bursts and not any(c.bursts for c in self.campaigns)

"""Nomination campaigns: a Nomination Badge's nominating, voting and closing, by the rules of its
`nomination_config`.

A campaign moves nominating -> voting (or cancelled with too few nominations) -> closed. The
parts, each with its own explanations:

- `views`: the statuses and what the service returns;
- `eligibility`: who may nominate, be nominated and vote;
- `tally`: the count and the tie rules (with the replayable random draw);
- `base`: the state and the helpers the service's parts share;
- `reading`, `nominating` (opening too), `voting`, `closing` (cancelling too) and `phases` (the
  scheduler's `advance`): the parts of `NominationService`, assembled in `service`.
"""

from __future__ import annotations

from rewards.services.nominations.service import NominationService
from rewards.services.nominations.views import (
    CANCELLED,
    CLOSED,
    MAX_REASON,
    NOMINATING,
    OPEN_PHASES,
    VOTING,
    CampaignStats,
    CampaignView,
    CandidateView,
    NominationView,
    VoteResult,
)

__all__ = [
    "CANCELLED",
    "CLOSED",
    "MAX_REASON",
    "NOMINATING",
    "OPEN_PHASES",
    "VOTING",
    "CampaignStats",
    "CampaignView",
    "CandidateView",
    "NominationService",
    "NominationView",
    "VoteResult",
]

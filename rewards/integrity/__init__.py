"""The integrity report: signs that someone is gaming recognition, for admins only.

- `rings`: reciprocity rings, pairs and small cycles (up to four members) who mostly give to
  each other, with the share of each member's received points that came from the ring;
- `bursts`: a giver's day far above their usual rate (kudos), and for each open nomination
  campaign the vote timeline with its bursts flagged;
- `report`: both over a window, with the members' names, as one `IntegrityReport`.

Everything heavy is set-based SQL that runs the same on SQLite and PostgreSQL (`sql`): the
giver→receiver edges are aggregated in the database and only the few heavy ones (and the few
busy giver-days and vote-hours) come back to Python for the small graph and median work.
The report shows vote counts of campaigns that are still open, so it is only ever shown to
admins (`REWARDS_ADMINS`); members keep seeing totals only until the close.
"""

from __future__ import annotations

from rewards.integrity.model import (
    CampaignTimeline,
    GiverBurst,
    IntegrityReport,
    Ring,
    RingMember,
    Thresholds,
    VoteBucket,
)
from rewards.integrity.report import build_report, window_of

__all__ = [
    "CampaignTimeline",
    "GiverBurst",
    "IntegrityReport",
    "Ring",
    "RingMember",
    "Thresholds",
    "VoteBucket",
    "build_report",
    "window_of",
]

"""`nomination_config`: the settings of a Nomination Badge campaign (Employee of the Month style).

The original rejected this section in its strict reward model, so JSON-defined Nomination Badges
never loaded; here it is a validated part of the definition, and a Nomination Badge without one
gets these defaults.

- `nomination_duration_days` (7) then `voting_duration_days` (5);
- `allow_self_nomination` (false); `allow_self_vote` (false: a candidate never votes for
  themselves); `max_nominations_per_user` (1); `max_votes_per_user` (1);
- `min_nominations` (1): fewer nominations at the end of the nomination phase cancel the campaign;
- `eligible_nominators` / `eligible_nominees` / `eligible_voters`: ``{job_codes, departments,
  groups, min_tenure_days}``; empty means every active member. All three are enforced (the
  original stored `eligible_nominees` and never read it);
- `tie_rule`: `earliest_nomination` (the first nominated of the tied wins, as in the original),
  `co_winners` (all tied win) or `random_draw` (one of the tied, drawn once and recorded);
- `channels`: where campaign announcements are posted (channel references resolved by the bots).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from rewards.catalog.problems import Issue, issues_from, show
from rewards.catalog.rules import Label, MemberCriteria


class NominationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    nomination_duration_days: StrictInt = Field(default=7, ge=1, le=365)
    voting_duration_days: StrictInt = Field(default=5, ge=1, le=365)
    allow_self_nomination: StrictBool = False
    allow_self_vote: StrictBool = False
    max_nominations_per_user: StrictInt = Field(default=1, ge=1, le=1000)
    max_votes_per_user: StrictInt = Field(default=1, ge=1, le=1000)
    min_nominations: StrictInt = Field(default=1, ge=1, le=100_000)
    eligible_nominators: MemberCriteria = Field(default_factory=MemberCriteria)
    eligible_nominees: MemberCriteria = Field(default_factory=MemberCriteria)
    eligible_voters: MemberCriteria = Field(default_factory=MemberCriteria)
    tie_rule: Literal["earliest_nomination", "co_winners", "random_draw"] = "earliest_nomination"
    channels: tuple[Label, ...] | None = None

    def describe(self) -> str:
        return (
            f"{self.nomination_duration_days} days of nominations, then "
            f"{self.voting_duration_days} days of voting; ties: {self.tie_rule.replace('_', ' ')}"
        )


def collect_nomination(
    raw: object, where: str = "nomination_config"
) -> tuple[NominationConfig | None, list[Issue]]:
    if raw is None:
        return None, []
    if not isinstance(raw, dict):
        return None, [(where, f"must be an object, got {show(raw)}")]
    try:
        return NominationConfig.model_validate(raw), []
    except ValidationError as error:
        return None, issues_from(error, where, NominationConfig)

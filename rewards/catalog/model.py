"""The typed form of one catalogue entry (the seed's reward JSON).

Only the fields the award pipeline reads are spelled out here; the rule, job, workflow and
nomination sections are typed in their own modules and attached by `rewards.catalog.loader`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from rewards.catalog.availability import AvailabilityRule
from rewards.catalog.permissions import PermissionEntry


class RewardKind(StrEnum):
    USER = "User Badge"
    AUTOMATED = "Automated Badge"
    ACHIEVEMENT = "Achievement Badge"
    COMPUTED = "Computed Badge"
    WORKFLOW = "Workflow Badge"
    NOMINATION = "Nomination Badge"

    @property
    def person_can_give(self) -> bool:
        """Only User Badges are handed out by people; the rest are given by the system."""
        return self is RewardKind.USER


class Timeframe(StrEnum):
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"


def _choice(value: object, kind: type[StrEnum], what: str, hint: str = "") -> object:
    """A readable refusal for an enum field: the value, the valid ones, and a hint."""
    if isinstance(value, str) and value not in {member.value for member in kind}:
        valid = ", ".join(member.value for member in kind)
        raise ValueError(f'unknown {what} "{value}"{hint}; valid: {valid}')
    return value


class RewardCore(BaseModel):
    """The core fields of a reward, shared by every reward type.

    Numbers and flags are strict (``"100"`` is not a number, ``"yes"`` is not a boolean): the
    catalogue is hand-written JSON, and a coerced typo is a silently wrong reward.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    reward_id: StrictInt = Field(gt=0, le=2**31 - 1)  # the database's id column is 32-bit
    reward: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    points: StrictInt = Field(default=10, ge=0, le=1_000_000)
    reward_type: RewardKind = RewardKind.USER
    reward_category: str = Field(min_length=1, max_length=200)
    reward_group: str | None = Field(default=None, max_length=200)
    multiple: StrictBool = False
    timeframe: Timeframe | None = None
    cooldown_minutes: StrictInt | None = Field(default=None, ge=0, le=525_600)
    icon: str | None = Field(default=None, max_length=2000)
    message: str | None = Field(default=None, max_length=4000)
    enabled: StrictBool = True
    availability_rule: AvailabilityRule | None = None
    assigner: tuple[PermissionEntry, ...] = ()
    awardee: tuple[PermissionEntry, ...] = ()
    conditions: dict[str, Any] = Field(default_factory=dict)

    def template_vars(self) -> dict[str, object]:
        """What a message template may read as `reward`."""
        return {
            "id": self.reward_id,
            "name": self.reward,
            "reward": self.reward,
            "description": self.description,
            "points": self.points,
            "type": self.reward_type.value,
            "category": self.reward_category,
        }

    @field_validator("reward_type", mode="before")
    @classmethod
    def _known_type(cls, value: object) -> object:
        hint = (
            " (the README's field template uses this placeholder; it is not a reward)"
            if value == "Badge Type"
            else ""
        )
        return _choice(value, RewardKind, "reward type", hint)

    @field_validator("timeframe", mode="before")
    @classmethod
    def _known_timeframe(cls, value: object) -> object:
        return _choice(value, Timeframe, "timeframe")

    @field_validator("availability_rule", mode="before")
    @classmethod
    def _empty_availability(cls, value: object) -> object:
        return None if value in ({}, None) else value

    @field_validator("assigner", "awardee", mode="before")
    @classmethod
    def _entries(cls, value: object) -> object:
        # Each entry is validated by PermissionEntry itself, so problems are located by index
        # (``assigner[1].job_code``); bare emails and ids become member clauses there.
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise ValueError('must be a list of entries such as {"job_code": ["MANAGER"]}')
        return value

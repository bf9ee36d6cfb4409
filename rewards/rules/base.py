"""What every rule evaluator receives and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rewards.settings import Settings
from rewards.store.db import Database


@dataclass(frozen=True)
class EvalContext:
    """One evaluation: the database, the moment (UTC; rules convert to each member's own zone),
    the settings (organisation zone, weekend policy) and the reward being evaluated."""

    db: Database
    now: datetime
    settings: Settings
    reward_id: int


@dataclass(frozen=True)
class Candidate:
    """A member a rule selects, with the values its message template may read as `args`.

    `key` makes the award idempotent for this occurrence (e.g. "birthday:2027" or a draw id), so a
    re-run of the same evaluation can never award twice.
    """

    member_id: int
    key: str
    args: dict[str, Any] = field(default_factory=dict)

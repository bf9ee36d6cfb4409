"""The contract between the engine and a dialog.

A dialog is a small state machine over named steps. `start` begins it (from a command's
arguments); a step that needs input returns `Ask(step, values)`, and the engine shows that step's
card: whole, where the platform can (`Turn.whole_forms`), or field by field from the card's
`Form`. Either way the collected values reach the same `submit(step, values)`, so a dialog is
written once for every platform. Dialogs raise `RewardsError` for anything the person should
hear; the engine turns it into a friendly notice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from cards.model import Card
from dialogs.events import Turn
from dialogs.replies import Reply
from rewards.core import Core


@dataclass(frozen=True)
class Context:
    """Everything a dialog may use for one turn."""

    core: Core
    turn: Turn
    now: datetime

    @property
    def member_id(self) -> int:
        return self.turn.member_id


@dataclass(frozen=True)
class Ask:
    """Continue at `step` with `values` collected so far (plain JSON: they are stored)."""

    step: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Finish:
    """The dialog is over; send these replies."""

    replies: tuple[Reply, ...] = ()


Step = Ask | Finish


@dataclass(frozen=True)
class StepTokens:
    """The action tokens of the step being shown: they carry the state's nonce."""

    submit: str
    cancel: str


class Dialog:
    """Base class; override what the dialog needs. `name` is its command and token prefix."""

    name: ClassVar[str] = ""

    async def start(self, ctx: Context, args: str) -> Step:
        raise NotImplementedError

    async def card(
        self, ctx: Context, step: str, values: dict[str, Any], tokens: StepTokens
    ) -> Card:
        """The card of `step`. Its `form`, if any, is what field-by-field mode asks for."""
        raise NotImplementedError(f"{self.name} has no step {step!r}")

    async def submit(self, ctx: Context, step: str, values: dict[str, Any]) -> Step:
        """The values of `step` (its form, or a confirmation) are in: go on or finish."""
        raise NotImplementedError(f"{self.name} has no step {step!r}")

    async def action(self, ctx: Context, verb: str, ref: str) -> Step | None:
        """A stateless button (e.g. "full leaderboard"); None if the verb is not known."""
        return None

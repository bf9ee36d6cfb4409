"""Typed errors of the core, each with a sentence a person can read in a chat or an API reply.

Dialogs show `str(error)` as is and the API maps the class to a status code, so the sentence must
never leak internals (SQL, stack frames, ids nobody knows).
"""

from __future__ import annotations


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it.

    Here rather than in `rewards.settings` so the command line can catch it without importing
    the settings models (pydantic-settings), which `rewards --help` does not need."""


class RewardsError(Exception):
    """Base class: `str(error)` is a human sentence."""

    status = 400
    code = "rewards-error"


class NotFound(RewardsError):
    status = 404
    code = "not-found"


class UnknownMember(NotFound):
    code = "unknown-member"


class UnknownReward(NotFound):
    code = "unknown-reward"


class UnknownItem(NotFound):
    """No rewards shop item with that id or name."""

    code = "unknown-item"


class UnknownRedemption(NotFound):
    code = "unknown-redemption"


class NotAllowed(RewardsError):
    status = 403
    code = "not-allowed"


class SelfAward(NotAllowed):
    code = "self-award"


class NotAvailable(RewardsError):
    status = 409
    code = "not-available"


class AlreadyAwarded(RewardsError):
    status = 409
    code = "already-awarded"


class InvalidInput(RewardsError):
    status = 422
    code = "invalid-input"


class TemplateRefused(InvalidInput):
    code = "template-refused"


class CatalogError(InvalidInput):
    """A catalogue did not validate; `problems` holds one line per problem."""

    code = "catalog-invalid"

    def __init__(self, problems: list[CatalogProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class CatalogProblem:
    """One problem in a catalogue: which reward, which field, what is wrong."""

    __slots__ = ("field", "message", "reward_id")

    def __init__(self, reward_id: object, field: str, message: str) -> None:
        self.reward_id = reward_id
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"reward {self.reward_id}: {self.field}: {self.message}"

    def __repr__(self) -> str:
        return f"CatalogProblem({self.reward_id!r}, {self.field!r}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CatalogProblem) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

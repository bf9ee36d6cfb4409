"""The one error class of the gate: input refused before it reached anything."""

from __future__ import annotations

from rewards.errors import InvalidInput


class InputRefused(InvalidInput):
    """Input the gate refuses; `str(error)` says what and where, in words a sender can act on.

    A subclass of `InvalidInput` (422), so every existing handler (the API's problem+json, the
    dialogs' notice card, the command line's error line) already answers it politely; subclasses
    set the HTTP status where another fits better (400 malformed, 413 too large)."""

    code = "input-refused"

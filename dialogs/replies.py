"""What a dialog answers: neutral replies that each platform adapter sends its own way."""

from __future__ import annotations

from dataclasses import dataclass

from cards.model import Card


@dataclass(frozen=True)
class Show:
    """Post a new card."""

    card: Card


@dataclass(frozen=True)
class Update:
    """Replace the card whose button was pressed (platforms that cannot edit post it instead)."""

    card: Card


@dataclass(frozen=True)
class Say:
    """A plain text message (questions in field-by-field mode, short confirmations)."""

    text: str


@dataclass(frozen=True)
class Done:
    """The conversation is over: platforms may close a modal or drop a keyboard."""


Reply = Show | Update | Say | Done

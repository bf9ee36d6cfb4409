"""What a dialog answers: neutral replies that each platform adapter sends its own way.

Every card reply says who it is for (`Audience`), and the dialog decides it, once, for every
platform: a platform that can show a card to one person alone (Slack's ephemeral messages) keeps
everything that is not for the whole conversation between the bot and the person who acted.
Sentences (`Say`) are always for that person.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cards.model import Card


class Audience(StrEnum):
    """Who may see a card reply."""

    SENDER = "sender"
    """The person who acted, alone: refusals, help, their own rewards, forms and confirmations,
    look-ups such as the leaderboard. The default, so nothing is public unless a dialog says so."""

    EVERYONE = "everyone"
    """The whole conversation: what the team should see (kudos, a badge given, winners)."""

    VIEWERS = "viewers"
    """For an `Update`: whoever already sees the card it replaces (a ballot redrawn in place with
    the number of voters). As a new card it is for the sender."""


@dataclass(frozen=True)
class Show:
    """Post a new card."""

    card: Card
    audience: Audience = Audience.SENDER


@dataclass(frozen=True)
class Update:
    """Replace the card whose button was pressed (platforms that cannot edit post it instead)."""

    card: Card
    audience: Audience = Audience.SENDER


@dataclass(frozen=True)
class Say:
    """A plain text message (questions in field-by-field mode, short confirmations, refusals),
    for the person who acted."""

    text: str


@dataclass(frozen=True)
class Done:
    """The conversation is over: platforms may close a modal or drop a keyboard."""


Reply = Show | Update | Say | Done


def is_public(reply: Show | Update) -> bool:
    """Whether the whole conversation should see this card (see `Audience`)."""
    return reply.audience is Audience.EVERYONE

"""`ChannelGateway`: post, update and DM outside a conversation turn, one implementation per
platform. The scheduler (lottery winners, birthdays) and the REST API use it; they never talk to a
chat SDK themselves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cards.model import Card


@dataclass(frozen=True)
class PostedMessage:
    """Where a posted message lives, so it can be updated later (a vote tally, a closed ballot)."""

    platform: str
    chat_id: str
    message_id: str
    tenant: str = ""


class ChannelGateway(Protocol):
    platform: str

    async def post(self, chat_id: str, card: Card, *, tenant: str = "") -> PostedMessage:
        """Post `card` into a stored channel or chat (see rewards.services.channels)."""
        ...

    async def update(self, message: PostedMessage, card: Card) -> None:
        """Replace a message the bot posted earlier."""
        ...

    async def direct(self, member_id: int, card: Card) -> PostedMessage | None:
        """Send `card` to a member's personal chat; None when the bot has never met them here."""
        ...

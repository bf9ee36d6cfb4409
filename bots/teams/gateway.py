"""`TeamsGateway`: proactive posts, updates and DMs from stored conversation references.

References are captured by the bot on install and on every message (`rewards.services.channels`),
so any replica can post into any chat the bot has been in. Sending goes through
the backend's `continue_conversation` (the SDK's), which talks to the reference's `serviceUrl`.

A reference outside the boundary is never used: another tenant's (one stored before
REWARDS_TENANT_ID was set), or, without an app id, one whose `serviceUrl` is not a loopback URL.
"""

from __future__ import annotations

from typing import Any

from bots.gateway import PostedMessage
from bots.teams.backends import TeamsBackend, TeamsContext
from bots.teams.bot import card_activity
from bots.teams.boundary import is_loopback_url
from bots.teams.people import PLATFORM
from cards.model import Card
from rewards.core import Core
from rewards.errors import NotFound
from rewards.membership import Boundary
from rewards.services.channels import ChannelView, find_channel, personal_channel


class TeamsGateway:
    platform = PLATFORM

    def __init__(self, core: Core, backend: TeamsBackend) -> None:
        self.core = core
        self.backend = backend

    @property
    def adapter(self) -> Any:
        """The SDK's adapter (the notifier wraps its `on_turn_error` to see failed sends)."""
        return self.backend.adapter

    def _inside(self, channel: ChannelView) -> bool:
        boundary = Boundary.from_settings(self.core.settings)
        if boundary.emulator and not is_loopback_url(channel.reference.get("serviceUrl")):
            return False
        return boundary.teams_allows(channel.tenant)

    async def _reference(self, chat_id: str, tenant: str) -> dict[str, Any]:
        channel = await find_channel(self.core.db, PLATFORM, chat_id, tenant=tenant)
        if channel is None:
            raise NotFound(f"The bot has not been added to Teams conversation {chat_id}.")
        if not self._inside(channel):
            raise NotFound(f"Teams conversation {chat_id} is outside this organisation's boundary.")
        return channel.reference

    async def _send(self, reference: dict[str, Any], card: Card) -> str:
        sent: dict[str, str] = {}

        async def callback(context: TeamsContext) -> None:
            sent["id"] = await context.send(card_activity(card))

        await self.backend.continue_conversation(reference, callback)
        return sent.get("id", "")

    async def post(self, chat_id: str, card: Card, *, tenant: str = "") -> PostedMessage:
        reference = await self._reference(chat_id, tenant)
        message_id = await self._send(reference, card)
        return PostedMessage(PLATFORM, chat_id, message_id, tenant)

    async def update(self, message: PostedMessage, card: Card) -> None:
        reference = await self._reference(message.chat_id, message.tenant)

        async def callback(context: TeamsContext) -> None:
            await context.update({**card_activity(card), "id": message.message_id})

        await self.backend.continue_conversation(reference, callback)

    async def direct(self, member_id: int, card: Card) -> PostedMessage | None:
        channel = await personal_channel(self.core.db, PLATFORM, member_id)
        if channel is None or not self._inside(channel):
            return None
        message_id = await self._send(channel.reference, card)
        return PostedMessage(PLATFORM, channel.chat_id, message_id, channel.tenant)

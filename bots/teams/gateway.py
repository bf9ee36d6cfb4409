"""`TeamsGateway`: proactive posts, updates and DMs from stored conversation references.

References are captured by the bot on install and on every message (`rewards.services.channels`),
so any replica can post into any chat the bot has been in. Sending goes through
`CloudAdapter.continue_conversation`, which talks to the reference's `serviceUrl`.

A reference outside the boundary is never used: another tenant's (one stored before
REWARDS_TENANT_ID was set), or, without an app id, one whose `serviceUrl` is not a loopback URL.
"""

from __future__ import annotations

from typing import Any

from botbuilder.core import CloudAdapterBase, TurnContext
from botbuilder.schema import ConversationReference

from bots.gateway import PostedMessage
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

    def __init__(self, core: Core, adapter: CloudAdapterBase, app_id: str) -> None:
        self.core = core
        self.adapter = adapter
        self.app_id = app_id

    def _inside(self, channel: ChannelView) -> bool:
        boundary = Boundary.from_settings(self.core.settings)
        if boundary.emulator and not is_loopback_url(channel.reference.get("serviceUrl")):
            return False
        return boundary.teams_allows(channel.tenant)

    async def _reference(self, chat_id: str, tenant: str) -> ConversationReference:
        channel = await find_channel(self.core.db, PLATFORM, chat_id, tenant=tenant)
        if channel is None:
            raise NotFound(f"The bot has not been added to Teams conversation {chat_id}.")
        if not self._inside(channel):
            raise NotFound(f"Teams conversation {chat_id} is outside this organisation's boundary.")
        return _deserialise(channel.reference)

    async def _send(self, reference: ConversationReference, card: Card) -> str:
        sent: dict[str, str] = {}

        async def callback(context: TurnContext) -> None:
            response = await context.send_activity(card_activity(card))
            sent["id"] = (response.id if response else None) or ""

        await self.adapter.continue_conversation(reference, callback, self.app_id)
        return sent.get("id", "")

    async def post(self, chat_id: str, card: Card, *, tenant: str = "") -> PostedMessage:
        reference = await self._reference(chat_id, tenant)
        message_id = await self._send(reference, card)
        return PostedMessage(PLATFORM, chat_id, message_id, tenant)

    async def update(self, message: PostedMessage, card: Card) -> None:
        reference = await self._reference(message.chat_id, message.tenant)

        async def callback(context: TurnContext) -> None:
            activity = card_activity(card)
            activity.id = message.message_id
            await context.update_activity(activity)

        await self.adapter.continue_conversation(reference, callback, self.app_id)

    async def direct(self, member_id: int, card: Card) -> PostedMessage | None:
        channel = await personal_channel(self.core.db, PLATFORM, member_id)
        if channel is None or not self._inside(channel):
            return None
        message_id = await self._send(_deserialise(channel.reference), card)
        return PostedMessage(PLATFORM, channel.chat_id, message_id, channel.tenant)


def _deserialise(reference: dict[str, Any]) -> ConversationReference:
    result: ConversationReference = ConversationReference().deserialize(reference)
    return result

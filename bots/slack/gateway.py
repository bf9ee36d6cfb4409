"""`SlackGateway`: post, update and DM on Slack outside a conversation turn (announcements,
ballots, winners: all public, or in the member's own DM). Text fallbacks are escaped like the
blocks (`fallback_text`)."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bots.gateway import PostedMessage
from bots.slack.people import PLATFORM
from cards.model import Card
from cards.render.blockkit import fallback_text, to_blocks
from rewards.core import Core
from rewards.services.members import get_member


class SlackGateway:
    """Implements `bots.gateway.ChannelGateway` with the Slack Web API."""

    platform = PLATFORM

    def __init__(self, core: Core, client: AsyncWebClient) -> None:
        self.core = core
        self.client = client

    async def post(self, chat_id: str, card: Card, *, tenant: str = "") -> PostedMessage:
        answer = await self.client.chat_postMessage(
            channel=chat_id, blocks=to_blocks(card), text=fallback_text(card)
        )
        channel = str(answer.get("channel") or chat_id)
        return PostedMessage(PLATFORM, channel, str(answer.get("ts", "")), tenant)

    async def update(self, message: PostedMessage, card: Card) -> None:
        await self.client.chat_update(
            channel=message.chat_id,
            ts=message.message_id,
            blocks=to_blocks(card),
            text=fallback_text(card),
        )

    async def direct(self, member_id: int, card: Card) -> PostedMessage | None:
        member = await get_member(self.core.db, member_id)
        account = member.account(PLATFORM)
        if account is None:
            return None
        opened = await self.client.conversations_open(users=account.user_id)
        channel = (opened.get("channel") or {}).get("id")
        if not channel:
            return None
        return await self.post(str(channel), card, tenant=account.tenant)

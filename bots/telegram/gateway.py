"""`TelegramGateway`: post, edit and DM cards outside a conversation turn (scheduler, REST API)."""

from __future__ import annotations

from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.constants import ParseMode

from bots.gateway import PostedMessage
from cards.model import Card
from cards.render.telegram import TelegramMessage, to_telegram
from rewards.core import Core
from rewards.services.channels import personal_channel

PLATFORM = "telegram"


def keyboard(message: TelegramMessage) -> InlineKeyboardMarkup | None:
    """The rendered keyboard as PTB's `InlineKeyboardMarkup` (None without buttons)."""
    if not message.keyboard:
        return None
    return InlineKeyboardMarkup([[_button(b) for b in row] for row in message.keyboard])


def _button(button: dict[str, str]) -> InlineKeyboardButton:
    if "url" in button:
        return InlineKeyboardButton(button["text"], url=button["url"])
    return InlineKeyboardButton(button["text"], callback_data=button["callback_data"])


def chat_ref(chat_id: str | int) -> int | str:
    """Telegram chat ids are integers; `@channelname` stays a string."""
    text = str(chat_id)
    return int(text) if text.lstrip("-").isdigit() else text


async def send(bot: Bot, chat_id: int | str, message: TelegramMessage) -> Message:
    return await bot.send_message(
        chat_id=chat_id,
        text=message.text,
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard(message),
        disable_web_page_preview=True,
    )


async def edit(bot: Bot, chat_id: int | str, message_id: int, message: TelegramMessage) -> Any:
    return await bot.edit_message_text(
        chat_id=chat_id,
        message_id=message_id,
        text=message.text,
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard(message),
        disable_web_page_preview=True,
    )


class TelegramGateway:
    """`bots.gateway.ChannelGateway` for Telegram; chat ids are Telegram's (as strings)."""

    platform = PLATFORM

    def __init__(self, core: Core, bot: Bot) -> None:
        self.core = core
        self.bot = bot

    async def post(self, chat_id: str, card: Card, *, tenant: str = "") -> PostedMessage:
        sent = await send(self.bot, chat_ref(chat_id), to_telegram(card))
        return PostedMessage(PLATFORM, str(sent.chat.id), str(sent.message_id), tenant)

    async def update(self, message: PostedMessage, card: Card) -> None:
        await edit(self.bot, chat_ref(message.chat_id), int(message.message_id), to_telegram(card))

    async def direct(self, member_id: int, card: Card) -> PostedMessage | None:
        channel = await personal_channel(self.core.db, PLATFORM, member_id)
        if channel is None:
            return None
        return await self.post(str(channel.reference.get("chat_id", channel.chat_id)), card)

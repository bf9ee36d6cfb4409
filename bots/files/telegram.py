"""Telegram: a file into the member's private chat with `sendDocument`.

The private chat is the one the bot last saw the member in; without one, the member's Telegram
user id (a private chat's id is the user's), which works once they have started the bot and is
refused by Telegram (403) otherwise."""

from __future__ import annotations

from telegram import Bot
from telegram.error import Forbidden

from bots.files import read_whole
from rewards.core import Core
from rewards.exports.files import OutgoingFile
from rewards.services.channels import personal_channel
from rewards.services.members import get_member

PLATFORM = "telegram"


class TelegramFiles:
    def __init__(self, core: Core, bot: Bot) -> None:
        self.core = core
        self.bot = bot

    async def _chat(self, member_id: int) -> str | None:
        channel = await personal_channel(self.core.db, PLATFORM, member_id)
        if channel is not None:
            return str(channel.reference.get("chat_id", channel.chat_id))
        account = (await get_member(self.core.db, member_id)).account(PLATFORM)
        return account.user_id if account is not None else None

    async def send_file(self, member_id: int, file: OutgoingFile) -> bool:
        chat = await self._chat(member_id)
        if chat is None:
            return False
        content = await read_whole(file)
        try:
            await self.bot.send_document(
                chat_id=int(chat) if chat.lstrip("-").isdigit() else chat,
                document=content,
                filename=file.name,
                caption=file.caption,
            )
        except Forbidden:
            return False  # the member never started the bot, or blocked it
        return True

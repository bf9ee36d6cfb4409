"""Who belongs to the organisation's Telegram chats, asked with getChatMember and remembered.

Telegram is never open to the world: anyone can find a bot by its @username, and Telegram tells
us nothing about where someone works. So a person the directory does not know (no imported
`telegram_user_id` or `@username`, no linked account) is vouched for only by the organisation's
own chats, `TELEGRAM_CHAT_ID` and `TELEGRAM_ALLOWED_CHATS`: someone those chats list as a member
(creator, administrator, member, or a restricted member still in the chat) may take part.

Each answer is remembered in this process, a yes for `POSITIVE_TTL` and a no for `NEGATIVE_TTL`, so
a person costs at most one getChatMember call per chat per period however many messages they
send, and concurrent questions about the same person share one call. A failed call (the bot was
removed from the chat, the user id is unknown, Telegram is down) counts as a no: failing closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from telegram import Bot, Chat, ChatMember
from telegram.error import TelegramError

from bots.telegram.gateway import chat_ref
from rewards.clock import Clock
from rewards.membership import Boundary
from rewards.settings import Settings

log = logging.getLogger("bots.telegram")

POSITIVE_TTL = timedelta(minutes=10)
NEGATIVE_TTL = timedelta(minutes=1)
MAX_ENTRIES = 10_000  # answers kept; the oldest go first when strangers flood the bot
IN_CHAT = frozenset({ChatMember.OWNER, ChatMember.ADMINISTRATOR, ChatMember.MEMBER})


def allowed_chats(settings: Settings) -> tuple[str, ...]:
    """The chats whose members may take part (`TELEGRAM_CHAT_ID`, `TELEGRAM_ALLOWED_CHATS`)."""
    return Boundary.from_settings(settings).telegram_chats


def is_allowed_chat(chat: Chat, chats: Sequence[str]) -> bool:
    """Whether `chat` is one of `chats` (by id, or by `@username` for public chats)."""
    if str(chat.id) in chats:
        return True
    handle = f"@{chat.username}".lower() if chat.username else ""
    return bool(handle) and handle in {c.lower() for c in chats}


def in_chat(member: ChatMember) -> bool:
    """Whether getChatMember's answer says the person is in the chat now."""
    if member.status in IN_CHAT:
        return True
    return member.status == ChatMember.RESTRICTED and bool(getattr(member, "is_member", False))


@dataclass(frozen=True)
class _Answer:
    belongs: bool
    until: datetime


class ChatMembership:
    """Cached getChatMember answers for the allowed chats; `vouches(user_id)` is the question."""

    def __init__(
        self,
        bot: Bot,
        chats: Sequence[str],
        clock: Clock,
        *,
        positive_ttl: timedelta = POSITIVE_TTL,
        negative_ttl: timedelta = NEGATIVE_TTL,
    ) -> None:
        self.bot = bot
        self.chats = tuple(chats)
        self.clock = clock
        self.positive_ttl = positive_ttl
        self.negative_ttl = negative_ttl
        self._answers: dict[tuple[str, int], _Answer] = {}
        self._asking: dict[tuple[str, int], asyncio.Task[bool]] = {}

    async def vouches(self, user_id: int, *, first: Chat | None = None) -> bool:
        """Whether one of the allowed chats has `user_id` as a member; the chat the person wrote
        in (`first`) is asked first, as the likeliest."""
        order = list(self.chats)
        if first is not None:
            order.sort(key=lambda chat: not is_allowed_chat(first, (chat,)))
        for chat in order:
            if await self._belongs(chat, user_id):
                return True
        return False

    async def _belongs(self, chat: str, user_id: int) -> bool:
        key = (chat, user_id)
        answer = self._answers.get(key)
        if answer is not None and answer.until > self.clock.now():
            return answer.belongs
        task = self._asking.get(key)
        if task is None:
            task = asyncio.create_task(self._ask(chat, user_id))
            self._asking[key] = task
            task.add_done_callback(lambda _: self._asking.pop(key, None))
        return await asyncio.shield(task)

    async def _ask(self, chat: str, user_id: int) -> bool:
        try:
            belongs = in_chat(await self.bot.get_chat_member(chat_ref(chat), user_id))
        except TelegramError as problem:
            log.warning("getChatMember %s in %s failed (%s); not vouched", user_id, chat, problem)
            belongs = False
        except Exception:  # an answer this PTB cannot read: fail closed, loudly
            log.exception("getChatMember %s in %s unreadable; not vouched", user_id, chat)
            belongs = False
        ttl = self.positive_ttl if belongs else self.negative_ttl
        self._keep((chat, user_id), _Answer(belongs, self.clock.now() + ttl))
        return belongs

    def _keep(self, key: tuple[str, int], answer: _Answer) -> None:
        self._answers.pop(key, None)  # re-inserted last: the dict stays oldest first
        self._answers[key] = answer
        if len(self._answers) <= MAX_ENTRIES:
            return
        now = self.clock.now()
        for old in [k for k, a in self._answers.items() if a.until <= now]:
            del self._answers[old]
        while len(self._answers) > MAX_ENTRIES:
            del self._answers[next(iter(self._answers))]

"""Telegram updates -> dialog events -> Bot API calls.

One `TelegramBot` per process. Both inbound paths (the webhook and long polling) end in
`handle_update`, which deduplicates by `update_id` in the database (`first_delivery`), so an update
Telegram re-sends, or one that two replicas both receive, is processed once.

- Messages: `/kudos@RewardsBot ...` (the bot's own username is stripped; a command addressed to
  another bot is ignored). `text_mention` entities (people without a username) and `@username`
  mentions resolve to members and are rewritten as `@email` (a placeholder address for people the
  bot only knows from Telegram), the form `dialogs` understands. In groups, plain text is read only
  while the sender has a conversation open there, so the bot stays quiet in ordinary chatter.
- Telegram shows forms field by field (`Turn.whole_forms=False`). The engine asks each field as a
  plain-text `Say`; this adapter recognises the question of the field being asked and sends it as
  `cards.render.telegram.field_prompt` instead, with its choice / Done / Skip buttons.
- Callback queries (inline buttons, `callback_data` = action token) become `Action(token)` and are
  always answered; a stale or doubled click gets its polite sentence as the answer's toast and
  nothing is posted to the chat.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from telegram import (
    Bot,
    CallbackQuery,
    Chat,
    Message,
    MessageEntity,
    Update,
)
from telegram import User as TelegramUser
from telegram.constants import ChatType
from telegram.error import TelegramError

from bots.telegram.gateway import PLATFORM, edit, send
from cards.actions import FORM_DIALOG, BadToken, decode, encode
from cards.model import Card, Field
from cards.render.telegram import TelegramMessage, field_prompt, to_telegram
from cards.render.text import field_prompt_text
from dialogs.base import Context, StepTokens
from dialogs.engine import CANCEL, FIELD, STALE, SUBMIT, UNKNOWN_BUTTON, DialogEngine
from dialogs.events import Action, Command, Event, Text, Turn
from dialogs.nominations import Private
from dialogs.replies import Reply, Say, Show
from dialogs.replies import Update as UpdateCard
from rewards.core import Core
from rewards.errors import RewardsError
from rewards.services import conversations
from rewards.services.channels import first_delivery, remember_channel
from rewards.services.conversations import ConversationKey
from rewards.services.members import ensure_member_for_account, find_by_username

log = logging.getLogger("bots.telegram")

ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
POLITE = frozenset({STALE, UNKNOWN_BUTTON})
ANSWER_LIMIT = 200  # answerCallbackQuery text limit
COMMAND = re.compile(r"^/([A-Za-z0-9_]+)(?:@([A-Za-z0-9_]+))?(?:\s+(.*))?$", re.DOTALL)


@dataclass(frozen=True)
class _Prompt:
    """The form card being filled field by field, and the field being asked."""

    card: Card
    field: Field


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def _from_utf16(data: bytes) -> str:
    return data.decode("utf-16-le")


class TelegramBot:
    """The Telegram side of one process: turns updates into dialog turns and sends the replies."""

    def __init__(self, core: Core, bot: Bot, *, engine: DialogEngine | None = None) -> None:
        self.core = core
        self.bot = bot
        self.engine = engine or DialogEngine(core)

    @property
    def username(self) -> str:
        """The bot's @username (known after `getMe`, i.e. once the Application is initialised)."""
        try:
            return self.bot.username
        except RuntimeError:  # not initialised yet
            return ""

    # --- inbound ---------------------------------------------------------------------------------

    async def handle_json(self, data: dict[str, Any]) -> None:
        """One update as Telegram posts it (webhook body)."""
        try:
            update = Update.de_json(data, self.bot)
        except Exception:
            log.warning("unreadable Telegram update %s; dropped", data.get("update_id"))
            return
        await self.handle_update(update)

    async def handle_update(self, update: Update) -> bool:
        """Process `update` unless it was seen before; True if it was processed now. Never raises
        (a failure is logged: Telegram would only re-send the same update)."""
        try:
            if not await first_delivery(
                self.core.db, PLATFORM, str(update.update_id), clock=self.core.clock
            ):
                log.info("update %s already handled; skipped", update.update_id)
                return False
            if update.callback_query is not None:
                await self._on_callback(update.callback_query)
            elif update.message is not None:
                await self._on_message(update.message)
            elif update.my_chat_member is not None:
                await self._remember(update.my_chat_member.chat, None)
            return True
        except Exception:
            log.exception("telegram update %s failed", update.update_id)
            return True

    async def _member_id(self, user: TelegramUser) -> int:
        member = await ensure_member_for_account(
            self.core.db,
            PLATFORM,
            str(user.id),
            username=user.username,
            display_name=user.full_name,
            clock=self.core.clock,
        )
        return member.id

    async def _remember(self, chat: Chat, member_id: int | None) -> None:
        private = chat.type == ChatType.PRIVATE
        await remember_channel(
            self.core.db,
            PLATFORM,
            str(chat.id),
            {"chat_id": chat.id},
            kind="personal" if private else "group",
            name=chat.effective_name,
            member_id=member_id if private else None,
            clock=self.core.clock,
        )

    def _turn(self, member_id: int, chat: Chat, user: TelegramUser) -> Turn:
        key = ConversationKey(PLATFORM, "", str(chat.id), str(user.id))
        return Turn(member_id, key, whole_forms=False)

    async def _on_message(self, message: Message) -> None:
        user, chat, text = message.from_user, message.chat, message.text
        if user is None or user.is_bot or not text:
            return
        private = chat.type == ChatType.PRIVATE
        match = COMMAND.match(text.strip())
        if match and match.group(2) and match.group(2).lower() != self.username.lower():
            return  # /command@SomeOtherBot
        key = ConversationKey(PLATFORM, "", str(chat.id), str(user.id))
        if (
            not match
            and not private
            and await conversations.load(self.core.db, key, self.core.clock.now()) is None
        ):
            return  # group chatter, not an answer to one of our questions
        member_id = await self._member_id(user)
        await self._remember(chat, member_id)
        turn = self._turn(member_id, chat, user)
        try:
            rewritten = await self._rewrite_mentions(message)
        except RewardsError as problem:
            await self._deliver(turn, chat.id, [Say(str(problem))], clicked=None)
            return
        event: Event
        command = COMMAND.match(rewritten.strip())
        if command:
            name = command.group(1)
            # Telegram sends /start when someone opens the bot for the first time
            event = Command(
                "help" if name.lower() == "start" else name, (command.group(3) or "").strip()
            )
        else:
            event = Text(rewritten)
        replies = await self.engine.handle(turn, event)
        await self._deliver(turn, chat.id, replies, clicked=None)

    async def _rewrite_mentions(self, message: Message) -> str:
        """The message text with each mention replaced by `@email` of the member it names.

        Entity offsets count UTF-16 code units, so the text is cut in UTF-16. An `@username`
        nobody uses here is left as typed (the dialog then explains it does not know them).
        """
        text = message.text or ""
        encoded = _utf16(text)
        pieces: list[str] = []
        cursor = 0
        for entity in sorted(message.entities, key=lambda e: e.offset):
            start, end = entity.offset * 2, (entity.offset + entity.length) * 2
            if start < cursor:
                continue
            ref: str | None = None
            if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None:
                member = await ensure_member_for_account(
                    self.core.db,
                    PLATFORM,
                    str(entity.user.id),
                    username=entity.user.username,
                    display_name=entity.user.full_name,
                    clock=self.core.clock,
                )
                ref = member.email
            elif entity.type == MessageEntity.MENTION:
                found = await find_by_username(
                    self.core.db, PLATFORM, _from_utf16(encoded[start:end])
                )
                ref = found.email if found is not None else None
            if ref is None:
                continue
            pieces.append(_from_utf16(encoded[cursor:start]))
            pieces.append(f"@{ref}")
            cursor = end
        pieces.append(_from_utf16(encoded[cursor:]))
        return "".join(pieces)

    async def _on_callback(self, query: CallbackQuery) -> None:
        answered = False
        try:
            message = query.message
            if message is None or not query.data:
                await self._answer(query, "This button has expired.")
                answered = True
                return
            chat = message.chat
            member_id = await self._member_id(query.from_user)
            await self._remember(chat, member_id)
            turn = self._turn(member_id, chat, query.from_user)
            replies = await self.engine.handle(turn, Action(query.data, {}))
            # Polite refusals and sentences meant for the clicker alone (their own vote) are the
            # answer's toast, which only the clicker sees; nothing is posted to the chat.
            quiet = [r for r in replies if isinstance(r, Say) and _toast(r)]
            await self._answer(query, " ".join(r.text for r in quiet) if quiet else None)
            polite = [r.text for r in quiet if r.text in POLITE]
            answered = True
            rest = [r for r in replies if not (isinstance(r, Say) and _toast(r))]
            clicked = message if isinstance(message, Message) else None
            if not polite and clicked is not None and _is_form_button(query.data):
                await self._drop_keyboard(clicked)
            await self._deliver(turn, chat.id, rest, clicked=clicked)
        finally:
            if not answered:
                await self._answer(query, None)

    async def _answer(self, query: CallbackQuery, text: str | None) -> None:
        try:
            await self.bot.answer_callback_query(
                query.id, text=text[:ANSWER_LIMIT] if text else None
            )
        except TelegramError:
            log.warning("answerCallbackQuery %s failed", query.id, exc_info=True)

    async def _drop_keyboard(self, message: Message) -> None:
        """An answered question loses its buttons, so it cannot be answered twice by accident."""
        try:
            await self.bot.edit_message_reply_markup(
                chat_id=message.chat.id, message_id=message.message_id, reply_markup=None
            )
        except TelegramError:
            log.debug("could not remove the keyboard of %s", message.message_id, exc_info=True)

    # --- outbound --------------------------------------------------------------------------------

    async def _current_prompt(self, turn: Turn) -> _Prompt | None:
        """The field the engine is asking now (field-by-field state), if any."""
        now = self.core.clock.now()
        state = await conversations.load(self.core.db, turn.key, now)
        if state is None or FIELD not in state.values:
            return None
        dialog = self.engine.dialogs.get(state.dialog)
        if dialog is None:
            return None
        values = {k: v for k, v in state.values.items() if k != FIELD}
        tokens = StepTokens(
            encode(dialog.name, SUBMIT, state.nonce), encode(dialog.name, CANCEL, state.nonce)
        )
        card = await dialog.card(Context(self.core, turn, now), state.step, values, tokens)
        if card.form is None:
            return None
        index = int(state.values.get(FIELD, 0))
        if not 0 <= index < len(card.form.fields):
            return None
        return _Prompt(card, card.form.fields[index])

    async def _messages(self, turn: Turn, replies: Sequence[Reply]) -> list[TelegramMessage | Card]:
        """What to post, in order; a `Card` stands for an `Update` (edit the clicked message)."""
        prompt: _Prompt | None = None
        if any(isinstance(r, Say) for r in replies):
            try:
                prompt = await self._current_prompt(turn)
            except Exception:  # the plain-text question still works
                log.exception("could not rebuild the field prompt for %r", turn.key)
        out: list[TelegramMessage | Card] = []
        for reply in replies:
            if isinstance(reply, Say):
                out.append(_say(reply.text, prompt))
            elif isinstance(reply, Show):
                out.append(to_telegram(reply.card))
                if reply.card.form is not None and reply.card.form.fields:
                    out.append(field_prompt(reply.card.form.fields[0]))
            elif isinstance(reply, UpdateCard):
                out.append(reply.card)
        return out

    async def _deliver(
        self, turn: Turn, chat_id: int, replies: Sequence[Reply], *, clicked: Message | None
    ) -> None:
        for item in await self._messages(turn, replies):
            if isinstance(item, TelegramMessage):
                await send(self.bot, chat_id, item)
                continue
            message = to_telegram(item)
            if clicked is not None:
                try:
                    await edit(self.bot, chat_id, clicked.message_id, message)
                    continue
                except TelegramError:
                    log.info("could not edit message %s; posting instead", clicked.message_id)
            await send(self.bot, chat_id, message)


def _say(text: str, prompt: _Prompt | None) -> TelegramMessage:
    """A `Say` as a message; the current field's question gets its buttons."""
    if prompt is not None:
        if text == prompt.card.title:
            return to_telegram(prompt.card)  # the form's intro, with its Cancel button
        question = field_prompt_text(prompt.field)
        if text.endswith(question):
            asked = field_prompt(prompt.field)
            before = text[: -len(question)].strip()
            if before:
                return TelegramMessage(f"{html.escape(before)}\n\n{asked.text}", asked.keyboard)
            return asked
    return TelegramMessage(html.escape(text))


def _toast(reply: Say) -> bool:
    return reply.text in POLITE or isinstance(reply, Private)


def _is_form_button(token: str) -> bool:
    try:
        return decode(token).dialog == FORM_DIALOG
    except BadToken:
        return False

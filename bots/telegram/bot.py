"""Telegram updates -> dialog events -> Bot API calls.

One `TelegramBot` per process. Both inbound paths (the webhook and long polling) end in
`handle_update`, which deduplicates by `update_id` in the database (`first_delivery`), so an update
Telegram re-sends, or one that two replicas both receive, is processed once.

- Who takes part is decided before anything is written, the `update_id` marker aside. Telegram
  is never open to the world: a sender or a mentioned person the directory does not know (no
  imported id or `@username`, no linked account) takes part only when one of the organisation's
  chats (`TELEGRAM_CHAT_ID`, `TELEGRAM_ALLOWED_CHATS`) has them as a member, asked with
  getChatMember and cached (`bots.telegram.membership`), and only under `MEMBERSHIP=open`. Anyone
  else is told how to join (`not_a_member_sentence`), and their `/link CODE` joins them to the
  member who asked for the code elsewhere. Bots never take part.
- Messages: `/kudos@RewardsBot ...` (the bot's own username is stripped; a command addressed to
  another bot is ignored). A message naming more people than a kudos may reach is refused before
  any mention is looked up. `text_mention` entities (people without a username) and `@username`
  mentions resolve to members and are rewritten as `@email` (a placeholder address for people the
  bot only knows from Telegram), the form `dialogs` understands. In groups, plain text is read only
  while the sender has a conversation open there, so the bot stays quiet in ordinary chatter; a
  group's turns are not private (`Turn.private`), so `/link` there gives no code.
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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from telegram import (
    Bot,
    CallbackQuery,
    Chat,
    ChatMemberUpdated,
    Message,
    MessageEntity,
    Update,
)
from telegram import User as TelegramUser
from telegram.constants import ChatType
from telegram.error import TelegramError

from bots.telegram.gateway import PLATFORM, edit, send
from bots.telegram.membership import ChatMembership, allowed_chats, is_allowed_chat
from cards.actions import FORM_DIALOG, BadToken, decode, encode
from cards.model import Card, Field
from cards.render.telegram import TelegramMessage, field_prompt, to_telegram
from cards.render.text import field_prompt_text
from dialogs.base import Context, StepTokens
from dialogs.engine import (
    CANCEL,
    FIELD,
    STALE,
    SUBMIT,
    UNKNOWN_BUTTON,
    DialogEngine,
    is_keyed,
)
from dialogs.events import Action, Command, Event, Text, Turn
from dialogs.link import admit_sender, link_args
from dialogs.nominations import Private
from dialogs.replies import Reply, Say, Show
from dialogs.replies import Update as UpdateCard
from rewards.core import Core
from rewards.errors import RewardsError
from rewards.membership import (
    BotRefused,
    NotAMember,
    Person,
    admit,
    check_mention_count,
    known_member,
    strangers_allowed,
)
from rewards.services import conversations
from rewards.services.channels import first_delivery, remember_channel
from rewards.services.conversations import ConversationKey
from rewards.services.members import find_by_username

log = logging.getLogger("bots.telegram")

ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
POLITE = frozenset({STALE, UNKNOWN_BUTTON})
ANSWER_LIMIT = 200  # answerCallbackQuery text limit
COMMAND = re.compile(r"^/([A-Za-z0-9_]+)(?:@([A-Za-z0-9_]+))?(?:\s+(.*))?$", re.DOTALL)
# What an update sends (a message, an edit, a callback answer), queued during its unit of work
# and sent, in order, once the unit has committed.
Outgoing = list[Callable[[], Awaitable[object]]]


@dataclass(frozen=True)
class _Prompt:
    """The form card being filled field by field, and the field being asked."""

    card: Card
    field: Field


@dataclass(frozen=True)
class _Mention:
    """One mention of a message, vetted: its UTF-16 byte span and either the `@email` of the
    member an `@username` names (`ref`), or the person a text mention names, admitted once the
    whole message was vetted (a known account, or a stranger a chat `vouched` for)."""

    start: int
    end: int
    ref: str = ""
    person: Person | None = None
    vouched: bool = False


def _person(user: TelegramUser) -> Person:
    return Person(
        platform=PLATFORM,
        user_id=str(user.id),
        display_name=user.full_name,
        username=user.username,
        is_bot=user.is_bot,
    )


def _event(text: str) -> Event:
    """A message's text as a dialog event; Telegram sends /start when someone first opens the
    bot, which is answered with the help."""
    command = COMMAND.match(text.strip())
    if not command:
        return Text(text)
    name = command.group(1)
    return Command("help" if name.lower() == "start" else name, (command.group(3) or "").strip())


def _mention_count(message: Message) -> int:
    """The raw mentions of a message, counted before any of them is looked up."""
    kinds = (MessageEntity.MENTION, MessageEntity.TEXT_MENTION)
    return sum(1 for e in message.entities if e.type in kinds)


def not_in_programme(name: str) -> str:
    """Why a mentioned stranger is refused (they are not the sender, so not "you")."""
    return (
        f"{name or 'Someone you mentioned'} isn't in this rewards programme yet, so I can't"
        " include them. Please ask your admin to add them."
    )


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
        self.chats = ChatMembership(bot, allowed_chats(core.settings), core.clock)

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
        (a failure is logged: Telegram would only re-send the same update).

        One update is one unit of work (`Database.transact`): the `update_id` marker, the people,
        the chat, the dialog and what it writes share one connection and commit once; what it
        sends is queued meanwhile and sent after the commit. An update that fails is rolled back
        whole; its `update_id` is then marked seen on its own and a clicked button is answered."""
        out: Outgoing = []

        async def work() -> bool:
            out.clear()  # a run again on a fresh connection starts over
            if not await first_delivery(
                self.core.db, PLATFORM, str(update.update_id), clock=self.core.clock
            ):
                return False
            if update.callback_query is not None:
                await self._on_callback(update.callback_query, out)
            elif update.message is not None:
                await self._on_message(update.message, out)
            elif update.my_chat_member is not None:
                await self._on_chat_member(update.my_chat_member)
            return True

        text = update.message.text if update.message is not None else None
        keyed = text is not None and is_keyed(_event(text))
        try:
            fresh = await self.core.db.transact(work, planned_once=keyed)
        except Exception:
            log.exception("telegram update %s failed", update.update_id)
            await self._failed(update)
            return True
        if not fresh:
            log.info("update %s already handled; skipped", update.update_id)
            return False
        try:
            for step in out:
                await step()
        except Exception:
            log.exception("telegram update %s: sending its replies failed", update.update_id)
        return True

    async def _failed(self, update: Update) -> None:
        try:
            await first_delivery(
                self.core.db, PLATFORM, str(update.update_id), clock=self.core.clock
            )
        except Exception:
            log.exception("could not mark the failed update %s as seen", update.update_id)
        if update.callback_query is not None:
            await self._answer(update.callback_query, None)

    # --- who takes part (decided before anything is written) -------------------------------------

    async def _vouched(self, user_id: int, chat: Chat) -> bool:
        """Whether one of the organisation's chats vouches for a stranger; asked only where the
        membership policy would admit them for it (never under MEMBERSHIP=directory)."""
        if not self.chats.chats:
            return False
        if not strangers_allowed(PLATFORM, self.core.settings.membership, vouched=True):
            return False
        return await self.chats.vouches(user_id, first=chat)

    async def _known(self, user: TelegramUser) -> bool:
        found = await known_member(self.core.db, PLATFORM, str(user.id), "", user.username)
        return found is not None

    async def _admit_sender(
        self, user: TelegramUser, chat: Chat, event: Event
    ) -> int | list[Reply]:
        """The sender's member id, or the replies refusing them (`admit_sender`). A stranger's
        `/link CODE` is redeemed without asking the chats: no member is made only to be merged."""
        vouched = False
        if not link_args(event) and not await self._known(user):
            vouched = await self._vouched(user.id, chat)
        return await admit_sender(self.core, _person(user), event, vouched=vouched)

    async def _on_chat_member(self, change: ChatMemberUpdated) -> None:
        """The bot was added to (or removed from) a chat: remembered, for announcements, only when
        the chat is one of ours or whoever did it is a member; nobody is created for it."""
        if is_allowed_chat(change.chat, self.chats.chats) or await self._known(change.from_user):
            await self._remember(change.chat, None)

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
        return Turn(member_id, key, whole_forms=False, private=chat.type == ChatType.PRIVATE)

    def _tell(self, chat_id: int, replies: Sequence[Reply], out: Outgoing) -> None:
        """Sentences outside any turn (refusals): plain messages, no form prompt to rebuild."""
        for reply in replies:
            if isinstance(reply, Say):
                out.append(
                    partial(send, self.bot, chat_id, TelegramMessage(html.escape(reply.text)))
                )

    # --- messages --------------------------------------------------------------------------------

    async def _on_message(self, message: Message, out: Outgoing) -> None:
        """A message, in this order: ignored if not for us; mentions bounded; the sender admitted
        (or refused, or their link code redeemed); the people mentioned checked; only then is
        anything written (the chat, new members) and the dialog run."""
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
        try:
            check_mention_count(_mention_count(message), self.core.settings.kudos_max_receivers)
        except RewardsError as problem:
            self._tell(chat.id, [Say(str(problem))], out)
            return
        admitted = await self._admit_sender(user, chat, _event(text))
        if not isinstance(admitted, int):
            self._tell(chat.id, admitted, out)
            return
        try:
            mentions = await self._plan_mentions(message)
        except RewardsError as problem:
            self._tell(chat.id, [Say(str(problem))], out)
            return
        await self._remember(chat, admitted)
        turn = self._turn(admitted, chat, user)
        try:
            rewritten = await self._rewrite_mentions(message, mentions)
        except RewardsError as problem:
            await self._deliver(turn, chat.id, [Say(str(problem))], out, clicked=None)
            return
        replies = await self.engine.handle(turn, _event(rewritten))
        await self._deliver(turn, chat.id, replies, out, clicked=None)

    async def _plan_mentions(self, message: Message) -> list[_Mention]:
        """Who each mention names, decided before anything is written: a bot (by `is_bot`, or our
        own @username) is refused, and so is a stranger no allowed chat vouches for.

        Entity offsets count UTF-16 code units, so the text is cut in UTF-16. An `@username`
        nobody uses here is left as typed (the dialog then explains it does not know them):
        Telegram cannot look a username up, so it never becomes a member.
        """
        encoded = _utf16(message.text or "")
        planned: list[_Mention] = []
        cursor = 0
        for entity in sorted(message.entities, key=lambda e: e.offset):
            start, end = entity.offset * 2, (entity.offset + entity.length) * 2
            if start < cursor:
                continue
            if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None:
                named = entity.user
                if named.is_bot:
                    raise BotRefused()
                if await self._known(named):
                    planned.append(_Mention(start, end, person=_person(named)))
                elif await self._vouched(named.id, message.chat):
                    planned.append(_Mention(start, end, person=_person(named), vouched=True))
                else:
                    raise NotAMember(not_in_programme(named.full_name))
            elif entity.type == MessageEntity.MENTION:
                handle = _from_utf16(encoded[start:end])
                if self.username and handle.lstrip("@").lower() == self.username.lower():
                    raise BotRefused()
                found = await find_by_username(self.core.db, PLATFORM, handle)
                if found is None:
                    continue
                planned.append(_Mention(start, end, ref=found.email))
            else:
                continue
            cursor = end
        return planned

    async def _rewrite_mentions(self, message: Message, mentions: Sequence[_Mention]) -> str:
        """The message text with each vetted mention replaced by `@email` of its member; the
        people of text mentions are admitted here (a vouched stranger becomes a member, an
        imported `@username` is claimed by the id Telegram gave)."""
        encoded = _utf16(message.text or "")
        pieces: list[str] = []
        cursor = 0
        for mention in mentions:
            ref = mention.ref
            if mention.person is not None:
                member = await admit(
                    self.core.db,
                    mention.person,
                    policy=self.core.settings.membership,
                    vouched=mention.vouched,
                    clock=self.core.clock,
                )
                ref = member.email
            pieces.append(_from_utf16(encoded[cursor : mention.start]))
            pieces.append(f"@{ref}")
            cursor = mention.end
        pieces.append(_from_utf16(encoded[cursor:]))
        return "".join(pieces)

    # --- button clicks ---------------------------------------------------------------------------

    async def _on_callback(self, query: CallbackQuery, out: Outgoing) -> None:
        """A button click: always answered (queued first, so it is sent first)."""
        message = query.message
        if message is None or not query.data:
            out.append(partial(self._answer, query, "This button has expired."))
            return
        chat = message.chat
        event = Action(query.data, {})
        admitted = await self._admit_sender(query.from_user, chat, event)
        if not isinstance(admitted, int):  # a stranger's click: the refusal is the toast
            refusal = " ".join(r.text for r in admitted if isinstance(r, Say))
            out.append(partial(self._answer, query, refusal or None))
            return
        await self._remember(chat, admitted)
        turn = self._turn(admitted, chat, query.from_user)
        replies = await self.engine.handle(turn, event)
        # Polite refusals and sentences meant for the clicker alone (their own vote) are the
        # answer's toast, which only the clicker sees; nothing is posted to the chat.
        quiet = [r for r in replies if isinstance(r, Say) and _toast(r)]
        out.append(partial(self._answer, query, " ".join(r.text for r in quiet) if quiet else None))
        polite = [r.text for r in quiet if r.text in POLITE]
        rest = [r for r in replies if not (isinstance(r, Say) and _toast(r))]
        clicked = message if isinstance(message, Message) else None
        if not polite and clicked is not None and _is_form_button(query.data):
            out.append(partial(self._drop_keyboard, clicked))
        await self._deliver(turn, chat.id, rest, out, clicked=clicked)

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
        self,
        turn: Turn,
        chat_id: int,
        replies: Sequence[Reply],
        out: Outgoing,
        *,
        clicked: Message | None,
    ) -> None:
        """Queue the replies; what they look like is decided now, in the turn's unit (the field
        being asked is read from the conversation state the turn wrote)."""
        items = await self._messages(turn, replies)
        if items:
            out.append(partial(self._post, chat_id, items, clicked))

    async def _post(
        self, chat_id: int, items: Sequence[TelegramMessage | Card], clicked: Message | None
    ) -> None:
        for item in items:
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

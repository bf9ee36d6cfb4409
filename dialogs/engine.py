"""The dialog engine: one `handle(turn, event)` for every platform.

It routes commands by the table in `dialogs.commands`, keeps each conversation's state in the
database (so a restart or another replica continues it), runs the current dialog's step, and
turns every failure into a polite reply:

- `/cancel` always works; it clears the state and says so.
- A button from an old card, a second click, an expired conversation or a token that is not ours
  gets a polite answer and changes nothing. Steps are claimed with a compare-and-swap on the
  state's nonce, so of two concurrent clicks exactly one runs.
- A `RewardsError` becomes a notice card with its sentence; anything unexpected is logged and
  answered with a generic apology, never a stack trace.

Forms are shown whole where the platform can (`Turn.whole_forms`), otherwise field by field, and
both end in the dialog's one `submit`. A form submitted from a card is replaced by what answers it
(the result, or the form again with the refusal), never left live beside it.

Every turn from a known member also records their activity (`core.events.touch`): one insert that
does nothing after the first turn of their local day, which fires the "login" event for Automated
Badges. A failure there is logged and never costs the member their answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from cards.actions import (
    DONE,
    FORM_DIALOG,
    PICK,
    SEPARATOR,
    SKIP,
    BadToken,
    decode,
    encode,
)
from cards.model import Card, Field, FieldKind
from cards.render.text import field_prompt_text
from cards.screens import notice
from dialogs.base import Context, Dialog, Finish, Step, StepTokens
from dialogs.commands import COMMANDS, KEYED_COMMANDS
from dialogs.events import Action, Command, Event, Text, Turn, cleaned
from dialogs.forms import NO, YES, merge_custom_values, parse_answer
from dialogs.replies import Done, Reply, Say, Show, Update
from rewards.core import Core
from rewards.errors import RewardsError
from rewards.limits import slow_down
from rewards.observability.context import bound_turn
from rewards.services import conversations
from rewards.services.conversations import State
from rewards.store.db import ClaimRefused

log = logging.getLogger("dialogs.engine")

FIELD = "_field"  # engine-private key in the stored values: the index of the field being asked
SUBMIT = "submit"
CANCEL = "cancel"

APOLOGY = "Sorry, something went wrong on my side. Please try again in a moment."
STALE = "That card is out of date, so I left everything as it was. Type /help to start again."
UNKNOWN_BUTTON = "I don't recognise that button any more. Type /help to see what I can do."
NOTHING_ACTIVE = "I didn't catch that. Type /help to see what I can do."
USE_THE_CARD = "Please fill in the card above, or type /cancel to stop."
CANCELLED = "OK, I've cancelled that."
NOTHING_TO_CANCEL = "There was nothing to cancel."


def default_dialogs() -> list[Dialog]:
    from dialogs.admin import LockDialog, RevokeDialog, UnlockDialog
    from dialogs.badge import BadgeDialog
    from dialogs.export import ExportDialog
    from dialogs.info import HelpDialog, LeaderboardDialog, MeDialog
    from dialogs.integrity import IntegrityDialog
    from dialogs.kudos import KudosDialog
    from dialogs.link import LinkDialog
    from dialogs.nominations import NominateDialog, NominationsDialog, VoteDialog
    from dialogs.privacy import ForgetDialog
    from dialogs.shop import ApprovalDialog, RedeemDialog, ShopDialog
    from dialogs.workflows import WorkflowDialog

    return [
        KudosDialog(),
        BadgeDialog(),
        LeaderboardDialog(),
        MeDialog(),
        HelpDialog(),
        NominateDialog(),
        VoteDialog(),
        NominationsDialog(),
        WorkflowDialog(),
        LinkDialog(),
        ShopDialog(),
        RedeemDialog(),
        ApprovalDialog(),
        RevokeDialog(),
        LockDialog(),
        UnlockDialog(),
        ForgetDialog(),
        ExportDialog(),
        IntegrityDialog(),
    ]


class DialogEngine:
    """Stateless itself: every conversation's state lives in the database."""

    def __init__(
        self,
        core: Core,
        *,
        ttl: timedelta = timedelta(minutes=15),
        dialogs: Sequence[Dialog] | None = None,
    ) -> None:
        self.core = core
        self.ttl = ttl
        self.dialogs = {d.name: d for d in (dialogs if dialogs is not None else default_dialogs())}
        self.commands = {c.name for c in COMMANDS}

    async def handle(self, turn: Turn, event: Event) -> list[Reply]:
        """Answer one event. Never raises: failures become friendly replies.

        A member over the chat rate limit (`CHAT_RATE_LIMIT`) is asked to slow down before
        anything of the turn is read or written. Log lines of the turn name its id, platform and
        member (`rewards.observability.context`), and its time is reported to `core.signals`
        by platform and command (an in-process counter: no statement)."""
        started = time.perf_counter()
        with bound_turn(turn.key.platform, turn.member_id):
            try:
                return await self._turn(turn, event)
            finally:
                self.core.signals.turn(
                    turn.key.platform, self._command_label(event), time.perf_counter() - started
                )

    def _command_label(self, event: Event) -> str:
        """What a turn is about, from a small fixed set (a metric label): the command's name,
        the dialog a button belongs to, "text", or "unknown"."""
        if isinstance(event, Text):
            text = event.text.strip()
            if not text.startswith("/"):
                return "text"
            event = Command(text[1:].partition(" ")[0])
        if isinstance(event, Command):
            name = command_name(event)
            return name if name in self.commands or name == CANCEL else "unknown"
        parts = event.token.split(SEPARATOR) if isinstance(event.token, str) else []
        dialog = parts[1] if len(parts) == 4 else ""
        return dialog if dialog in self.dialogs or dialog == FORM_DIALOG else "unknown"

    async def _turn(self, turn: Turn, event: Event) -> list[Reply]:
        wait = self.core.limits.chat.take(turn.member_id)
        if wait:
            return [Say(slow_down(wait))]
        event = cleaned(event)  # the input gate for chat text: control characters stripped
        ctx = Context(self.core, turn, self.core.clock.now())
        try:
            await self.core.events.touch(turn.member_id, now=ctx.now)
        except ClaimRefused:  # a copy of a turn already handled, or run again: no answer
            raise
        except Exception:
            log.exception("recording activity failed for %r", turn.key)
        try:
            return await self._handle(ctx, event)
        except RewardsError as problem:
            return [Show(notice(str(problem)))]
        except ClaimRefused:
            raise
        except Exception:
            log.exception("dialog failed on %r for %r", type(event).__name__, turn.key)
            return [Say(APOLOGY)]

    # --- routing -------------------------------------------------------------------------------

    async def _handle(self, ctx: Context, event: Event) -> list[Reply]:
        if isinstance(event, Text) and event.text.strip().startswith("/"):
            name, _, args = event.text.strip()[1:].partition(" ")
            event = Command(name, args)
        if isinstance(event, Command):
            return await self._command(ctx, event)
        if isinstance(event, Text):
            return await self._text(ctx, event.text)
        return await self._action(ctx, event)

    async def _command(self, ctx: Context, command: Command) -> list[Reply]:
        name = command_name(command)
        if name == CANCEL:
            cleared = await conversations.clear(self.core.db, ctx.turn.key)
            return [Say(CANCELLED if cleared else NOTHING_TO_CANCEL), Done()]
        dialog = self.dialogs.get(name) if name in self.commands else None
        if dialog is None:
            return [Say(f"I don't know /{name}. Type /help to see what I can do.")]
        step = await dialog.start(ctx, command.args.strip())
        return await self._advance(ctx, dialog, step, via_action=False)

    async def _text(self, ctx: Context, text: str) -> list[Reply]:
        state = await conversations.load(self.core.db, ctx.turn.key, ctx.now)
        dialog = self.dialogs.get(state.dialog) if state else None
        if state is None or dialog is None:
            return [Say(NOTHING_ACTIVE)]
        if ctx.turn.whole_forms:
            return [Say(USE_THE_CARD)]
        return await self._answer(ctx, dialog, state, text)

    async def _action(self, ctx: Context, action: Action) -> list[Reply]:
        try:
            token = decode(action.token)
        except BadToken:
            return [Say(UNKNOWN_BUTTON)]
        if token.dialog == FORM_DIALOG:
            return await self._form_button(ctx, token.verb, token.ref)
        dialog = self.dialogs.get(token.dialog)
        if dialog is None:
            return [Say(UNKNOWN_BUTTON)]
        if token.verb not in (SUBMIT, CANCEL):
            step = await dialog.action(ctx, token.verb, token.ref)
            if step is None:
                return [Say(UNKNOWN_BUTTON)]
            if isinstance(step, Finish):
                # A stateless button (a ballot posted in a channel) is answered without touching
                # the clicker's own conversation, which may be a form they are filling in.
                return list(step.replies)
            return await self._advance(ctx, dialog, step, via_action=True)
        state = await conversations.load(self.core.db, ctx.turn.key, ctx.now)
        if state is None or state.dialog != dialog.name or state.nonce != token.ref:
            return [Say(STALE)]
        if token.verb == CANCEL:
            if not await conversations.claim(
                self.core.db, ctx.turn.key, state.nonce, conversations.new_nonce(), ctx.now
            ):
                return [Say(STALE)]
            await conversations.clear(self.core.db, ctx.turn.key)
            return [Update(notice(CANCELLED, title="Cancelled")), Done()]
        values = {k: v for k, v in state.values.items() if k != FIELD}
        values.update(merge_custom_values(action.values))
        return await self._submit(ctx, dialog, state, values, via_action=True)

    # --- steps ---------------------------------------------------------------------------------

    def _tokens(self, dialog: Dialog, nonce: str) -> StepTokens:
        return StepTokens(encode(dialog.name, SUBMIT, nonce), encode(dialog.name, CANCEL, nonce))

    async def _card(self, ctx: Context, dialog: Dialog, state: State) -> Card:
        values = {k: v for k, v in state.values.items() if k != FIELD}
        return await dialog.card(ctx, state.step, values, self._tokens(dialog, state.nonce))

    async def _save(self, ctx: Context, state: State) -> State:
        return await conversations.save(self.core.db, ctx.turn.key, state, ctx.now, self.ttl)

    async def _advance(
        self, ctx: Context, dialog: Dialog, step: Step, *, via_action: bool
    ) -> list[Reply]:
        """Finish (clearing the state) or show the next step, whole or from its first field."""
        if isinstance(step, Finish):
            await conversations.clear(self.core.db, ctx.turn.key)
            replies = list(step.replies)
            if via_action:
                replies = _replacing(replies)
            return replies if any(isinstance(r, Done) for r in replies) else [*replies, Done()]
        state = State(dialog.name, step.step, dict(step.values))
        card = await self._card(ctx, dialog, state)
        show: Reply = Update(card) if via_action else Show(card)
        if ctx.turn.whole_forms or card.form is None:
            await self._save(ctx, state)
            return [show]
        await self._save(
            ctx, State(state.dialog, state.step, {**state.values, FIELD: 0}, state.nonce)
        )
        return [Say(card.title), Say(field_prompt_text(card.form.fields[0]))]

    async def _submit(
        self,
        ctx: Context,
        dialog: Dialog,
        state: State,
        values: dict[str, Any],
        *,
        via_action: bool,
    ) -> list[Reply]:
        """Run the step's submit once (claiming the nonce first), then advance.

        A refusal on a step with a form keeps the conversation: the form is shown again with what
        was entered (or, field by field, asked again from the start). A refusal on a step without
        a form (a confirmation) ends the conversation.
        """
        nonce = conversations.new_nonce()
        if not await conversations.claim(self.core.db, ctx.turn.key, state.nonce, nonce, ctx.now):
            return [Say(STALE)]
        try:
            step = await dialog.submit(ctx, state.step, values)
        except RewardsError as problem:
            kept = State(state.dialog, state.step, values, nonce)
            card = await self._card(ctx, dialog, kept)
            refusal = notice(str(problem))
            sorry: Reply = Show(refusal)
            if card.form is None:  # a refused confirmation: the refusal replaces it
                await conversations.clear(self.core.db, ctx.turn.key)
                return [Update(refusal) if via_action else sorry, Done()]
            if ctx.turn.whole_forms:
                await self._save(ctx, kept)
                return [sorry, Update(card) if via_action else Show(card)]
            await self._save(ctx, State(kept.dialog, kept.step, {FIELD: 0}, nonce))
            return [sorry, Say(field_prompt_text(card.form.fields[0]))]
        return await self._advance(ctx, dialog, step, via_action=via_action)

    async def _answer(self, ctx: Context, dialog: Dialog, state: State, text: str) -> list[Reply]:
        """Field-by-field mode: take a typed answer to the current field (or confirmation)."""
        card = await self._card(ctx, dialog, state)
        values = {k: v for k, v in state.values.items() if k != FIELD}
        if card.form is None:
            answer = text.strip().casefold()
            if answer in YES:
                return await self._submit(ctx, dialog, state, values, via_action=False)
            if answer in NO:
                await conversations.clear(self.core.db, ctx.turn.key)
                return [Say(CANCELLED), Done()]
            return [Say("Please answer yes or no, or type /cancel.")]
        fields = card.form.fields
        index = int(state.values.get(FIELD, 0))
        if not 0 <= index < len(fields):
            index = 0
        field = fields[index]
        try:
            values[field.name] = await parse_answer(self.core.db, field, text)
        except RewardsError as problem:
            return [Say(f"{problem} {field_prompt_text(field)}")]
        if index + 1 < len(fields):
            await self._save(
                ctx, State(state.dialog, state.step, {**values, FIELD: index + 1}, state.nonce)
            )
            return [Say(field_prompt_text(fields[index + 1]))]
        return await self._submit(ctx, dialog, state, values, via_action=False)

    async def _form_button(self, ctx: Context, verb: str, ref: str) -> list[Reply]:
        """A choice/skip/done button of a field-by-field question: the same as typing it."""
        state = await conversations.load(self.core.db, ctx.turn.key, ctx.now)
        dialog = self.dialogs.get(state.dialog) if state else None
        if state is None or dialog is None or ctx.turn.whole_forms:
            return [Say(STALE)]
        card = await self._card(ctx, dialog, state)
        index = int(state.values.get(FIELD, 0))
        if card.form is None or not 0 <= index < len(card.form.fields):
            return [Say(STALE)]
        field = card.form.fields[index]
        name, _, choice = ref.rpartition(".") if verb == PICK else (ref, "", "")
        if name != field.name:
            return [Say(STALE)]
        if verb in (SKIP, DONE):
            return await self._answer(ctx, dialog, state, "skip")
        if verb == PICK and choice.isdigit():
            return await self._answer(ctx, dialog, state, _choice_answer(field, int(choice)))
        return [Say(UNKNOWN_BUTTON)]


def command_name(command: Command) -> str:
    """The command's name as the table knows it: `/Kudos@MyBot` is `kudos`."""
    return command.name.strip().lstrip("/").split("@", 1)[0].lower()


def is_keyed(event: Event) -> bool:
    """Whether `event` is a command of `KEYED_COMMANDS` (typed as a command or as `/name` text),
    whose turn may run on the connections that plan its statements once (`Database.unit`)."""
    if isinstance(event, Text):
        text = event.text.strip()
        if not text.startswith("/"):
            return False
        event = Command(text[1:].partition(" ")[0])
    return isinstance(event, Command) and command_name(event) in KEYED_COMMANDS


def _replacing(replies: list[Reply]) -> list[Reply]:
    """The answer to a form or confirmation submitted from a card: its first card replaces the
    submitted one (kept as `Update`, with its audience), so no submitted form stays live to be
    sent again; any further cards are posted after it."""
    out: list[Reply] = []
    replaced = False
    for reply in replies:
        if isinstance(reply, Update):
            replaced = True
        elif isinstance(reply, Show) and not replaced:
            reply, replaced = Update(reply.card, reply.audience), True
        out.append(reply)
    return out


def _choice_answer(field: Field, index: int) -> str:
    if field.kind is FieldKind.CONFIRM:
        return "yes" if index == 0 else "no"
    return str(index + 1)

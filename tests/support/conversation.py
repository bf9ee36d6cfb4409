"""Scripted conversations with the dialog engine: type, click, and read the replies back.

`ScriptedConversation` plays one person in one chat, in whole-form mode (Teams, Slack) or field by
field (Telegram, console), so a test can run the same script in both modes with `fill`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cards.model import Action as CardAction
from cards.model import Card
from cards.render.text import to_text
from dialogs.engine import DialogEngine
from dialogs.events import Action, Command, Text, Turn
from dialogs.replies import Done, Reply, Say, Show, Update
from rewards.core import Core
from rewards.services.conversations import ConversationKey
from rewards.settings import Settings
from rewards.store.db import Database


def make_core(database: Database, clock: Any, **settings: Any) -> Core:
    return Core(settings=Settings(**settings), db=database, clock=clock)


class ScriptedConversation:
    def __init__(
        self,
        engine: DialogEngine,
        member_id: int,
        *,
        whole_forms: bool,
        platform: str = "test",
        chat: str = "chat-1",
    ) -> None:
        self.engine = engine
        self.whole_forms = whole_forms
        self.turn = Turn(
            member_id, ConversationKey(platform, "t1", chat, f"user-{member_id}"), whole_forms
        )
        self.replies: list[Reply] = []
        self.form_card: Card | None = None

    async def _run(self, event: Command | Text | Action) -> list[Reply]:
        self.replies = await self.engine.handle(self.turn, event)
        for card in self.cards:
            if card.form is not None:
                self.form_card = card
        return self.replies

    async def say(self, text: str) -> list[Reply]:
        return await self._run(Text(text))

    async def click(self, token: str, values: Mapping[str, Any] | None = None) -> list[Reply]:
        return await self._run(Action(token, dict(values or {})))

    async def fill(self, answers: Mapping[str, str]) -> list[Reply]:
        """Answer the open form: one submit (whole form) or one message per field, in order."""
        if self.whole_forms:
            assert self.form_card is not None and self.form_card.form is not None, self.text
            token = self.form_card.form.submit.token
            assert token is not None
            return await self.click(token, answers)
        for answer in answers.values():
            await self.say(answer)
        return self.replies

    @property
    def cards(self) -> list[Card]:
        return [r.card for r in self.replies if isinstance(r, Show | Update)]

    @property
    def screens(self) -> list[str]:
        return [c.screen for c in self.cards]

    @property
    def card(self) -> Card:
        assert self.cards, f"no card in {self.replies!r}"
        return self.cards[-1]

    @property
    def done(self) -> bool:
        return any(isinstance(r, Done) for r in self.replies)

    @property
    def text(self) -> str:
        """Everything the person would read, as plain text."""
        parts = []
        for reply in self.replies:
            if isinstance(reply, Say):
                parts.append(reply.text)
            elif isinstance(reply, Show | Update):
                parts.append(to_text(reply.card))
        return "\n".join(parts)

    def button(self, title: str) -> str:
        """The token of the button `title` on the last card."""
        actions: list[CardAction] = list(self.card.actions)
        if self.card.form is not None:
            actions.append(self.card.form.submit)
            if self.card.form.cancel is not None:
                actions.append(self.card.form.cancel)
        for action in actions:
            if action.title == title and action.token:
                return action.token
        raise AssertionError(f"no button {title!r} on {self.card.screen}: {actions}")

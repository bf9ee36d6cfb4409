"""What reaches a dialog: inbound events and the turn they arrive in, free of platform objects.

Each platform adapter (bots/) turns its activity into one `Event` and a `Turn`; the engine answers
with replies (`dialogs.replies`). Nothing here knows about Teams, Slack or Telegram.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rewards.inputs import clean_chat_text, clean_strings
from rewards.services.conversations import ConversationKey


@dataclass(frozen=True)
class Command:
    """`/name args...`; `name` without the slash, `args` the raw rest of the line."""

    name: str
    args: str = ""


@dataclass(frozen=True)
class Text:
    """A plain message: an answer to the current question, or chatter."""

    text: str


@dataclass(frozen=True)
class Action:
    """A button press: the action token and, for form submits, the form's values."""

    token: str
    values: Mapping[str, Any] = field(default_factory=dict)


Event = Command | Text | Action


def cleaned(event: Event) -> Event:
    """`event` as the person meant it: control characters (NUL...) stripped from what they typed
    and the line cut to `rewards.inputs.MAX_CHAT_TEXT` (`clean_chat_text`). Stripped, not refused:
    nobody sees those characters in a chat, so a refusal would puzzle the sender."""
    if isinstance(event, Command):
        return Command(clean_chat_text(event.name), clean_chat_text(event.args))
    if isinstance(event, Text):
        return Text(clean_chat_text(event.text))
    return Action(event.token, clean_strings(dict(event.values)))


@dataclass(frozen=True)
class Turn:
    """Who acts, in which conversation, and what the platform can show.

    `whole_forms` is True where a whole form fits on one card or modal (Teams, Slack); False where
    the engine must ask field by field (Telegram, console). `private` is True where the turn's
    sentences reach the sender alone (a direct chat; Slack's ephemeral answers), so a dialog may
    say something secret, such as a link code.
    """

    member_id: int
    key: ConversationKey
    whole_forms: bool = True
    private: bool = True

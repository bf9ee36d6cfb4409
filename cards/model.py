"""The neutral card vocabulary: what a screen says, not how a platform draws it.

Screens (`cards.screens`) build these from the core's views; renderers (`cards.render.*`) turn them
into Adaptive Card JSON, Slack Block Kit, Telegram HTML with an inline keyboard, or plain text.
Everything is immutable and free of platform details, so one screen serves all four.

Forms are cards too: a `Form` lists `Field`s. Platforms that can show a whole form at once (Teams
cards, Slack modals) render it whole; the others (Telegram, console) ask field by field, using the
same `Field` definitions, and the dialog's single submit handles both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Tone(StrEnum):
    """How a piece of text is emphasised; renderers map it to their own styles."""

    DEFAULT = "default"
    ACCENT = "accent"
    GOOD = "good"
    WARNING = "warning"
    ATTENTION = "attention"
    SUBTLE = "subtle"


@dataclass(frozen=True)
class Text:
    """A paragraph. `heading` makes it a title; `subtle` de-emphasises it."""

    text: str
    heading: bool = False
    tone: Tone = Tone.DEFAULT


@dataclass(frozen=True)
class Fact:
    label: str
    value: str


@dataclass(frozen=True)
class Facts:
    """Label/value pairs (balance: 120 points; rank: #3)."""

    facts: tuple[Fact, ...]


@dataclass(frozen=True)
class Image:
    url: str
    alt: str
    size: str = "small"  # small | medium | large


@dataclass(frozen=True)
class Row:
    """One line of a ranked or itemised list: `lead` (medal or rank), text, and a right value."""

    lead: str
    text: str
    value: str = ""
    detail: str = ""


@dataclass(frozen=True)
class ItemList:
    """A list of rows, e.g. leaderboard entries or recent kudos; `empty` shows when no rows."""

    rows: tuple[Row, ...]
    empty: str = "Nothing here yet."


@dataclass(frozen=True)
class Columns:
    """Side-by-side blocks (platforms without columns stack them)."""

    columns: tuple[tuple[Block, ...], ...]


class FieldKind(StrEnum):
    TEXT = "text"  # one line
    MULTILINE = "multiline"  # a message
    CHOICE = "choice"  # pick one of `choices`
    MULTI_CHOICE = "multi_choice"  # pick several of `choices` (and, with `allow_custom`, type more)
    PEOPLE = "people"  # one or more members (mentions, emails, names)
    PERSON = "person"  # exactly one member
    CONFIRM = "confirm"  # yes / no


@dataclass(frozen=True)
class Choice:
    value: str
    title: str
    description: str = ""


@dataclass(frozen=True)
class Field:
    """One input of a form. `name` is the key in the submitted values."""

    name: str
    label: str
    kind: FieldKind = FieldKind.TEXT
    required: bool = True
    placeholder: str = ""
    choices: tuple[Choice, ...] = ()
    allow_custom: bool = False
    max_length: int | None = None
    value: str | tuple[str, ...] | None = None  # prefilled


@dataclass(frozen=True)
class Action:
    """A button. `token` is a compact action token (see `cards.actions`); `url` opens a link.

    Exactly one of `token` and `url` is set. `submits_form` buttons send the form's values along.
    """

    title: str
    token: str | None = None
    url: str | None = None
    style: str = "default"  # default | positive | destructive
    submits_form: bool = False


@dataclass(frozen=True)
class Form:
    """Inputs plus the submit (and usually cancel) actions."""

    fields: tuple[Field, ...]
    submit: Action
    cancel: Action | None = None


Block = Text | Facts | Image | ItemList | Columns


@dataclass(frozen=True)
class Card:
    """One screen: a title, body blocks, an optional form, and actions.

    `screen` names the screen (for golden files and logs); `summary` is the one-line text used for
    notifications and as the fallback where a platform cannot show the card.
    """

    screen: str
    title: str
    summary: str
    body: tuple[Block, ...] = ()
    form: Form | None = None
    actions: tuple[Action, ...] = field(default=())

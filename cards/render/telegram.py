"""Telegram: an HTML message (``parse_mode="HTML"``) plus an inline keyboard.

Telegram's HTML mode accepts only a few tags and rejects the whole message on a stray ``<`` or
``&``, so every string that comes from a card is passed through `html.escape` and the only markup
is ours: ``<b>``, ``<i>``, ``<a href>`` and ``<blockquote>``. Text is capped at 4096 characters by
dropping whole blocks at the end (and saying so), never by cutting inside a tag or an entity.

Buttons are ``{"text", "callback_data"}`` with the action token (at most 64 bytes, checked by
`cards.actions.encode` and asserted here) or ``{"text", "url"}`` for http(s) links.

Forms are asked field by field with `field_prompt`. Its buttons use tokens from `cards.actions`:
``choice_token(field, index)`` (``rw1|form|pick|<field>.<index>``, index into `Field.choices`;
CONFIRM fields: 0 = yes, 1 = no), ``done_token(field)`` to finish a multi-choice field, and
``skip_token(field)`` for optional fields. `parse_choice_token` maps a press back.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from cards.actions import (
    MAX_BYTES,
    choice_token,
    done_token,
    parse_choice_token,
    skip_token,
)
from cards.model import (
    Action,
    Block,
    Card,
    Columns,
    Facts,
    Field,
    FieldKind,
    Image,
    ItemList,
    Row,
    Text,
    Tone,
)
from cards.render import ELLIPSIS, display_value, is_web_url, truncate

__all__ = [
    "MAX_TEXT",
    "TelegramMessage",
    "choice_token",
    "field_prompt",
    "parse_choice_token",
    "text_length",
    "to_telegram",
]

MAX_TEXT = 4096
MAX_BUTTONS = 100  # Telegram's limit for one inline keyboard
BUTTON_TEXT = 64  # not a hard Telegram limit, but longer labels are cut off on phones
STRING_LIMIT = 1000  # any one string, before escaping; keeps one field from filling a message
SHORTENED = f"\n{ELLIPSIS}"

Button = dict[str, str]


@dataclass
class TelegramMessage:
    """`text` for ``sendMessage(parse_mode="HTML")``; `keyboard` for ``InlineKeyboardMarkup``."""

    text: str
    keyboard: list[list[Button]] = field(default_factory=list)

    def reply_markup(self) -> dict[str, Any] | None:
        """The ``reply_markup`` payload, or None when there are no buttons."""
        return {"inline_keyboard": self.keyboard} if self.keyboard else None


def _e(text: str) -> str:
    return html.escape(truncate(text, STRING_LIMIT))


def _text(block: Text) -> str:
    text = _e(block.text)
    if block.heading:
        return f"<b>{text}</b>"
    if block.tone is Tone.SUBTLE:
        return f"<i>{text}</i>"
    if block.tone in (Tone.ATTENTION, Tone.WARNING):
        return f"⚠️ {text}"
    return text


def _row(row: Row) -> str:
    line = f"{_e(row.lead)} <b>{_e(row.text)}</b>" if row.lead else f"<b>{_e(row.text)}</b>"
    if row.value:
        line += f" · {_e(row.value)}"
    if row.detail:
        line += f"\n    <i>{_e(row.detail)}</i>"
    return line


def _block(block: Block) -> list[str]:
    """Each block as complete HTML fragments (safe to drop individually to fit the limit)."""
    if isinstance(block, Text):
        return [_text(block)]
    if isinstance(block, Facts):
        return ["\n".join(f"<b>{_e(f.label)}:</b> {_e(f.value)}" for f in block.facts)]
    if isinstance(block, Image):
        if not is_web_url(block.url):
            return []
        return [f'<a href="{html.escape(block.url, quote=True)}">{_e(block.alt)}</a>']
    if isinstance(block, ItemList):
        if not block.rows:
            return [f"<i>{_e(block.empty)}</i>"]
        return [_row(r) for r in block.rows]
    if isinstance(block, Columns):
        return [p for col in block.columns for b in col for p in _block(b)]
    raise TypeError(f"unknown block {block!r}")  # pragma: no cover - Block is a closed union


def text_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji medal counts 2). Counting the
    markup as well errs on the safe side."""
    return len(text.encode("utf-16-le")) // 2


def _fit(parts: list[str]) -> str:
    """Join fragments with newlines, dropping trailing ones (with "…") beyond 4096 characters."""
    out = ""
    for n, part in enumerate(parts):
        candidate = f"{out}\n{part}" if n else part
        if text_length(candidate) > MAX_TEXT - len(SHORTENED):
            return out + SHORTENED
        out = candidate
    return out


def _button(action: Action) -> Button | None:
    title = truncate(action.title, BUTTON_TEXT)
    if action.url is not None:
        return {"text": title, "url": action.url} if is_web_url(action.url) else None
    token = action.token or ""
    assert len(token.encode("utf-8")) <= MAX_BYTES, f"callback_data too long: {token!r}"
    return {"text": title, "callback_data": token}


def _keyboard(actions: list[Action]) -> list[list[Button]]:
    """Two buttons per row: short labels ("Give kudos", "Cancel") fit side by side on a phone."""
    buttons = [b for b in (_button(a) for a in actions) if b is not None][:MAX_BUTTONS]
    return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]


def _form_hint(card: Card) -> list[str]:
    if card.form is None:
        return []
    names = ", ".join(_e(f.label) for f in card.form.fields)
    return [f"<i>I'll ask you for: {names}.</i>"]


def to_telegram(card: Card) -> TelegramMessage:
    """The card as one Telegram message. A form card shows its intro and a Cancel button; the
    dialog then asks each field with `field_prompt`."""
    parts = [f"<b>{_e(card.title)}</b>\n"]  # a blank line under the title
    for n, block in enumerate(card.body):
        fragments = _block(block)
        if n and fragments and isinstance(block, Text) and block.heading:
            fragments[0] = "\n" + fragments[0]  # a blank line before a section heading
        parts.extend(fragments)
    parts.extend(_form_hint(card))
    actions = list(card.actions)
    if card.form is not None and card.form.cancel is not None:
        actions.append(card.form.cancel)
    return TelegramMessage(_fit(parts), _keyboard(actions))


def field_prompt(field: Field) -> TelegramMessage:
    """The question for one form field, with choice / Done / Skip buttons as appropriate."""
    parts = [f"<b>{_e(field.label)}</b>"]
    hint = field.placeholder
    if field.kind in (FieldKind.PEOPLE, FieldKind.PERSON):
        hint = hint or "Type @name or email"
    if field.kind is FieldKind.PEOPLE:
        hint += " (several are fine)"
    if field.kind is FieldKind.MULTI_CHOICE:
        hint = "Tap to pick, then Done" + (", or type your own" if field.allow_custom else "")
    if hint:
        parts.append(f"<i>{_e(hint)}</i>")
    if field.max_length:
        parts.append(f"<i>Up to {field.max_length} characters.</i>")
    if field.value:
        parts.append(f"Current: {_e(display_value(field))}")
    rows: list[list[Button]] = []
    if field.kind is FieldKind.CONFIRM:
        rows.append(
            [
                {"text": "Yes", "callback_data": choice_token(field.name, 0)},
                {"text": "No", "callback_data": choice_token(field.name, 1)},
            ]
        )
    elif field.kind in (FieldKind.CHOICE, FieldKind.MULTI_CHOICE):
        room = MAX_BUTTONS - 2
        for i, choice in enumerate(field.choices[:room]):
            label = truncate(choice.title, BUTTON_TEXT)
            rows.append([{"text": label, "callback_data": choice_token(field.name, i)}])
        if len(field.choices) > room:
            parts.append(f"<i>Showing the first {room} of {len(field.choices)}.</i>")
    last: list[Button] = []
    if field.kind is FieldKind.MULTI_CHOICE:
        last.append({"text": "Done", "callback_data": done_token(field.name)})
    if not field.required:
        last.append({"text": "Skip", "callback_data": skip_token(field.name)})
    if last:
        rows.append(last)
    for row in rows:
        for button in row:
            assert len(button["callback_data"].encode("utf-8")) <= MAX_BYTES
    return TelegramMessage(_fit(parts), rows)

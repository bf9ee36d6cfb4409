"""Plain text, for the console chat and the command line.

No escaping is needed (a terminal shows text as text); lists are aligned in columns so a
leaderboard reads like a table. Forms are asked field by field with `field_prompt_text`, whose
choices are numbered from 1 (the console dialog maps "2" back to `field.choices[1]`).
"""

from __future__ import annotations

from cards import screens
from cards.model import Block, Card, Columns, Facts, Field, FieldKind, Image, ItemList, Text, Tone
from cards.render import display_value
from cards.screens import MEDALS, leaderboard_title
from rewards.services.leaderboards import Leaderboard

__all__ = ["MEDALS", "field_prompt_text", "leaderboard_text", "leaderboard_title", "to_text"]

INDENT = "  "


def _list(block: ItemList) -> list[str]:
    if not block.rows:
        return [block.empty]
    width = max(len(r.text) for r in block.rows)
    value_width = max(len(r.value) for r in block.rows)
    lines = []
    for row in block.rows:
        if not value_width:  # a plain list (help): the detail goes under its item
            lines.append(f"{row.lead} {row.text}" if row.lead else row.text)
            if row.detail:
                lines.append(f"{INDENT}{INDENT}{row.detail}")
            continue
        line = f"{row.lead} {row.text:<{width}}" if row.lead else f"{row.text:<{width}}"
        line += f"  {row.value:>{value_width}}"
        if row.detail:
            line += f"  {row.detail}"
        lines.append(line.rstrip())
    return lines


def _block(block: Block) -> list[str]:
    if isinstance(block, Text):
        prefix = "! " if block.tone in (Tone.ATTENTION, Tone.WARNING) else ""
        return [prefix + block.text]
    if isinstance(block, Facts):
        width = max((len(f.label) for f in block.facts), default=0)
        return [f"{f.label + ':':<{width + 1}} {f.value}" for f in block.facts]
    if isinstance(block, Image):
        return []  # decoration only; the text around it says what it shows
    if isinstance(block, ItemList):
        return _list(block)
    if isinstance(block, Columns):
        return [line for col in block.columns for b in col for line in _block(b)]
    raise TypeError(f"unknown block {block!r}")  # pragma: no cover - Block is a closed union


def to_text(card: Card) -> str:
    """The card as text lines: title, body, the form's fields, and the buttons by name."""
    lines = [card.title]
    for n, block in enumerate(card.body):
        if n and isinstance(block, Text) and block.heading:
            lines.append("")  # a blank line before a section heading
        lines.extend(_block(block))
    if card.form is not None:
        for f in card.form.fields:
            lines.append(f"{INDENT}- {f.label}" + ("" if f.required else " (optional)"))
    titles = [a.title for a in card.actions]
    if card.form is not None:
        titles = [card.form.submit.title, *([card.form.cancel.title] if card.form.cancel else [])]
        titles += [a.title for a in card.actions]
    if titles:
        lines.append(" ".join(f"[{t}]" for t in titles))
    return "\n".join(lines)


def field_prompt_text(field: Field) -> str:
    """The question for one field; choices numbered "1) Teamwork", one per line."""
    lines = [field.label + ("" if field.required else " (optional, Enter to skip)")]
    hint = field.placeholder
    if field.kind in (FieldKind.PEOPLE, FieldKind.PERSON):
        hint = hint or "@name or email"
    if field.kind is FieldKind.CONFIRM:
        hint = "yes or no"
    if field.kind is FieldKind.MULTI_CHOICE:
        hint = "numbers separated by spaces" + (", or new names" if field.allow_custom else "")
    if hint:
        lines.append(f"{INDENT}({hint})")
    for n, choice in enumerate(field.choices, start=1):
        extra = f" - {choice.description}" if choice.description else ""
        lines.append(f"{INDENT}{n}) {choice.title}{extra}")
    if field.value:
        lines.append(f"{INDENT}current: {display_value(field)}")
    return "\n".join(lines)


def leaderboard_text(board: Leaderboard) -> str:
    """A leaderboard for the terminal (`rewards leaderboard`): the leaderboard screen as text."""
    return to_text(screens.leaderboard(board))

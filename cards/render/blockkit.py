"""Slack Block Kit: message blocks (`to_blocks`) and modal views for forms (`to_modal`).

Slack rejects a whole message when one limit is exceeded, and our text comes from users and the
catalogue, so every limit is enforced here by shortening with "…" instead of failing:
50 blocks per message (100 per modal), section text 3000, section fields 10 × 2000, header 150,
button text 75, option text/description 75, 100 options per select, placeholders 150, modal
title/submit/close 24, action_id/block_id 255, plain-text input max_length 3000.

User text goes into ``mrkdwn`` with ``&``, ``<`` and ``>`` escaped as Slack requires, which also
stops ``<https://evil|link>`` and ``<!channel>`` injection. Emphasis characters are left alone.
The message's ``text`` (the notification and the fallback where blocks are not shown) is markup
too, and is escaped the same way: `fallback_text`.

Buttons: ``action_id`` and ``value`` are the action token. Slack needs action ids unique within a
message, so a repeated token gets ``action_id = token + "#<n>"``; handlers should read ``value``.
Link buttons get ``action_id = "url-<n>"``.

Modals: input ``block_id`` and ``action_id`` are the field name, so
``view.state.values[name][name]`` holds each answer. People are picked from Slack's own user list:
``multi_users_select`` for several (kudos receivers), ``users_select`` for one (a badge's
awardee, a nominee). Those return Slack user ids, which the Slack adapter vets and resolves like
a ``<@U…>`` mention. Next to each picker an optional text input ``<name>__custom`` takes an email
or ``@handle`` typed in, for someone the list cannot offer (a member who is not in Slack); both
blocks are optional in Slack's eyes and the dialog says when nobody was named. A choice field
with ``allow_custom`` gets the same kind of extra text input (see
`cards.render.custom_field_id`). A cancel action sets ``notify_on_close`` so the app gets a
``view_closed`` event to end the dialog.
"""

from __future__ import annotations

import re
from typing import Any

from cards.model import (
    Action,
    Block,
    Card,
    Choice,
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
from cards.render import ELLIPSIS, custom_field_id, is_web_url, split_people, truncate

MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
SECTION_TEXT = 3000
FIELD_TEXT = 2000
MAX_FIELDS = 10
HEADER_TEXT = 150
BUTTON_TEXT = 75
OPTION_TEXT = 75
MAX_OPTIONS = 100
MAX_BUTTONS = 25
PLACEHOLDER_TEXT = 150
MODAL_TITLE = 24
ACTION_ID = 255
INPUT_MAX_LENGTH = 3000
LABEL_TEXT = 2000
ROW_TEXT = 500  # one list row; keeps a single long name from eating a whole section
PICK_PEOPLE = "Pick people"
PICK_PERSON = "Pick a person"
TYPED_PEOPLE_LABEL = "Not in the list? Type an email or @handle"
TYPED_PEOPLE_PLACEHOLDER = "ana@example.com, @liwei"
# A Slack user id, bare or as a mention: what a users select can preselect.
_SLACK_USER = re.compile(r"^(?:<@)?([UW][A-Z0-9]{2,})(?:\|[^>]*)?>?$")

Json = dict[str, Any]

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_ESCAPE_TABLE = str.maketrans(_ESCAPES)  # one C pass over the text, not a Python call a character


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.translate(_ESCAPE_TABLE)


def escape_cut(text: str, limit: int) -> str:
    """`escape(text)` in at most `limit` characters, never cutting an ``&amp;`` in half."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    size = 0
    for c in text:
        piece = _ESCAPES.get(c, c)
        if size + len(piece) > limit - 1:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out).rstrip() + ELLIPSIS


def fallback_text(card: Card) -> str:
    """The ``text`` that goes with `to_blocks(card)`: the card's summary, escaped like the blocks
    (Slack reads ``text`` as markup too: an unescaped ``<!channel>`` there would ping everyone)."""
    return escape_cut(card.summary, SECTION_TEXT)


def _plain(text: str, limit: int) -> Json:
    return {"type": "plain_text", "text": truncate(text, limit) or " ", "emoji": True}


def _mrkdwn(text: str) -> Json:
    return {"type": "mrkdwn", "text": text}


def _section(text: str) -> Json:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> Json:
    return {"type": "context", "elements": [_mrkdwn(text)]}


def _text(block: Text) -> list[Json]:
    if block.tone is Tone.SUBTLE:
        return [_context(escape_cut(block.text, SECTION_TEXT))]
    prefix = ":warning: " if block.tone in (Tone.ATTENTION, Tone.WARNING) else ""
    if block.heading:
        return [_section(f"{prefix}*{escape_cut(block.text, SECTION_TEXT - 2 - len(prefix))}*")]
    return [_section(prefix + escape_cut(block.text, SECTION_TEXT - len(prefix)))]


def _row_line(row: Row) -> str:
    parts = [row.lead] if row.lead else []
    parts.append(f"*{escape_cut(row.text, ROW_TEXT)}*")
    if row.value:
        parts.append(f"· {escape_cut(row.value, 100)}")
    line = " ".join(parts)
    if row.detail:
        line += f"\n      _{escape_cut(row.detail, ROW_TEXT)}_"
    return line


def _list(block: ItemList) -> list[Json]:
    """Rows as lines packed into as few sections as fit 3000 characters each."""
    if not block.rows:
        return [_context(escape_cut(block.empty, SECTION_TEXT))]
    sections: list[Json] = []
    lines: list[str] = []
    size = 0
    for row in block.rows:
        line = _row_line(row)
        if lines and size + 1 + len(line) > SECTION_TEXT:
            sections.append(_section("\n".join(lines)))
            lines, size = [], 0
        lines.append(line)
        size += len(line) + (1 if size else 0)
    sections.append(_section("\n".join(lines)))
    return sections


def _facts(block: Facts) -> list[Json]:
    fields = [
        _mrkdwn(
            f"*{escape_cut(f.label, 200)}*\n"
            + escape_cut(f.value, FIELD_TEXT - 3 - len(escape_cut(f.label, 200)))
        )
        for f in block.facts
    ]
    return [
        {"type": "section", "fields": fields[i : i + MAX_FIELDS]}
        for i in range(0, len(fields), MAX_FIELDS)
    ]


def _block(block: Block) -> list[Json]:
    if isinstance(block, Text):
        return _text(block)
    if isinstance(block, Facts):
        return _facts(block)
    if isinstance(block, Image):
        if not is_web_url(block.url) or len(block.url) > 3000:
            return []
        return [
            {"type": "image", "image_url": block.url, "alt_text": truncate(block.alt, 2000) or " "}
        ]
    if isinstance(block, ItemList):
        return _list(block)
    if isinstance(block, Columns):  # Slack has no columns: stack them
        return [j for col in block.columns for b in col for j in _block(b)]
    raise TypeError(f"unknown block {block!r}")  # pragma: no cover - Block is a closed union


def _buttons(actions: list[Action]) -> list[Json]:
    elements: list[Json] = []
    seen: set[str] = set()
    for n, action in enumerate(actions):
        button: Json = {"type": "button", "text": _plain(action.title, BUTTON_TEXT)}
        if action.url is not None:
            if not is_web_url(action.url) or len(action.url) > 3000:
                continue
            button["url"] = action.url
            button["action_id"] = f"url-{n}"
        else:
            token = action.token or ""
            action_id = token if token not in seen else f"{token}#{n}"
            seen.add(token)
            button["action_id"] = action_id[:ACTION_ID]
            button["value"] = token
        if action.style == "positive":
            button["style"] = "primary"
        elif action.style == "destructive":
            button["style"] = "danger"
        elements.append(button)
    return [
        {"type": "actions", "elements": elements[i : i + MAX_BUTTONS]}
        for i in range(0, len(elements), MAX_BUTTONS)
    ]


def _cap(blocks: list[Json], limit: int) -> list[Json]:
    """Keep the message within Slack's block count, saying that something was left out."""
    limit = max(limit, 1)
    if len(blocks) <= limit:
        return blocks
    return [*blocks[: limit - 1], _context(f"{ELLIPSIS} (shortened)")]


def _body(card: Card) -> list[Json]:
    blocks: list[Json] = [{"type": "header", "text": _plain(card.title, HEADER_TEXT)}]
    for block in card.body:
        blocks.extend(_block(block))
    return blocks


def to_blocks(card: Card) -> list[dict[str, Any]]:
    """Message blocks. A form card shows its body and buttons; the dialog opens `to_modal` for the
    inputs themselves (a form cannot be filled in inside a Slack message)."""
    blocks = _body(card)
    actions = list(card.actions)
    if card.form is not None:
        actions = [card.form.submit, *([card.form.cancel] if card.form.cancel else []), *actions]
    buttons = _buttons(actions)
    return [*_cap(blocks, MAX_MESSAGE_BLOCKS - len(buttons)), *buttons]


def _option(choice: Choice) -> Json:
    option: Json = {"text": _plain(choice.title, OPTION_TEXT), "value": choice.value}
    if choice.description:
        option["description"] = _plain(choice.description, OPTION_TEXT)
    return option


def _text_input(field: Field, *, multiline: bool = False) -> Json:
    element: Json = {"type": "plain_text_input", "action_id": field.name[:ACTION_ID]}
    if multiline:
        element["multiline"] = True
    max_length = min(field.max_length or INPUT_MAX_LENGTH, INPUT_MAX_LENGTH)
    if field.max_length is not None:
        element["max_length"] = max_length
    if field.placeholder:
        element["placeholder"] = _plain(field.placeholder, PLACEHOLDER_TEXT)
    if field.value is not None:
        value = field.value if isinstance(field.value, str) else ", ".join(field.value)
        element["initial_value"] = value[:max_length]
    return element


def _select(field: Field) -> Json:
    multi = field.kind is FieldKind.MULTI_CHOICE
    options = [_option(c) for c in field.choices[:MAX_OPTIONS]]
    element: Json = {
        "type": "multi_static_select" if multi else "static_select",
        "action_id": field.name[:ACTION_ID],
        "options": options,
    }
    if field.placeholder:
        element["placeholder"] = _plain(field.placeholder, PLACEHOLDER_TEXT)
    wanted = (field.value,) if isinstance(field.value, str) else (field.value or ())
    initial = [o for o in options if o["value"] in wanted]
    if initial and multi:
        element["initial_options"] = initial
    elif initial:
        element["initial_option"] = initial[0]
    return element


def _slack_user(value: str) -> str | None:
    match = _SLACK_USER.match(value)
    return match.group(1) if match else None


def _people_inputs(field: Field) -> list[Json]:
    """A users select (several for PEOPLE, one for PERSON) plus the typed companion."""
    multi = field.kind is FieldKind.PEOPLE
    ids, typed = split_people(field, lambda v: _slack_user(v) is not None)
    users = [u for u in (_slack_user(v) for v in ids) if u]
    element: Json = {
        "type": "multi_users_select" if multi else "users_select",
        "action_id": field.name[:ACTION_ID],
        "placeholder": _plain(PICK_PEOPLE if multi else PICK_PERSON, PLACEHOLDER_TEXT),
    }
    if users and multi:
        element["initial_users"] = users
    elif users:
        element["initial_user"] = users[0]
    typed_field = Field(
        custom_field_id(field.name),
        TYPED_PEOPLE_LABEL,
        placeholder=TYPED_PEOPLE_PLACEHOLDER,
        max_length=500,
        value=typed or None,
    )
    return [
        _input_block(field.name, field.label, element, optional=True),
        _input_block(typed_field.name, typed_field.label, _text_input(typed_field), optional=True),
    ]


def _checkbox(field: Field) -> Json:
    option = {"text": _plain(field.label, OPTION_TEXT), "value": "true"}
    element: Json = {
        "type": "checkboxes",
        "action_id": field.name[:ACTION_ID],
        "options": [option],
    }
    if field.value == "true":
        element["initial_options"] = [option]
    return element


def _input_block(block_id: str, label: str, element: Json, *, optional: bool) -> Json:
    return {
        "type": "input",
        "block_id": block_id[:ACTION_ID],
        "label": _plain(label, LABEL_TEXT),
        "optional": optional,
        "element": element,
    }


def _inputs(field: Field) -> list[Json]:
    optional = not field.required
    if field.kind is FieldKind.CONFIRM:
        return [_input_block(field.name, field.label, _checkbox(field), optional=True)]
    if field.kind in (FieldKind.PEOPLE, FieldKind.PERSON):
        return _people_inputs(field)
    if field.kind in (FieldKind.CHOICE, FieldKind.MULTI_CHOICE):
        blocks: list[Json] = []
        if field.choices:
            blocks.append(_input_block(field.name, field.label, _select(field), optional=optional))
        if field.allow_custom or not field.choices:
            custom = Field(
                custom_field_id(field.name) if field.choices else field.name,
                field.label,
                placeholder="Comma separated",
                max_length=200,
            )
            label = f"Other {field.label.lower()}" if field.choices else field.label
            blocks.append(
                _input_block(
                    custom.name,
                    label,
                    _text_input(custom),
                    optional=optional or bool(field.choices),
                )
            )
        return blocks
    element = _text_input(field, multiline=field.kind is FieldKind.MULTILINE)
    return [_input_block(field.name, field.label, element, optional=optional)]


def to_modal(card: Card, *, callback_id: str, private_metadata: str = "") -> dict[str, Any]:
    """A modal view for `views.open`. Without a form it is an information modal (close only).

    `private_metadata` is the caller's routing data and is never shortened: over 3000 characters
    raises `ValueError`, as a cut value would be silently wrong.
    """
    if len(private_metadata) > 3000:
        raise ValueError("Slack private_metadata is limited to 3000 characters")
    if len(callback_id) > ACTION_ID:
        raise ValueError("Slack callback_id is limited to 255 characters")
    blocks = [b for block in card.body for b in _block(block)]
    inputs: list[Json] = []
    view: Json = {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain(card.title, MODAL_TITLE),
    }
    if card.form is not None:
        inputs = [j for f in card.form.fields for j in _inputs(f)]
        view["submit"] = _plain(card.form.submit.title, MODAL_TITLE)
        close = card.form.cancel.title if card.form.cancel else "Cancel"
        view["close"] = _plain(close, MODAL_TITLE)
        if card.form.cancel is not None:
            view["notify_on_close"] = True
    else:
        view["close"] = _plain("Close", MODAL_TITLE)
    if card.actions:
        blocks.extend(_buttons(list(card.actions)))
    if not blocks and not inputs:  # Slack refuses a modal without blocks
        blocks = [_section(escape_cut(card.summary, SECTION_TEXT))]
    view["blocks"] = [*_cap(blocks, MAX_MODAL_BLOCKS - len(inputs)), *inputs]
    if private_metadata:
        view["private_metadata"] = private_metadata
    return view

"""Adaptive Card 1.5 JSON for Teams.

Plain dicts, no builder library (see tech-spike §2.1); the unit tests validate every sample against
the official 1.5 schema (plus Teams' ``choices.data``, below). We target 1.5 because
`Action.Execute` (Universal Actions, so a press can refresh the card for everyone) and
`style: heading` need it, and Teams supports it.

Buttons are `Action.Execute` with ``verb`` = the action token and ``data = {"token": token}`` so
the bot reads the token the same way whichever action type is used; `execute=False` gives
`Action.Submit` instead (bots not registered for Universal Actions, the card designer).

Text safety: Teams draws TextBlock and FactSet text as markdown (a CommonMark subset), and what a
card shows is data (people's names and messages, catalogue text), never our formatting, which is
done with properties (weight, size, colour). So every such text is escaped for markdown
(`escape_markdown`) and shows as typed: ``[click me](https://evil)`` is no link in the bot's name,
``*`` and ``_`` are no emphasis, ``a<b and c>d`` keeps its ``<b and c>`` (Teams drops what looks
like an HTML tag), and a line starting ``1.`` or ``-`` is no list. The escapes are CommonMark's own
backslash escapes. Bare URLs are still auto-linked by Teams itself; that shows the real address, so
it is not disguised and is left alone. Input labels and choice titles are plain text, not markdown.

Inputs: text fields are `Input.Text`, choices are `Input.ChoiceSet` (compact; a multi-select with
at most 8 choices is shown expanded as checkboxes), confirm is `Input.Toggle` ("true"/"false").
Multi-select values arrive comma-joined, as Adaptive Cards send them. `allow_custom` adds
``<name>__custom``.
Cancel buttons use ``associatedInputs: "none"`` so required inputs never block them.

People fields use the Teams people picker: an `Input.ChoiceSet` whose ``choices.data`` is a
``Data.Query`` on ``graph.microsoft.com/users`` (multi-select for several people), which Teams
fills by searching the organisation's directory and which submits Azure AD object ids
(comma-separated for several); the Teams adapter resolves those to members. ``choices.data`` is
Teams' extension of the choice set (the official schema defines it from 1.6 on, Teams honours
it in cards of any version), so the cards stay 1.5. Typing stays possible everywhere: an
optional `Input.Text` ``<name>__custom`` ("@name or email") sits under the picker, which the
engine merges into the field like any `allow_custom` companion. It is needed even where the
picker renders, because a host that draws the choice set but cannot search the directory (the
Agents Playground) shows an empty list. The picker's ``fallback`` is ``"drop"``, so a host that
cannot render it at all is left with that typed input alone rather than two of them.

`people_picker=False` renders a people field as one required `Input.Text` with the field's own id
(typed mentions only): the Teams adapter asks for it where it knows the client cannot search the
directory (the Bot Framework Emulator).
"""

from __future__ import annotations

import re
from typing import Any

from cards.model import (
    Action,
    Block,
    Card,
    Columns,
    Facts,
    Field,
    FieldKind,
    Form,
    Image,
    ItemList,
    Row,
    Text,
    Tone,
)
from cards.render import custom_field_id, is_web_url, split_people

SCHEMA_URL = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"
PEOPLE_PLACEHOLDER = "@name or email"
PEOPLE_DATASET = "graph.microsoft.com/users"
PICK_PEOPLE = "Search for people"
PICK_PERSON = "Search for a person"
TYPED_PEOPLE_LABEL = "Not in the list? Type @name or email"
_AAD_ID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

_COLORS = {
    Tone.DEFAULT: "Default",
    Tone.ACCENT: "Accent",
    Tone.GOOD: "Good",
    Tone.WARNING: "Warning",
    Tone.ATTENTION: "Attention",
}
_SIZES = {"small": "Small", "medium": "Medium", "large": "Large"}
_STYLES = {"positive": "positive", "destructive": "destructive"}

Json = dict[str, Any]


# Characters markdown gives a meaning anywhere in a line (emphasis, code, links, HTML and
# entities), and markers that start a list or a quote at the beginning of a line.
_INLINE = re.compile(r"([\\`*_~\[\]<>&])")
_LIST_START = re.compile(r"^(\s*)([-+])(?=\s|$)", re.MULTILINE)
_NUMBERED_START = re.compile(r"^(\s*\d{1,9})([.)])(?=\s|$)", re.MULTILINE)


def escape_markdown(text: str) -> str:
    """`text` as Teams should show it, character for character: every markdown character is
    backslash-escaped (CommonMark), so user text cannot format, link or hide itself."""
    text = _INLINE.sub(r"\\\1", text)
    text = _LIST_START.sub(r"\1\\\2", text)
    return _NUMBERED_START.sub(r"\1\\\2", text)


def _text_block(text: str, **props: Any) -> Json:
    return {"type": "TextBlock", "text": escape_markdown(text), "wrap": True, **props}


def _text(block: Text) -> Json:
    props: Json = {}
    if block.heading:
        props.update(weight="Bolder", size="Medium")
    if block.tone is Tone.SUBTLE:
        props["isSubtle"] = True
    elif block.tone is not Tone.DEFAULT:
        props["color"] = _COLORS[block.tone]
    return _text_block(block.text, **props)


def _row(row: Row) -> Json:
    """A list row as three columns: lead (medal), name with detail below, value on the right."""
    middle: list[Json] = [_text_block(row.text)]
    if row.detail:
        middle.append(_text_block(row.detail, isSubtle=True, size="Small", spacing="None"))
    columns: list[Json] = []
    if row.lead:
        columns.append({"type": "Column", "width": "auto", "items": [_text_block(row.lead)]})
    columns.append({"type": "Column", "width": "stretch", "items": middle})
    if row.value:
        value = _text_block(row.value, weight="Bolder", horizontalAlignment="Right")
        columns.append({"type": "Column", "width": "auto", "items": [value]})
    return {"type": "ColumnSet", "columns": columns}


def _block(block: Block) -> list[Json]:
    if isinstance(block, Text):
        return [_text(block)]
    if isinstance(block, Facts):
        facts = [
            {"title": escape_markdown(f.label), "value": escape_markdown(f.value)}
            for f in block.facts
        ]
        return [{"type": "FactSet", "facts": facts}]
    if isinstance(block, Image):
        if not is_web_url(block.url):
            return []
        return [
            {
                "type": "Image",
                "url": block.url,
                "altText": block.alt,
                "size": _SIZES.get(block.size, "Small"),
            }
        ]
    if isinstance(block, ItemList):
        if not block.rows:
            return [_text_block(block.empty, isSubtle=True)]
        return [{"type": "Container", "items": [_row(r) for r in block.rows]}]
    if isinstance(block, Columns):
        columns = [
            {"type": "Column", "width": "stretch", "items": [j for b in col for j in _block(b)]}
            for col in block.columns
        ]
        return [{"type": "ColumnSet", "columns": columns}]
    raise TypeError(f"unknown block {block!r}")  # pragma: no cover - Block is a closed union


def _value(field: Field) -> str | None:
    if field.value is None:
        return None
    if isinstance(field.value, tuple):
        return ",".join(field.value)
    return field.value


def is_aad_id(value: str) -> bool:
    """Whether `value` has the shape of an Azure AD object id (what the people picker submits)."""
    return _AAD_ID.match(value.strip()) is not None


def _people_picker(field: Field) -> list[Json]:
    """The Teams people picker for `field` (dropped where unsupported) and its typed companion."""
    multi = field.kind is FieldKind.PEOPLE
    ids, rest = split_people(field, is_aad_id)
    picker: Json = {
        "type": "Input.ChoiceSet",
        "id": field.name,
        "label": field.label,
        "isRequired": False,  # the typed companion may carry the answer; the dialog checks
        "choices": [],
        "choices.data": {"type": "Data.Query", "dataset": PEOPLE_DATASET},
        "isMultiSelect": multi,
        "placeholder": PICK_PEOPLE if multi else PICK_PERSON,
        "fallback": "drop",
    }
    if ids:
        picker["value"] = ",".join(ids if multi else ids[:1])
    companion: Json = {
        "type": "Input.Text",
        "id": custom_field_id(field.name),
        "label": TYPED_PEOPLE_LABEL,
        "isRequired": False,
        "placeholder": PEOPLE_PLACEHOLDER,
        "maxLength": 500,
    }
    if rest:
        companion["value"] = rest
    return [picker, companion]


def _input(field: Field, *, people_picker: bool = True) -> list[Json]:
    if people_picker and field.kind in (FieldKind.PEOPLE, FieldKind.PERSON):
        return _people_picker(field)
    common: Json = {"id": field.name, "label": field.label, "isRequired": field.required}
    if field.required:
        common["errorMessage"] = "Please fill this in."
    value = _value(field)
    if field.kind is FieldKind.CONFIRM:
        toggle: Json = {
            "type": "Input.Toggle",
            "title": field.label,
            "valueOn": "true",
            "valueOff": "false",
            **common,
        }
        if value is not None:
            toggle["value"] = value
        return [toggle]
    if field.kind in (FieldKind.CHOICE, FieldKind.MULTI_CHOICE):
        multi = field.kind is FieldKind.MULTI_CHOICE
        choices = [
            {
                "title": f"{c.title} — {c.description}" if c.description else c.title,
                "value": c.value,
            }
            for c in field.choices
        ]
        element: Json = {
            "type": "Input.ChoiceSet",
            "choices": choices,
            "style": "expanded" if multi and len(choices) <= 8 else "compact",
            "isMultiSelect": multi,
            "wrap": True,
            **common,
        }
        if field.placeholder:
            element["placeholder"] = field.placeholder
        if value is not None:
            element["value"] = value
        inputs = [element]
        if field.allow_custom:
            inputs.append(
                {
                    "type": "Input.Text",
                    "id": custom_field_id(field.name),
                    "label": f"Other {field.label.lower()} (comma separated)",
                    "isRequired": False,
                    "maxLength": 200,
                }
            )
        return inputs
    text: Json = {"type": "Input.Text", **common}
    if field.kind is FieldKind.MULTILINE:
        text["isMultiline"] = True
    placeholder = field.placeholder
    if field.kind in (FieldKind.PEOPLE, FieldKind.PERSON):
        placeholder = placeholder or PEOPLE_PLACEHOLDER
    if placeholder:
        text["placeholder"] = placeholder
    if field.max_length is not None:
        text["maxLength"] = field.max_length
    if value is not None:
        text["value"] = value
    return [text]


def _action(action: Action, *, execute: bool) -> Json:
    if action.url is not None:
        out: Json = {"type": "Action.OpenUrl", "title": action.title, "url": action.url}
    else:
        token = action.token or ""
        out = {
            "type": "Action.Execute" if execute else "Action.Submit",
            "title": action.title,
            "data": {"token": token},
        }
        if execute:
            out["verb"] = token
        # Cancel must not be blocked by the form's required inputs.
        out["associatedInputs"] = "auto" if action.submits_form else "none"
    if action.style in _STYLES:
        out["style"] = _STYLES[action.style]
    return out


def _form(form: Form, *, people_picker: bool) -> list[Json]:
    return [j for f in form.fields for j in _input(f, people_picker=people_picker)]


def to_adaptive(card: Card, *, execute: bool = True, people_picker: bool = True) -> dict[str, Any]:
    """The card as Adaptive Card 1.5 JSON (a dict ready for `json.dumps`); `people_picker=False`
    asks for people as typed text only (clients that cannot search the directory)."""
    body: list[Json] = [_text_block(card.title, size="Large", weight="Bolder", style="heading")]
    for block in card.body:
        body.extend(_block(block))
    actions: list[Json] = []
    if card.form is not None:
        body.extend(_form(card.form, people_picker=people_picker))
        actions.append(_action(card.form.submit, execute=execute))
        if card.form.cancel is not None:
            actions.append(_action(card.form.cancel, execute=execute))
    actions.extend(
        _action(a, execute=execute) for a in card.actions if a.url is None or is_web_url(a.url)
    )
    out: dict[str, Any] = {
        "$schema": SCHEMA_URL,
        "type": "AdaptiveCard",
        "version": VERSION,
        "fallbackText": card.summary,
        "body": body,
    }
    if actions:
        out["actions"] = actions
    return out

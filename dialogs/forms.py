"""Field-by-field answers and submitted form values, normalised to one shape for `submit`.

Shapes a dialog's `submit` receives, whichever mode collected them:
TEXT / MULTILINE -> str; CHOICE -> the choice's value; MULTI_CHOICE -> list[str];
PEOPLE -> list[str] of references (emails or mentions); PERSON -> str; CONFIRM -> bool.
An optional field left empty is None (an empty list for MULTI_CHOICE and PEOPLE).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from cards.model import Field, FieldKind
from cards.render import CUSTOM_SUFFIX
from rewards.errors import InvalidInput
from rewards.services.mentions import resolve_mention
from rewards.store.db import Database

SKIP_WORDS = frozenset({"skip", "-", "none", "nothing"})
YES = frozenset({"yes", "y", "ok", "confirm", "sure", "si", "sí", "1"})
NO = frozenset({"no", "n", "nope", "2"})

# A mention at the start of a word: @name, @First.Last, @"Ana Lima", @ana@example.com, or a bare
# email address.
MENTION = re.compile(r'(?<!\S)@"[^"]+"|(?<!\S)@[^\s,;]+|(?<!\S)[^\s@,;]+@[^\s@,;]+\.[^\s@,;]+')


def split_mentions(text: str) -> list[str]:
    """The mentions in `text`, in order, without trailing punctuation."""
    return [m.group(0).rstrip(".!?:)") for m in MENTION.finditer(text)]


def as_list(value: Any) -> list[str]:
    """A submitted multi-value as a list: platforms send lists or comma-separated strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, Sequence):
        return [str(item).strip() for item in value if str(item).strip()]
    return [str(value)]


def merge_custom_values(submitted: Mapping[str, Any]) -> dict[str, Any]:
    """Fold the free-text companion of an `allow_custom` choice (`tags__custom`) into its field.

    Adaptive Cards 1.5 and Slack selects cannot take typed-in values, so the renderers add a text
    input named `<field>__custom` next to the choice set; a submit carries both.
    """
    merged = {k: v for k, v in submitted.items() if not k.endswith(CUSTOM_SUFFIX)}
    for key, extra in submitted.items():
        if key.endswith(CUSTOM_SUFFIX):
            name = key[: -len(CUSTOM_SUFFIX)]
            typed = as_list(extra)
            if typed:
                merged[name] = [*as_list(merged.get(name)), *typed]
    return merged


def people_refs(value: Any) -> list[str]:
    """References to people from a PEOPLE/PERSON value: mentions, emails or plain names."""
    refs: list[str] = []
    for item in as_list(value):
        found = split_mentions(item)
        refs.extend(found if found else [item])
    return refs


def _choice(field: Field, answer: str) -> str | None:
    """The value of the choice `answer` names: its number (1-based), title or value."""
    text = answer.strip().lstrip("#").strip()
    if text.isdigit() and 1 <= int(text) <= len(field.choices):
        return field.choices[int(text) - 1].value
    folded = text.casefold()
    for choice in field.choices:
        if folded in (choice.title.casefold(), choice.value.casefold()):
            return choice.value
    return None


def prompt_reason(field: Field) -> str:
    if field.kind is FieldKind.CHOICE:
        return "Please pick one of the options: type its number or its name."
    if field.kind is FieldKind.MULTI_CHOICE:
        return "Please pick from the options by number or name, separated by commas."
    return "Please try again."


async def parse_answer(db: Database, field: Field, answer: str) -> Any:
    """Validate a typed answer to `field`; raise InvalidInput with the reason to re-ask."""
    text = answer.strip()
    if not text or text.casefold() in SKIP_WORDS:
        if field.required:
            raise InvalidInput("I need an answer to this one.")
        return [] if field.kind in (FieldKind.MULTI_CHOICE, FieldKind.PEOPLE) else None
    if field.kind in (FieldKind.TEXT, FieldKind.MULTILINE):
        if field.max_length is not None and len(text) > field.max_length:
            raise InvalidInput(
                f"That is {len(text)} characters; please keep it under {field.max_length}."
            )
        return text
    if field.kind is FieldKind.CHOICE:
        value = _choice(field, text)
        if value is None:
            raise InvalidInput(prompt_reason(field))
        return value
    if field.kind is FieldKind.MULTI_CHOICE:
        parts = [p for chunk in text.split(",") for p in _split_multi(field, chunk)]
        values: list[str] = []
        for part in parts:
            value = _choice(field, part)
            if value is None:
                if not field.allow_custom:
                    raise InvalidInput(
                        f"“{part}” is not one of the options. {prompt_reason(field)}"
                    )
                value = part.lstrip("#")
            if value not in values:
                values.append(value)
        return values
    if field.kind in (FieldKind.PEOPLE, FieldKind.PERSON):
        refs = split_mentions(text) or [text]
        if field.kind is FieldKind.PERSON and len(refs) != 1:
            raise InvalidInput("Please name exactly one person.")
        emails = [(await resolve_mention(db, ref)).email for ref in refs]
        return emails if field.kind is FieldKind.PEOPLE else emails[0]
    if field.kind is FieldKind.CONFIRM:
        if text.casefold() in YES:
            return True
        if text.casefold() in NO:
            return False
        raise InvalidInput("Please answer yes or no.")
    return text


def _split_multi(field: Field, chunk: str) -> list[str]:
    """One comma-separated part: kept whole if it names a choice, else split on spaces."""
    chunk = chunk.strip()
    if not chunk:
        return []
    if _choice(field, chunk) is not None:
        return [chunk]
    return chunk.split()

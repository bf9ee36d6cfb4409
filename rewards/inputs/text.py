"""Text without control characters.

C0 control characters (U+0000 to U+001F) other than tab, line feed and carriage return have no
place in a message, a name or an id: NUL is refused by PostgreSQL in text and JSONB (a kudos with
one was a 500 on PostgreSQL and an apology in chat; a catalogue reward name with one validated,
then failed at load), and the others only hide text or garble a terminal. Lone surrogates (from a
JSON escape such as "\\ud800") cannot be encoded as UTF-8 for the database either.

Two policies, by where the text comes from:

- documents (API bodies, catalogue and member files): refused, with the field's name, so the
  sender fixes the source (`check_text`, `check_document_text`);
- chat lines and form values typed in a chat: stripped (`clean_chat_text`), because the person
  cannot see the character and expects the message they typed to go through.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from rewards.inputs.errors import InputRefused

MAX_CHAT_TEXT = 4000
"""The longest chat line the dialogs read; longer ones are cut (every platform caps lower or
near: Slack 4,000 for a slash command, Telegram 4,096). Kudos have their own, lower limit."""

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
REPLACEMENT = "\ufffd"
_UNSEEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffd]")


class TextRefused(InputRefused):
    code = "control-character"


def text_problem(value: str) -> str | None:
    """What is wrong with `value` as stored text, or None."""
    found = _FORBIDDEN.search(value)
    if found is None:
        return None
    char = found.group()
    if "\ud800" <= char <= "\udfff":
        return "contains text that is not valid Unicode (a lone surrogate)"
    return f"contains a control character (U+{ord(char):04X}), which is not allowed"


def check_text(value: str, what: str) -> str:
    """`value` unchanged, or TextRefused saying "The {what} contains ..."."""
    problem = text_problem(value)
    if problem is not None:
        raise TextRefused(f"The {what} {problem}.")
    return value


def clean_chat_text(value: str) -> str:
    """A chat line as the person meant it: control characters, lone surrogates and replacement
    characters (what `clean_strings` left of them) removed, cut to MAX_CHAT_TEXT characters."""
    return _UNSEEN.sub("", value)[:MAX_CHAT_TEXT]


def _walk(value: object, where: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON value (keys too) with its path, iteratively (no recursion)."""
    stack: list[tuple[object, str]] = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            yield at, item
        elif isinstance(item, dict):
            for key, child in item.items():
                path = f"{at}.{key}" if at else str(key)
                if isinstance(key, str):
                    yield path, key
                stack.append((child, path))
        elif isinstance(item, list):
            stack.extend((child, f"{at}[{index}]") for index, child in enumerate(item))


def document_text_problems(value: object, where: str = "") -> list[tuple[str, str]]:
    """(field, problem) for every string of a parsed JSON document that `text_problem` refuses,
    sorted by field."""
    found = [
        (printable(at) or "(body)", problem)
        for at, text in _walk(value, where)
        if (problem := text_problem(text))
    ]
    return sorted(found)


def printable(value: str) -> str:
    """`value` with each forbidden character written as an escape (`\\u0000`), for messages."""
    return _FORBIDDEN.sub(lambda found: f"\\u{ord(found.group()):04x}", value)


def check_document_text(value: object, what: str = "") -> None:
    """Raise TextRefused naming the first field of a parsed JSON document with bad text."""
    problems = document_text_problems(value)
    if problems:
        field, problem = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise TextRefused(f"{what}{field}: {problem}{more}.")


def clean_strings(value: Any) -> Any:
    """A copy of a JSON value with every forbidden character (keys too) replaced by U+FFFD, the
    replacement character: for chat payloads (Telegram updates, Teams activities) before their
    SDK reads them. Replaced, not removed, so lengths and offsets stay right (Telegram's entity
    offsets count UTF-16 units; each forbidden character is one unit, as is U+FFFD); the chat
    text itself is then cleaned by `clean_chat_text`, which removes them. It recurses, so only
    for values whose depth the gate has bounded (`parse_json`)."""
    if isinstance(value, str):
        return _FORBIDDEN.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {clean_strings(k): clean_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_strings(item) for item in value]
    return value

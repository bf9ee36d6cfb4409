"""Compact action tokens: what a card button says when it is pressed.

A token is ``rw1|<dialog>|<verb>|<ref>``, e.g. ``rw1|kudos|send|`` or ``rw1|lb|page|month.2``. It
names the dialog that handles the press, the verb within it, and an optional reference (an id, a
page, a field and choice index). Tokens are small on purpose:

- Telegram's ``callback_data`` is at most 64 bytes, so every token must fit in 64 bytes of UTF-8.
  We check that on *encode*, where a bug is found by the developer, not on the user's click.
- A token carries no state and no secrets. Conversation state lives in the database, keyed by the
  conversation; a token only says which button was pressed. So a stale or doubled press decodes
  fine and the dialog answers it politely (DESIGN.md §4).
- ``rw1`` versions the format: a later ``rw2`` can be told apart from buttons still sitting in old
  chat messages, which decode to `BadToken` and get a polite "this button has expired".

Platform payloads (Slack ``action_id``/``value``, Adaptive ``verb``/``data``) carry the same string,
so one decoder serves every platform.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "rw1"
SEPARATOR = "|"
MAX_BYTES = 64  # Telegram callback_data limit; the strictest of our platforms.

# Dialog and verb names: short lower-case identifiers, so a token stays readable in logs.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,15}")
# References: URL-safe unreserved characters (RFC 3986) only, so the separator can never appear
# and a token survives being put in a URL, a Slack action_id or a Telegram callback unchanged.
_REF = re.compile(r"[A-Za-z0-9_.~-]*")


class BadToken(ValueError):
    """A token that is not ours, is malformed, or cannot be encoded within the limits."""


@dataclass(frozen=True)
class ActionToken:
    dialog: str
    verb: str
    ref: str = ""


def encode(dialog: str, verb: str, ref: str = "") -> str:
    """Build a token; raise `BadToken` if a part is not a short identifier / URL-safe ref, or if
    the whole token is longer than 64 bytes."""
    if not _NAME.fullmatch(dialog):
        raise BadToken(f"dialog name {dialog!r} must be a short lower-case identifier")
    if not _NAME.fullmatch(verb):
        raise BadToken(f"verb {verb!r} must be a short lower-case identifier")
    if not _REF.fullmatch(ref):
        raise BadToken(f"ref {ref!r} may only hold letters, digits and _ . ~ -")
    token = SEPARATOR.join((PREFIX, dialog, verb, ref))
    if len(token.encode("utf-8")) > MAX_BYTES:
        raise BadToken(f"token {token!r} is longer than {MAX_BYTES} bytes")
    return token


def decode(token: str) -> ActionToken:
    """Parse a token; anything that `encode` could not have produced raises `BadToken`."""
    if not isinstance(token, str) or len(token.encode("utf-8")) > MAX_BYTES:
        raise BadToken("not an action token")
    parts = token.split(SEPARATOR)
    if len(parts) != 4 or parts[0] != PREFIX:
        raise BadToken("not an action token")
    _, dialog, verb, ref = parts
    if not (_NAME.fullmatch(dialog) and _NAME.fullmatch(verb) and _REF.fullmatch(ref)):
        raise BadToken("not an action token")
    return ActionToken(dialog, verb, ref)


def is_token(value: object) -> bool:
    """True if `value` decodes; handy where platforms mix our tokens with other payloads."""
    if not isinstance(value, str):
        return False
    try:
        decode(value)
    except BadToken:
        return False
    return True


# Field-by-field forms (Telegram, console): the choice buttons of one field. The dialog engine
# maps a press back to (field name, choice index) with `parse_choice_token`.
FORM_DIALOG = "form"
PICK = "pick"  # ref = "<field>.<index>": choose choice `index` of `field` (toggles for multi)
DONE = "done"  # ref = "<field>": finish a multi-choice field
SKIP = "skip"  # ref = "<field>": leave an optional field empty


def choice_token(field_name: str, index: int) -> str:
    """The token of choice `index` (0-based, in `Field.choices` order) of field `field_name`.

    CONFIRM fields use index 0 for yes and 1 for no.
    """
    if index < 0:
        raise BadToken("choice index must not be negative")
    return encode(FORM_DIALOG, PICK, f"{field_name}.{index}")


def parse_choice_token(token: str) -> tuple[str, int]:
    """(field name, choice index) of a `choice_token`; `BadToken` for any other token."""
    parsed = decode(token)
    name, dot, index = parsed.ref.rpartition(".")
    if parsed.dialog != FORM_DIALOG or parsed.verb != PICK or not dot or not name:
        raise BadToken("not a choice token")
    if not index.isdigit() or not index.isascii():
        raise BadToken("not a choice token")
    return name, int(index)


def done_token(field_name: str) -> str:
    """The "Done" button of a multi-choice field."""
    return encode(FORM_DIALOG, DONE, field_name)


def skip_token(field_name: str) -> str:
    """The "Skip" button of an optional field."""
    return encode(FORM_DIALOG, SKIP, field_name)

"""Renderers: one neutral `cards.model.Card` in, one platform's payload out.

All renderers are pure functions (no I/O, no SDK imports) so they can be tested offline and golden
files can pin their output. Shared here:

- `truncate`: platforms reject oversize text; we shorten with "…" rather than fail a reply.
- `custom_field_id`: Adaptive Cards 1.5 and Slack selects cannot take free text, so a field with
  `allow_custom=True` gets a second, optional text input named ``<field>__custom`` (comma-separated
  values). The dialog engine merges it into the field's values on submit. People fields use the
  same companion next to a platform's people picker (Slack user selects, the Teams people
  picker), for someone the picker cannot offer (typed as an email or ``@handle``).
- `split_people`: a prefilled people value split into what a picker can show (platform ids) and
  what goes back into the typed companion.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from cards.model import Field

ELLIPSIS = "…"
CUSTOM_SUFFIX = "__custom"


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in "…" when it was cut."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    return text[: limit - 1].rstrip() + ELLIPSIS


def custom_field_id(name: str) -> str:
    """The id of the free-text companion input of a choice field with `allow_custom`."""
    return name + CUSTOM_SUFFIX


def split_people(field: Field, is_id: Callable[[str], bool]) -> tuple[list[str], str]:
    """(ids, typed) of a prefilled people field: the values a picker can preselect (`is_id`) and
    the rest, comma-joined, for the typed companion input."""
    if not field.value:
        return [], ""
    values = (field.value,) if isinstance(field.value, str) else field.value
    parts = [p.strip() for v in values for p in v.split(",") if p.strip()]
    return [p for p in parts if is_id(p)], ", ".join(p for p in parts if not is_id(p))


def is_web_url(url: str) -> bool:
    """Only http(s) links become buttons or images; javascript:, file: and the like are dropped."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def display_value(field: Field) -> str:
    """A prefilled value as the user would say it: choice titles rather than their values
    (a badge shows as "Team Player", not "101"), several joined with commas; "" when empty."""
    if not field.value:
        return ""
    values = (field.value,) if isinstance(field.value, str) else field.value
    titles = {c.value: c.title for c in field.choices}
    return ", ".join(titles.get(v, v) for v in values)

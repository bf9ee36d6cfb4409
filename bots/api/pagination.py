"""Lists answer {"items": [...], "next": CURSOR_OR_NULL}: `?limit=` (default 50, at most 200) and
`?cursor=` taken from the previous page's `next`. A cursor is opaque to clients (URL-safe base64 of
the last item's sort key)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web

from rewards.errors import InvalidInput
from rewards.inputs import InputRefused, JsonLimits, check_document_text, parse_json

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
CURSOR_JSON = JsonLimits(max_bytes=1024, max_depth=4)
"""A cursor holds one sort key: a few hundred bytes at most, nested no deeper than a pair."""

T = TypeVar("T")


def limit_of(request: web.Request) -> int:
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidInput(f"The limit must be a whole number from 1 to {MAX_LIMIT}.")
    return int(raw)


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": value}).encode()).decode().rstrip("=")


def cursor_of(request: web.Request) -> Any | None:
    """The sort key the previous page ended at, or None for the first page."""
    raw = request.query.get("cursor")
    if not raw:
        return None
    try:  # the input gate: a small, shallow JSON document of printable text
        data = parse_json(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)), CURSOR_JSON)
        check_document_text(data)
        return data["k"]  # type: ignore[index]
    except (binascii.Error, ValueError, TypeError, KeyError, InputRefused):
        raise InvalidInput("The cursor is not valid; use the `next` of a previous page.") from None


def int_cursor_of(request: web.Request) -> int | None:
    value = cursor_of(request)
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**31
    ):
        raise InvalidInput("The cursor is not valid; use the `next` of a previous page.")
    return value


def page(
    items: Sequence[T], limit: int, key: Callable[[T], Any], render: Callable[[T], Any]
) -> dict[str, Any]:
    """The page of `items` (fetched with one extra to know whether more follow)."""
    more = len(items) > limit
    shown = list(items[:limit])
    return {
        "items": [render(item) for item in shown],
        "next": encode_cursor(key(shown[-1])) if more and shown else None,
    }


def page_after(
    request: web.Request, items: Sequence[T], key: Callable[[T], Any], render: Callable[[T], Any]
) -> dict[str, Any]:
    """A page of a short list held in memory, sorted by `key` ascending."""
    limit = limit_of(request)
    after = cursor_of(request)
    try:
        rest = [item for item in items if after is None or key(item) > after]
    except TypeError:
        raise InvalidInput("The cursor is not valid; use the `next` of a previous page.") from None
    return page(rest[: limit + 1], limit, key, render)

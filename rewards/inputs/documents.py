"""JSON documents of bounded size and depth.

`json.loads` recurses once per level of nesting, so `'[' * 3000` raised RecursionError (a 500 on
every API write route and the Telegram webhook); and whatever walks the parsed value afterwards
(pydantic, the catalogue's duplicate-key check, the JSON column's serialiser) recurses too. The
depth is therefore measured on the text, before parsing, by counting brackets outside strings:
linear, no recursion, and the error names the limit.

NaN and Infinity (which `json` accepts) are refused: they are not JSON, and PostgreSQL's JSONB
refuses them later as a database error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from rewards.inputs.errors import InputRefused


@dataclass(frozen=True)
class JsonLimits:
    max_bytes: int
    max_depth: int

    @property
    def size(self) -> str:
        if self.max_bytes % (1024 * 1024) == 0:
            return f"{self.max_bytes // (1024 * 1024)} MiB"
        return f"{self.max_bytes // 1024} KiB"


API_JSON = JsonLimits(max_bytes=64 * 1024, max_depth=32)
"""REST API request bodies: the largest real one (a member import page) is far below both."""

WEBHOOK_JSON = JsonLimits(max_bytes=1024 * 1024, max_depth=64)
"""Slack, Teams and Telegram payloads: a Slack modal submit carries its whole view (blocks and
state), and Teams activities may carry card payloads, so more room than the API."""

FILE_JSON = JsonLimits(max_bytes=16 * 1024 * 1024, max_depth=32)
"""Catalogue and member files of the command line (and catalogue sources of the engine)."""


class JsonTooLarge(InputRefused):
    status = 413
    code = "body-too-large"


class JsonTooDeep(InputRefused):
    status = 422
    code = "json-too-deep"


class JsonMalformed(InputRefused):
    status = 400
    code = "malformed-json"


# A JSON string, escapes included (the unrolled loop is linear and never backtracks).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in `text` (0 for a scalar), without parsing it.

    Brackets inside strings do not count; for text that is not JSON at all the answer is only an
    estimate, and the parser then reports the real problem."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    return max(0, max(accumulate(_STEP[c] for c in brackets)))


def check_json_limits(text: str, limits: JsonLimits, what: str) -> None:
    """Raise JsonTooLarge or JsonTooDeep when `text` is beyond `limits` (for a caller that parses
    the text itself, with its own error messages)."""
    if len(text) > limits.max_bytes:
        raise JsonTooLarge(f"{what} is larger than the limit of {limits.size}.")
    if (depth := nesting_depth(text)) > limits.max_depth:
        raise JsonTooDeep(
            f"{what} nests arrays and objects {depth} levels deep; the limit is {limits.max_depth}."
        )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse_json(
    raw: bytes | str,
    limits: JsonLimits,
    *,
    what: str = "The request body",
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> object:
    """Parse `raw` as JSON within `limits`; raise JsonTooLarge (413), JsonTooDeep (422) or
    JsonMalformed (400), each with one sentence starting with `what`."""
    if len(raw) > limits.max_bytes:
        raise JsonTooLarge(f"{what} is larger than the limit of {limits.size}.")
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonMalformed(f"{what} is not UTF-8 text.") from None
    else:
        text = raw
    check_json_limits(text, limits, what)
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=object_pairs_hook)
    except json.JSONDecodeError as error:
        raise JsonMalformed(
            f"{what} is not JSON: {error.msg} at line {error.lineno}, column {error.colno}."
        ) from None
    except (ValueError, RecursionError) as error:  # NaN/Infinity; depth is checked above
        raise JsonMalformed(f"{what} is not JSON: {error}.") from None

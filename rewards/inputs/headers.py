"""Header values the application reads itself.

aiohttp decodes header bytes that are not UTF-8 into lone surrogates, which reached the database
(a non-UTF-8 `Idempotency-Key` was a 500); and Slack's request timestamp went to `int()` before
the signature was checked (a non-numeric one was a 500 before authentication). Each rule here
says what a value may be, so anything else is refused before it is used.
"""

from __future__ import annotations

import re

from rewards.inputs.errors import InputRefused

MAX_IDEMPOTENCY_KEY = 200

_TOKEN = re.compile(r"[\x21-\x7e]+")  # visible ASCII, no spaces
_KEY = re.compile(r"[\x20-\x7e]+")  # printable ASCII
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class HeaderInvalid(InputRefused):
    status = 400
    code = "header-invalid"


def is_token(value: str) -> bool:
    """A credential or signature: visible ASCII characters, at least one."""
    return _TOKEN.fullmatch(value) is not None


def idempotency_key(value: str) -> str:
    """The key unchanged: 1 to 200 printable ASCII characters (a UUID, say); HeaderInvalid else."""
    if _KEY.fullmatch(value) is None or len(value) > MAX_IDEMPOTENCY_KEY:
        raise HeaderInvalid(
            f"An Idempotency-Key has 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters."
        )
    return value


def slack_timestamp(value: str | None) -> int | None:
    """Slack's `X-Slack-Request-Timestamp` as seconds, or None when it is not a plain number."""
    if value is None or _TIMESTAMP.fullmatch(value) is None:
        return None
    return int(value)

"""Who and what a log line is about: the request, the chat turn, the platform, the member.

The server's middleware binds a request id for each HTTP request (`bots.observability`), the
dialog engine binds a turn id, the platform and the member id for each turn; the JSON log format
adds whichever are bound to every line (`rewards.observability.logs`). Context variables follow
the task that handles the request and the tasks it starts, so lines written deep in a service
carry them without being passed anything.

Values are reset when the request or turn ends, so a long-lived task (Telegram's polling loop)
never lends one turn's member to the next line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("rewards_request_id", default=None)
TURN_ID: ContextVar[str | None] = ContextVar("rewards_turn_id", default=None)
PLATFORM: ContextVar[str | None] = ContextVar("rewards_platform", default=None)
MEMBER_ID: ContextVar[int | None] = ContextVar("rewards_member_id", default=None)

_FIELDS: tuple[tuple[str, ContextVar[str | None] | ContextVar[int | None]], ...] = (
    ("request_id", REQUEST_ID),
    ("turn_id", TURN_ID),
    ("platform", PLATFORM),
    ("member_id", MEMBER_ID),
)


def new_id() -> str:
    """A short random id for a request or a turn (16 hex digits, 64 random bits)."""
    return os.urandom(8).hex()


@contextmanager
def bound_request(request_id: str) -> Iterator[None]:
    """Lines logged inside the block name `request_id`."""
    token = REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        REQUEST_ID.reset(token)


@contextmanager
def bound_turn(platform: str, member_id: int) -> Iterator[str]:
    """Lines logged inside the block name a new turn id, the platform and the member id."""
    turn_id = new_id()
    turn_token = TURN_ID.set(turn_id)
    platform_token = PLATFORM.set(platform)
    member_token = MEMBER_ID.set(member_id)
    try:
        yield turn_id
    finally:
        MEMBER_ID.reset(member_token)
        PLATFORM.reset(platform_token)
        TURN_ID.reset(turn_token)


def current() -> dict[str, str | int]:
    """The bound values, by field name (unbound ones left out)."""
    found: dict[str, str | int] = {}
    for name, variable in _FIELDS:
        value = variable.get()
        if value is not None:
            found[name] = value
    return found

"""The shape of a Telegram update, checked at the webhook before python-telegram-bot reads it.

PTB's `Update.de_json` builds whatever it is given: a message whose `chat` is null or a list
became a `Message` without a chat, and the turn failed half-way with a traceback. Telegram itself
only sends well-formed updates, so one that is not came from someone who knows the webhook secret;
it is refused (400) with a line in the log, before anything is written.

Only the parts the bot reads are described; unknown fields are allowed (Telegram adds fields).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _User(_Part):
    id: int
    is_bot: bool = False
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None


class _Chat(_Part):
    id: int
    type: str
    title: str | None = None


class _Entity(_Part):
    type: str
    offset: int
    length: int
    user: _User | None = None


class _Message(_Part):
    message_id: int
    date: int
    chat: _Chat
    from_: _User | None = Field(default=None, alias="from")
    text: str | None = None
    entities: list[_Entity] | None = None


class _Callback(_Part):
    id: str
    from_: _User = Field(alias="from")
    data: str | None = None
    message: _Message | None = None


class _MemberUpdate(_Part):
    chat: _Chat
    date: int
    from_: _User = Field(alias="from")
    old_chat_member: dict[str, object]
    new_chat_member: dict[str, object]


class _Update(_Part):
    update_id: int
    message: _Message | None = None
    callback_query: _Callback | None = None
    my_chat_member: _MemberUpdate | None = None


def update_problem(data: dict[str, object]) -> str | None:
    """What makes `data` not a Telegram update the bot can read, or None."""
    try:
        _Update.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}"
    return None

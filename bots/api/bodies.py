"""Request bodies: JSON of at most 64 KiB, validated by a strict pydantic model; and ids in
bodies and paths, which the database keeps in 32 bits."""

from __future__ import annotations

import json
from typing import Annotated, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from rewards.errors import InvalidInput, NotFound

MAX_BODY = 64 * 1024

M = TypeVar("M", bound=BaseModel)

MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=-MAX_ID - 1, le=MAX_ID)]
"""A database id in a body: a 32-bit integer (a larger one names nothing and is refused)."""


class Body(BaseModel):
    """Base of request bodies: unknown fields and loose types are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class BodyTooLarge(InvalidInput):
    status = 413
    code = "body-too-large"


class MalformedJson(InvalidInput):
    status = 400
    code = "malformed-json"


async def read_body(request: web.Request, model: type[M]) -> M:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise BodyTooLarge(f"The request body is larger than {MAX_BODY // 1024} KiB.")
    raw = bytearray()
    async for chunk in request.content.iter_chunked(8192):
        raw += chunk
        if len(raw) > MAX_BODY:
            raise BodyTooLarge(f"The request body is larger than {MAX_BODY // 1024} KiB.")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedJson("The request body is not valid JSON.") from None
    return model.model_validate(data)


def path_id(request: web.Request, name: str) -> int:
    """The id in the path (digits, by the route's pattern); 404 when no row can have it."""
    value = int(request.match_info[name])
    if value > MAX_ID:
        raise NotFound("There is nothing at this address.")
    return value

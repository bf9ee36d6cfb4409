"""Request bodies: JSON of at most 64 KiB, validated by a strict pydantic model."""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from rewards.errors import InvalidInput

MAX_BODY = 64 * 1024

M = TypeVar("M", bound=BaseModel)


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

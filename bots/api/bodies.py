"""Request bodies: JSON within the gate's API limits (`rewards.inputs.API_JSON`: 64 KiB, 32 levels
deep), no control characters in any string, validated by a strict pydantic model; and ids in
bodies and paths, which the database keeps in 32 bits.

The parsed body is kept on the request (`BODY`), so the Idempotency-Key check can fingerprint
what was asked without reading the body twice."""

from __future__ import annotations

from typing import Annotated, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from bots.gate import read_json
from rewards.errors import NotFound
from rewards.inputs import API_JSON, check_document_text

M = TypeVar("M", bound=BaseModel)

BODY = web.RequestKey("body", object)
"""The parsed JSON body of a write, once `read_body` has read it."""

MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=-MAX_ID - 1, le=MAX_ID)]
"""A database id in a body: a 32-bit integer (a larger one names nothing and is refused)."""


class Body(BaseModel):
    """Base of request bodies: unknown fields and loose types are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


async def read_body(request: web.Request, model: type[M]) -> M:
    """The body as `model`: 413 too large, 400 not JSON, 422 too deep, with a control character
    (naming the field) or not valid for the model."""
    data = await read_json(request, API_JSON)
    check_document_text(data)
    request[BODY] = data
    return model.model_validate(data)


def path_id(request: web.Request, name: str) -> int:
    """The id in the path (digits, by the route's pattern); 404 when no row can have it."""
    value = int(request.match_info[name])
    if value > MAX_ID:
        raise NotFound("There is nothing at this address.")
    return value

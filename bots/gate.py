"""The input gate (`rewards.inputs`) applied to aiohttp requests: every entry point that reads a
body or a header itself goes through here (the REST API, the Slack, Teams and Telegram webhooks),
so the limits live in one place.

`read_json` reads at most `limits.max_bytes` (never more, whatever Content-Length says), then
parses within the depth limit; errors are `rewards.inputs.InputRefused` with an HTTP status, which
the API turns into problem+json and a webhook into its own short answer (`refusal`).
"""

from __future__ import annotations

import logging

from aiohttp import web

from rewards.inputs import JsonLimits, JsonTooLarge, parse_json
from rewards.inputs.errors import InputRefused

log = logging.getLogger("bots.gate")

CHUNK = 8192


async def read_limited(request: web.Request, limits: JsonLimits, what: str) -> bytes:
    """The raw body, refused (JsonTooLarge, 413) as soon as it is longer than allowed."""
    too_large = JsonTooLarge(f"{what} is larger than the limit of {limits.size}.")
    if request.content_length is not None and request.content_length > limits.max_bytes:
        raise too_large
    raw = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK):
        raw += chunk
        if len(raw) > limits.max_bytes:
            raise too_large
    return bytes(raw)


async def read_json(
    request: web.Request, limits: JsonLimits, what: str = "The request body"
) -> object:
    """The body as JSON within `limits` (size, depth, no NaN); InputRefused otherwise."""
    return parse_json(await read_limited(request, limits, what), limits, what=what)


def refusal(request: web.Request, error: InputRefused, platform: str) -> web.Response:
    """A webhook's answer to a refused body: its status and sentence as plain text, logged once
    (the sender is a platform, not a person, so nobody else would see it)."""
    log.warning("%s: refused a request to %s: %s", platform, request.path, error)
    return web.Response(status=error.status, text=str(error))

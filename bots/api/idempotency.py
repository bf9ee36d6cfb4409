"""`Idempotency-Key` on writes: the first response is stored (per API key) and a retry with the
same key gets it again, marked `Idempotent-Replayed: true`, without doing anything twice.

The key must be 1 to 200 printable ASCII characters (`rewards.inputs.idempotency_key`: 400
otherwise), and is stored with a fingerprint of the request (method, route and the body `read_body`
parsed), so the same key with another body is a 422 rather than a silent replay."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bots.api.auth import api_key
from bots.api.bodies import BODY
from bots.api.problems import PROBLEM_TYPE, from_error
from bots.server import CORE
from rewards.errors import RewardsError
from rewards.inputs import idempotency_key
from rewards.services.apikeys import complete, release, request_fingerprint, reserve

HEADER = "Idempotency-Key"

Work = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]


def _response(status: int, body: dict[str, Any] | None, **headers: str) -> web.Response:
    content_type = PROBLEM_TYPE if status >= 400 else "application/json"
    return web.json_response(body, status=status, content_type=content_type, headers=headers)


async def idempotent(request: web.Request, work: Work) -> web.Response:
    """Run `work` (which returns status and JSON body) at most once per Idempotency-Key."""
    given = request.headers.get(HEADER)
    if given is None:
        return _response(*await work())
    key = idempotency_key(given)
    db, owner = request.app[CORE].db, api_key(request).id
    route = f"{request.method} {request.path}"
    fingerprint = request_fingerprint(request.method, request.path, request.get(BODY))
    stored = await reserve(db, owner, key, route, request.app[CORE].clock, fingerprint=fingerprint)
    if stored is not None:
        return _response(stored.status, stored.body, **{"Idempotent-Replayed": "true"})
    try:
        status, body = await work()
    except RewardsError as error:
        status, body = error.status, from_error(error)
    except BaseException:
        await release(db, owner, key)
        raise
    await complete(db, owner, key, status, body)
    return _response(status, body)

"""Per-key rate limit of the REST API (`API_RATE_LIMIT` requests per key and minute).

Runs after `bots.api.auth` has put the key on the request, so only authenticated requests count
and each key has its own bucket (`rewards.limits`, kept per process). Past the limit the answer is
a 429 problem with `Retry-After` (whole seconds), before the route reads its body or writes
anything; a client that waits that long gets through.
"""

from __future__ import annotations

from aiohttp import web

from bots.api.auth import presented_key
from bots.api.problems import Handler, problem
from bots.server import CORE
from rewards.limits import retry_after


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = presented_key(request)
    if key is None:  # not an API route, a public one, or refused by auth already
        return await handler(request)
    wait = request.app[CORE].limits.api.take(key.id)
    if wait:
        seconds = retry_after(wait)
        return problem(
            429,
            f"This API key sent more than {request.app[CORE].limits.api.per_minute} requests "
            f"in a minute; try again in {seconds} seconds.",
            {"Retry-After": str(seconds)},
        )
    return await handler(request)

"""The audit trail of API writes: one `api_audit` row per write request made with a valid key.

The middleware runs outside the problem and auth middlewares, so it sees the final status of
every answer, refusals included: a 403 for a scope too low or an admin-only change, a 422 for a
bad body. Those attempts are what an audit is for. Requests without a valid key (401) are not
recorded: there is no key to record them against, and anyone can send them.

The row is written after the handler, in its own transaction: a write that failed half-way still
gets its row, and a failure to write the row is logged rather than turning a done write into an
error the client would retry.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bots.api.auth import presented_key
from bots.api.problems import Handler, is_api
from bots.server import CORE
from rewards.services.apikeys import record_write

log = logging.getLogger("rewards.api.audit")

READS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def audit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in READS or not is_api(request.path):
        return await handler(request)
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        key = presented_key(request)
        if key is not None and status != 429:
            core = request.app[CORE]
            try:
                await record_write(
                    core.db, key.id, request.method, request.path, status, core.clock
                )
            except Exception:
                log.exception(
                    "could not record the API write %s %s by key %s",
                    request.method,
                    request.path,
                    key.id,
                )

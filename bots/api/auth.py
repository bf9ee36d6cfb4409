"""API keys on every API route: `Authorization: Bearer KEY`.

401 (with `WWW-Authenticate`) without a key, or with an unknown or revoked one; 403 when the key's
scope is below what the route needs: `read` for GET, `write` for other methods, unless the route
declares more with `@needs("admin")`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from bots.api.problems import Handler, is_api, problem
from bots.server import CORE
from rewards.services.apikeys import ApiKeyView, authenticate, scope_allows

API_KEY = web.RequestKey("api_key", ApiKeyView)
REALM = 'Bearer realm="nav-rewards"'

F = TypeVar("F", bound=Callable[..., Any])


def needs(scope: str) -> Callable[[F], F]:
    """Declare the scope a route needs beyond its method's default."""

    def mark(handler: F) -> F:
        handler.api_scope = scope  # type: ignore[attr-defined]
        return handler

    return mark


def api_key(request: web.Request) -> ApiKeyView:
    return request[API_KEY]


def scope_of(handler: Any, method: str) -> str:
    """The scope a route needs: its `@needs`, else `read` for GET and `write` for writes."""
    declared = getattr(handler, "api_scope", None)
    if declared:
        return str(declared)
    return "read" if method in ("GET", "HEAD", "OPTIONS") else "write"


def _needed(request: web.Request) -> str:
    return scope_of(request.match_info.handler, request.method)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_api(request.path) or getattr(request.match_info.handler, "api_public", False):
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return problem(
            401,
            "This API needs a key: send `Authorization: Bearer KEY` "
            "(create one with `rewards apikey create`).",
            {"WWW-Authenticate": REALM},
        )
    key = await authenticate(request.app[CORE].db, token.strip(), request.app[CORE].clock)
    if key is None:
        return problem(
            401,
            "This API key is unknown or has been revoked.",
            {"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
        )
    needed = _needed(request)
    if not scope_allows(key.scope, needed):
        return problem(
            403, f"This API key has the {key.scope} scope; this request needs {needed} or more."
        )
    request[API_KEY] = key
    return await handler(request)

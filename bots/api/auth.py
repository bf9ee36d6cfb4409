"""API keys on every API route: `Authorization: Bearer KEY`.

401 (with `WWW-Authenticate`) without a key, or with an unknown or revoked one; 403 when the key's
scope is below what the route needs: `read` for GET, `write` for other methods, unless the route
declares more with `@needs("admin")`. A route whose body can ask for more than its scope (a member
upsert that changes groups) says so with `@needs("write", admin_when=...)` and checks it itself
(`bots.api.principals`); the OpenAPI description shows that sentence.

The key is put on the request before the scope check, so the audit trail (`bots.api.audit`) also
records the writes it was refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from bots.api.problems import Handler, is_api, problem
from bots.server import CORE
from rewards.inputs import is_token
from rewards.services.apikeys import ApiKeyView, authenticate, scope_allows

API_KEY = web.RequestKey("api_key", ApiKeyView)
REALM = 'Bearer realm="nav-rewards"'

F = TypeVar("F", bound=Callable[..., Any])


def needs(scope: str, *, admin_when: str | None = None) -> Callable[[F], F]:
    """Declare the scope a route needs beyond its method's default; `admin_when` completes the
    sentence "It needs the admin scope when ..." for a route that checks its body for that."""

    def mark(handler: F) -> F:
        handler.api_scope = scope  # type: ignore[attr-defined]
        handler.api_admin_when = admin_when  # type: ignore[attr-defined]
        return handler

    return mark


def admin_when_of(handler: Any) -> str | None:
    """When a route that needs less asks for the admin scope after all (see `needs`)."""
    found = getattr(handler, "api_admin_when", None)
    return str(found) if found else None


def api_key(request: web.Request) -> ApiKeyView:
    return request[API_KEY]


def presented_key(request: web.Request) -> ApiKeyView | None:
    """The authenticated key of this request, if it had one (also when its scope was too low)."""
    return request.get(API_KEY)


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
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return problem(
            401,
            "This API needs a key: send `Authorization: Bearer KEY` "
            "(create one with `rewards apikey create`).",
            {"WWW-Authenticate": REALM},
        )
    # Header bytes that are not UTF-8 arrive as lone surrogates, which no key has (`is_token`).
    key = (
        await authenticate(request.app[CORE].db, token, request.app[CORE].clock)
        if is_token(token)
        else None
    )
    if key is None:
        return problem(
            401,
            "This API key is unknown or has been revoked.",
            {"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
        )
    request[API_KEY] = key
    needed = _needed(request)
    if not scope_allows(key.scope, needed):
        return problem(
            403, f"This API key has the {key.scope} scope; this request needs {needed} or more."
        )
    return await handler(request)

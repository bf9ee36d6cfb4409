"""Errors of the REST API as `application/problem+json` (RFC 9457): {type, title, status, detail}.

A `RewardsError` keeps its sentence and its class's status; a body that does not validate is a
422 listing the fields; any other failure is a 500 with a generic sentence (the exception is
logged, never sent). Every 4xx and 5xx under the API prefixes takes this shape, including the
router's own 404 and 405.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from rewards.errors import RewardsError

log = logging.getLogger("rewards.api")

PROBLEM_TYPE = "application/problem+json"
API_PREFIXES = ("/rewards/api/v1/", "/kudos/api/v1/", "/api/v1/")
GENERIC_500 = "Something went wrong on our side; the error was logged. Please try again later."

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_api(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def problem_body(status: int, detail: str, code: str | None = None, **extra: Any) -> dict[str, Any]:
    title = HTTPStatus(status).phrase
    kind = code or title.lower().replace(" ", "-").replace("'", "")
    return {"type": f"urn:nav-rewards:problem:{kind}", "title": title, "status": status,
            "detail": detail, **extra}  # fmt: skip


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        body, status=int(body["status"]), content_type=PROBLEM_TYPE, headers=headers
    )


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    return problem_response(problem_body(status, detail), headers)


def from_error(error: RewardsError) -> dict[str, Any]:
    return problem_body(error.status, str(error), error.code)


def from_validation(error: ValidationError) -> dict[str, Any]:
    fields = [
        {"field": ".".join(str(part) for part in e["loc"]) or "(body)", "message": e["msg"]}
        for e in error.errors(include_url=False, include_input=False, include_context=False)
    ]
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return problem_body(
        422, f"The request body is not valid: {detail}.", "validation", errors=fields
    )


@web.middleware
async def problems_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_api(request.path):
        return await handler(request)
    try:
        return await handler(request)
    except RewardsError as error:
        return problem_response(from_error(error))
    except ValidationError as error:
        return problem_response(from_validation(error))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {k: v for k, v in error.headers.items() if k in ("Allow", "WWW-Authenticate")}
        return problem(error.status, _DETAILS.get(error.status, error.reason), headers)
    except Exception:
        log.exception("API request %s %s failed", request.method, request.path)
        return problem(500, GENERIC_500)


_DETAILS = {
    404: "There is nothing at this address.",
    405: "This address does not accept that method.",
}

"""What can go wrong when the bot calls Slack, and how to name it in a log line.

The Web API normally answers `{"ok": false, "error": "not_in_channel"}`, but a proxy, a load
balancer or an outage answers with an HTML or plain-text page, a truncated body, or nothing at all.
slack_sdk then raises `SlackApiError` whose `response` is not Slack's JSON (its data is a string,
or the response is aiohttp's own object), so `problem.response.get("error")` itself raises and the
failure handler dies before its fallback. `reason` reads the error code only where there is one;
`WEB_API_FAILURES` is every exception a Web API or `response_url` call raises for a failed call
(Slack's answer, the connection, the timeout), so one `except` covers them all.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError

WEB_API_FAILURES: tuple[type[Exception], ...] = (
    SlackClientError,  # SlackApiError and the client's own request errors
    aiohttp.ClientError,  # refused or dropped connections, broken responses
    TimeoutError,
)


def error_code(problem: BaseException) -> str | None:
    """Slack's `error` code (`not_in_channel`, `user_not_found`...), or None when the answer
    carried none (not JSON, or not Slack's)."""
    if not isinstance(problem, SlackApiError):
        return None
    data: Any = getattr(problem.response, "data", None)
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return None


def reason(problem: BaseException) -> str:
    """A short, log-safe description of a failed call: the error code, else the HTTP status and
    the kind of failure (never the whole body, which may be a large HTML page)."""
    code = error_code(problem)
    if code is not None:
        return code
    response: Any = getattr(problem, "response", None)
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    if status is not None:
        return f"HTTP {status} without a Slack error code"
    return type(problem).__name__

"""How the Slack Web API client retries: rate limits (429 with `Retry-After`) and dropped
connections, with slack_sdk's own retry handlers.

Slack rate-limits each method per workspace and answers 429 with the seconds to wait; without a
handler the SDK raises at once and the reply is lost (an announcement is only retried much later
by the notifier's back-off). A wait longer than `MAX_RATE_LIMIT_WAIT` is not sat out: the call
fails as before, so a turn or a delivery never hangs for minutes on one request (the notifier
retries a refused delivery with its own back-off).
"""

from __future__ import annotations

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

MAX_RATE_LIMIT_WAIT = 30  # seconds
RATE_LIMIT_RETRIES = 2
CONNECTION_RETRIES = 2


def retry_after(response: HttpResponse) -> int | None:
    """The response's `Retry-After` in seconds, None when absent or not a number."""
    for name, values in response.headers.items():
        if name.lower() == "retry-after":
            value = values[0] if isinstance(values, list) and values else values
            try:
                return int(str(value).strip())
            except ValueError:
                return None
    return None


class BoundedRateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (sleeps `Retry-After`, then retries), for waits up to a bound."""

    def __init__(
        self, max_retry_count: int = RATE_LIMIT_RETRIES, max_wait: int = MAX_RATE_LIMIT_WAIT
    ):
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after(response)
        return wait is None or 0 <= wait <= self.max_wait


def retry_handlers() -> list[AsyncRetryHandler]:
    """The handlers of the bot's `AsyncWebClient` (also used by bolt and the gateway)."""
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
        BoundedRateLimitRetry(),
    ]

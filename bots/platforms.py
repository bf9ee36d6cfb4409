"""Each chat platform starts on its own: one that cannot start does not stop the server.

A platform whose start talks to the outside world (Telegram's `getMe`, `setWebhook`) registers
it with `supervise`: the start runs in a task of its own; the server's start waits for its first
attempt at most `FIRST_ATTEMPT_WAIT` seconds (so on a normal day the platform is ready when the
server listens), and when it fails (a revoked token, the Bot API down) the task logs one line,
reports the reason and tries again with doubling back-off (`FIRST_RETRY` up to `MAX_RETRY`
seconds), while Teams, Slack, the REST API and the scheduler serve. A platform whose start is
local (Teams, Slack) is reported `ok` when mounted.

`/healthz` shows the state of each mounted platform (`platform_status(app).as_dict()`):
`starting`, `ok`, or `failed: <reason>` (the reason never carries a secret: `supervise` takes the
function that words it). Its overall status stays `ok` while the database is up: a load balancer
restarting the process would not bring Telegram back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from bots.lifecycle import lifecycle

log = logging.getLogger("bots.platforms")

STARTING = "starting"
OK = "ok"
FIRST_ATTEMPT_WAIT = 10.0  # seconds the server's start waits for a platform's first attempt
FIRST_RETRY = 5.0  # seconds before the second attempt; doubled after each failure
MAX_RETRY = 300.0


class PlatformStatus:
    """The state of each mounted platform, by name; created before the app starts."""

    def __init__(self) -> None:
        self._states: dict[str, str] = {}

    def set(self, name: str, state: str) -> None:
        self._states[name] = state

    def get(self, name: str) -> str | None:
        return self._states.get(name)

    def as_dict(self) -> dict[str, str]:
        return dict(sorted(self._states.items()))


STATUS = web.AppKey("platform_status", PlatformStatus)


def platform_status(app: web.Application) -> PlatformStatus:
    """The app's platform states, created on first use (at mount time, before the start)."""
    found = app.get(STATUS)
    if found is None:
        found = PlatformStatus()
        app[STATUS] = found
    return found


def supervise(
    app: web.Application,
    name: str,
    start: Callable[[], Awaitable[None]],
    stop: Callable[[], Awaitable[None]],
    *,
    reason: Callable[[BaseException], str],
    first_retry: Callable[[], float] = lambda: FIRST_RETRY,
) -> None:
    """Start platform `name` in the background once the runtime is up, retrying until it works.

    `start` must leave nothing half-started when it raises (the next attempt starts afresh);
    `stop` is awaited at shutdown, whether or not a start succeeded, and must cope with either.
    `reason` words a failure for the log and `/healthz`; `first_retry` is read at each start
    (tests shorten it).
    """
    status = platform_status(app)
    status.set(name, STARTING)

    async def keep_starting(attempted: asyncio.Event) -> None:
        delay = first_retry()
        while True:
            try:
                await start()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                why = reason(error)
                status.set(name, f"failed: {why}")
                log.warning("%s could not start (%s); retrying in %.0fs", name, why, delay)
                attempted.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY)
                status.set(name, STARTING)
                continue
            status.set(name, OK)
            attempted.set()
            return

    async def step(app: web.Application) -> AsyncIterator[None]:
        attempted = asyncio.Event()
        task = asyncio.create_task(keep_starting(attempted), name=f"{name}-start")
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(attempted.wait(), FIRST_ATTEMPT_WAIT)
            if status.get(name) != OK:
                log.warning("%s is not started yet; the server starts without it", name)
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await stop()

    lifecycle(app).append(step)

"""The rewards runtime's start and stop steps, kept apart from the application's own hooks.

`rewards serve` owns its aiohttp application, but an application embedding the engine
(`rewards.engine.RewardsEngine`) owns its hooks and calls ours from its own `on_startup` and
`on_shutdown`. aiohttp runs every `cleanup_ctx` entry before any `on_startup` handler, so a
platform that put its start-up in the host's `cleanup_ctx` would run before the engine had opened
the database. Every part of the runtime (database and catalogue, scheduler, platform gateways,
notifier, event manager) therefore registers here instead, in the same async-generator form as a
cleanup context, and the runtime starts them in order and stops them in reverse, whichever way
it is mounted.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

log = logging.getLogger(__name__)

Step = Callable[[web.Application], AsyncIterator[None]]


class Lifecycle:
    """Ordered steps; `start` runs each up to its `yield`, `stop` resumes them in reverse."""

    def __init__(self) -> None:
        self._steps: list[Step] = []
        self._running: list[AsyncIterator[None]] = []

    def append(self, step: Step) -> None:
        if self._running:
            raise RuntimeError("the rewards runtime is already running; add steps before start")
        self._steps.append(step)

    @property
    def running(self) -> bool:
        return bool(self._running)

    async def start(self, app: web.Application) -> None:
        """Start every step; if one fails, the ones already started are stopped and the error
        propagates (the server must not serve half-started)."""
        if self._running:
            return
        for step in self._steps:
            iterator = step(app).__aiter__()
            try:
                await anext(iterator)
            except BaseException:
                await self.stop(app)
                raise
            self._running.append(iterator)

    async def stop(self, app: web.Application) -> None:
        """Resume each started step after its `yield`, last first; a failing stop is logged and
        the others still stop."""
        while self._running:
            iterator = self._running.pop()
            try:
                await anext(iterator)
            except StopAsyncIteration:
                continue
            except Exception:
                log.exception("a rewards runtime step failed while stopping")
            else:
                log.error("a rewards runtime step yielded twice; it was left unfinished")

    async def context(self, app: web.Application) -> AsyncIterator[None]:
        """The whole lifecycle as one aiohttp cleanup context (for an app we own)."""
        await self.start(app)
        yield
        await self.stop(app)


LIFECYCLE = web.AppKey("rewards_lifecycle", Lifecycle)


def lifecycle(app: web.Application) -> Lifecycle:
    """The app's runtime lifecycle, created on first use (before the app starts)."""
    found = app.get(LIFECYCLE)
    if found is None:
        found = Lifecycle()
        app[LIFECYCLE] = found
    return found

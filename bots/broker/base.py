"""State and helpers shared by the event manager's parts (`bots.broker.manager`).

`EventManager` is assembled from `OutboxRelay` (`bots.broker.relay`) and `InboundConsumer`
(`bots.broker.consumer`) over this base, which holds what both use: the core, the settings, the
stop signal, the counters shown by `status()`, and a stop-aware sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

from aio_pika.abc import AbstractQueue

from rewards.core import Core
from rewards.services import inbound
from rewards.services.inbound import HandleResult, InboundMessage
from rewards.settings import Settings

Handler = Callable[[Core, InboundMessage], Awaitable[HandleResult]]

RELAY_POLL_SECONDS = 1.0
RELAY_GATHER_SECONDS = 0.1
RELAY_BATCH = 100
RELAY_LEASE = timedelta(seconds=60)
RELAY_BACKOFF_MAX = 30.0
PUBLISH_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
RECONNECT_MIN = 0.5
RECONNECT_MAX = 5.0
STATS_SECONDS = 5.0
BINDINGS_SECONDS = 60.0
PRUNE_SECONDS = 3600.0
KEEP_PUBLISHED = timedelta(days=7)
STOP_GRACE = 0.7  # in-flight handlers get this long to finish on stop()
SETTLE_PAUSE_MAX = 5.0


class BrokerBase:
    """What the relay and the consumer share; see `EventManager` for the whole."""

    def __init__(self, core: Core, settings: Settings, *, handler: Handler | None = None) -> None:
        self.core = core
        self.config = settings.event_manager
        self.handler: Handler = handler or inbound.handle
        self._stop = asyncio.Event()
        self._nudge = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._queue: AbstractQueue | None = None
        self._bound: set[str] = set()
        self._state = "stopped"
        self._connected_since: float | None = None
        # Counters since start (this process); the outbox figures come from the database.
        self.published = 0
        self.consumed = 0
        self.retried = 0
        self.dead_lettered = 0
        self._pending: int | None = None
        self._oldest_pending: str | None = None
        self._last_error: str | None = None
        self._last_error_at: float | None = None

    def _note_error(self, text: str) -> str:
        """Remember (and return) an error line, with the password taken out should it appear."""
        password = self.config.password
        if password and len(password) >= 4:
            text = text.replace(password, "***")
        self._last_error = text[:500]
        self._last_error_at = time.monotonic()
        return self._last_error

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run work that must finish even if the task asking for it is cancelled."""
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _sleep(self, seconds: float, event: asyncio.Event | None = None) -> None:
        """Sleep, cut short by stop() (and by `event`, when given)."""
        waits = [asyncio.ensure_future(self._stop.wait())]
        if event is not None:
            waits.append(asyncio.ensure_future(event.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

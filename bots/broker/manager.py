"""The RabbitMQ event manager: the outbox relay and the inbound consumer on one connection.

Its parts: `bots.broker.topology` (names, headers, declarations), `bots.broker.relay` (publishing
the outbox), `bots.broker.consumer` (inbound deliveries, retries, dead letters) and
`bots.broker.base` (their shared state); this module connects, supervises and reports.

Topology (everything durable, declared on every (re)connect, so a fresh broker needs no setup):

- the topic exchange `RABBITMQ_EXCHANGE` (``nav-rewards``) carries both directions. The engine
  publishes its own events as ``rewards.<type>`` (``rewards.kudos.given``...), so that a queue
  bound to inbound keys never receives them back;
- the inbound queue `RABBITMQ_QUEUE` (``nav-rewards.inbound``) is bound to `RABBITMQ_BINDINGS`
  (``user.login``, ``attendance.recorded``) and to every custom event name an enabled Automated
  Badge of the catalogue listens to (refreshed every minute, so a catalogue loaded later is bound
  without a restart);
- retry queues ``<queue>.retry.<N>s``, one per back-off step (N = RABBITMQ_RETRY_SECONDS * 2**k
  for k < RABBITMQ_MAX_RETRIES). Each has a queue TTL of N seconds and dead-letters back into the
  inbound queue. One queue per delay rather than one queue with per-message TTLs, because RabbitMQ
  only expires messages at the head of a queue: a message waiting 32 s would hold back one due
  in 2 s behind it. The delay is in the name so that changing the settings declares new queues
  instead of failing on the old queues' arguments;
- the dead-letter queue ``<queue>.dead`` holds what will never be handled, with the reason.

Consuming: manual acks, `RABBITMQ_PREFETCH` messages in flight, each handled in its own task (a
slow or failing message never blocks the next). `rewards.services.inbound` parses and applies the
event. A permanent failure (malformed, unknown member) is published to the dead-letter queue; a
transient one (anything else: the database is down) to the retry queue of its attempt, or to the
dead-letter queue once `RABBITMQ_MAX_RETRIES` retries failed. Headers carry the attempt
(``x-rewards-attempt``), the original routing key (``x-rewards-routing-key``: a message coming back
from a retry queue arrives with the queue's name as its key) and, on dead letters, the failure
kind and reason (``x-rewards-failure``, ``x-rewards-reason``). The original delivery is acked only
after the broker confirmed that publish; if it cannot be confirmed, the delivery is returned to
the queue (after a pause), so nothing is ever lost between the two.

Publishing (the relay): pending outbox rows are claimed with a lease, published persistent with
publisher confirms (message id = event id, AMQP type = event type, timestamp = when it happened)
and stamped published once confirmed; a failed publish gives the rows back and backs off. The
relay polls every second; a commit that staged events in this process wakes it (`nudge()`,
through `Database.outbox_listeners`), and it then waits `RELAY_GATHER_SECONDS` so that a burst
goes out in a few batches (bench/event_manager.py: events out within ~0.1 s of the commit, for
about a fifth of the kudos rate on SQLite instead of half without the pause). Published rows
older than a week are pruned hourly.

Connection: our own loop rather than `connect_robust`, so that the server starts and serves with
the broker down, every reconnect re-declares the topology and rebinds, and `stop()` is prompt.
Reconnects back off from half a second to five. The password never reaches a log line or
`status()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)

from bots.broker.base import (
    BINDINGS_SECONDS,
    CONNECT_TIMEOUT,
    KEEP_PUBLISHED,
    PRUNE_SECONDS,
    RECONNECT_MAX,
    RECONNECT_MIN,
    STATS_SECONDS,
    STOP_GRACE,
)
from bots.broker.consumer import InboundConsumer
from bots.broker.relay import OutboxRelay
from bots.broker.topology import declare
from rewards.services import inbound, outbox

log = logging.getLogger("rewards.broker")


class _QuietTransportErrors(logging.Filter):
    """aiormq logs an ERROR for every refused connection attempt; while the broker is down that
    is one line every few seconds saying what `EventManager` already reported once (with the
    retry policy). Other aiormq records pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("error when creating transport")


_QUIET = _QuietTransportErrors()


class EventManager(OutboxRelay, InboundConsumer):
    """Relay and consumer; `start()` returns at once (the broker may be down), `stop()` is prompt.

    `handler` replaces `rewards.services.inbound.handle` (tests inject failures with it).
    """

    # --- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background; never fails for an unreachable broker."""
        if self._supervisor is not None:
            return
        self._stop.clear()
        self._state = "connecting"
        transport_log = logging.getLogger("aiormq.connection")
        if _QUIET not in transport_log.filters:
            transport_log.addFilter(_QUIET)
        self.core.db.outbox_listeners.append(self.nudge)
        log.info("event manager starting: %s", self.config.status())
        self._supervisor = asyncio.create_task(self._supervise(), name="rewards-broker")
        self._monitor = asyncio.create_task(self._watch(), name="rewards-broker-monitor")

    async def stop(self) -> None:
        """Stop consuming and publishing and close the connection, within about two seconds.

        In-flight handlers get `STOP_GRACE` to finish; a message cut short is not acked, so the
        broker delivers it again (and the event id makes a repeat harmless).
        """
        if self._supervisor is None:
            return
        began = time.monotonic()
        with contextlib.suppress(ValueError):
            self.core.db.outbox_listeners.remove(self.nudge)
        self._stop.set()
        self._nudge.set()
        tasks = [t for t in (self._supervisor, self._monitor) if t is not None]
        _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE + 0.8)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        leftovers = list(self._handlers | self._background)
        if leftovers:
            _, late = await asyncio.wait(leftovers, timeout=0.3)
            for task in late:
                task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)
        self._supervisor = self._monitor = None
        self._state = "stopped"
        self._connected_since = None
        log.info(
            "event manager stopped in %.2fs (published %d, consumed %d, retried %d, "
            "dead-lettered %d)",
            time.monotonic() - began,
            self.published,
            self.consumed,
            self.retried,
            self.dead_lettered,
        )

    @property
    def connected(self) -> bool:
        return self._state == "connected"

    def status(self) -> dict[str, Any]:
        """For `/healthz` and logs: connection state, outbox backlog, counters, the last error."""
        return {
            "state": self._state,
            "connected": self.connected,
            "broker": self.config.redacted_url(),
            "exchange": self.config.exchange,
            "queue": self.config.queue,
            "connected_seconds": (
                round(time.monotonic() - self._connected_since, 1)
                if self._connected_since is not None
                else None
            ),
            "pending": self._pending,
            "oldest_pending": self._oldest_pending,
            "published": self.published,
            "consumed": self.consumed,
            "retried": self.retried,
            "dead_lettered": self.dead_lettered,
            "last_error": self._last_error,
            "last_error_seconds_ago": (
                round(time.monotonic() - self._last_error_at, 1)
                if self._last_error_at is not None
                else None
            ),
        }

    async def refresh_status(self) -> dict[str, Any]:
        """`status()` with the outbox figures read now rather than up to five seconds ago."""
        await self._refresh_stats()
        return self.status()

    # --- connection -------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        delay = RECONNECT_MIN
        failures = 0
        while not self._stop.is_set():
            self._state = "connecting"
            connection: AbstractConnection | None = None
            try:
                connection = await aio_pika.connect(
                    self.config.url(),
                    timeout=CONNECT_TIMEOUT,
                    client_properties={"connection_name": "nav-rewards event manager"},
                )
                delay = RECONNECT_MIN
                failures = 0
                await self._session(connection)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                line = self._note_error(f"broker: {type(error).__name__}: {error}")
                # Every failure while it lasts would flood the log: the first, then every 20th.
                if failures == 1 or failures % 20 == 0:
                    log.warning(
                        "event manager: %s unavailable (%s); retrying every %.1f-%.0fs",
                        self.config.redacted_url(),
                        line,
                        RECONNECT_MIN,
                        RECONNECT_MAX,
                    )
            finally:
                self._queue = None
                self._connected_since = None
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(connection.close(), 0.5)
            if self._stop.is_set():
                break
            self._state = "disconnected"
            await self._sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)

    async def _bind(self, queue: AbstractQueue) -> None:
        """Bind the configured keys and the catalogue's custom event names not yet bound.

        The catalogue is read from the database; if that fails the configured keys are still
        bound and the names are retried by the monitor.
        """
        keys = list(self.config.bindings)
        try:
            keys += await inbound.custom_event_names(self.core.db)
        except Exception as error:
            log.warning("event manager: could not read the catalogue's event names: %s", error)
        for key in dict.fromkeys(keys):
            if key not in self._bound:
                await queue.bind(self.config.exchange, routing_key=key)
                self._bound.add(key)

    async def _session(self, connection: AbstractConnection) -> None:
        """One connection's life: declare, consume and relay until it is lost or stop()."""
        lost = asyncio.Event()

        def on_close(*_args: Any) -> None:
            lost.set()

        connection.close_callbacks.add(on_close)
        consume = await connection.channel(publisher_confirms=False)
        await consume.set_qos(prefetch_count=self.config.prefetch)
        # Retries and dead letters are published to a named queue through the default exchange;
        # `mandatory` with on_return_raises turns "that queue is gone" into an error (not a loss).
        publish = await connection.channel(publisher_confirms=True, on_return_raises=True)
        consume.close_callbacks.add(on_close)
        publish.close_callbacks.add(on_close)
        exchange, queue = await declare(self.config, consume, publish)
        self._bound = set()
        await self._bind(queue)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await self._on_message(publish, message)

        tag = await queue.consume(on_message)
        self._queue = queue
        self._state = "connected"
        self._connected_since = time.monotonic()
        log.info(
            "event manager connected to %s: exchange %r, queue %r bound to %s",
            self.config.redacted_url(),
            self.config.exchange,
            self.config.queue,
            ", ".join(sorted(self._bound)),
        )
        relay = asyncio.create_task(self._relay(exchange), name="rewards-broker-relay")
        waits = [
            asyncio.ensure_future(lost.wait()),
            asyncio.ensure_future(self._stop.wait()),
            relay,
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits[:2]:
                waiting.cancel()
            if self._stop.is_set() and not lost.is_set():
                # No new deliveries, then a moment for those in flight to finish and ack.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(queue.cancel(tag), 0.3)
                if self._handlers:
                    await asyncio.wait(list(self._handlers), timeout=STOP_GRACE)
            if self._stop.is_set() and not lost.is_set() and not relay.done():
                # The relay ends after its current batch (its sleeps end on stop); cancelling it
                # inside a database call would only leave rows leased and a connection torn.
                await asyncio.wait({relay}, timeout=STOP_GRACE)
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)
        if lost.is_set() and not self._stop.is_set():
            self._state = "disconnected"
            raise ConnectionError("the connection to the broker was lost")

    # --- monitoring -------------------------------------------------------------------------------

    async def _refresh_stats(self) -> None:
        try:
            found = await outbox.stats(self.core.db)
        except Exception as error:
            self._note_error(f"outbox stats: {type(error).__name__}: {error}")
            return
        self._pending = found.pending
        self._oldest_pending = found.oldest_pending.isoformat() if found.oldest_pending else None

    async def _watch(self) -> None:
        """Outbox figures for `status()`, the hourly prune and the bindings refresh."""
        last_prune = last_bind = time.monotonic()
        prune_first = True
        while not self._stop.is_set():
            await self._refresh_stats()
            now = time.monotonic()
            if prune_first or now - last_prune >= PRUNE_SECONDS:
                prune_first, last_prune = False, now
                try:
                    removed = await outbox.prune(
                        self.core.db, before=self.core.clock.now() - KEEP_PUBLISHED
                    )
                    if removed:
                        log.info("event manager: pruned %d published outbox events", removed)
                except Exception as error:
                    log.warning("event manager: outbox prune failed: %s", error)
            if now - last_bind >= BINDINGS_SECONDS and self._queue is not None:
                last_bind = now
                try:
                    await self._bind(self._queue)
                except Exception as error:
                    log.warning("event manager: could not refresh the bindings: %s", error)
            await self._sleep(STATS_SECONDS)

"""The RabbitMQ event manager: the outbox relay and the inbound consumer on one connection.

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
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
)

from bots.broker.topology import (
    ATTEMPT_HEADER,
    BROKER_HEADERS,
    DEAD_AT_HEADER,
    FAILURE_HEADER,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
    dead_letter_queue_name,
    declare,
    header_int,
    header_str,
    outbound_message,
    retry_delays,
    retry_queue_name,
)
from rewards.core import Core
from rewards.services import inbound, outbox
from rewards.services.inbound import HandleResult, InboundMessage
from rewards.services.outbox import OutboxMessage
from rewards.settings import Settings

log = logging.getLogger("rewards.broker")

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


class _QuietTransportErrors(logging.Filter):
    """aiormq logs an ERROR for every refused connection attempt; while the broker is down that
    is one line every few seconds saying what `EventManager` already reported once (with the
    retry policy). Other aiormq records pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("error when creating transport")


_QUIET = _QuietTransportErrors()


class EventManager:
    """Relay and consumer; `start()` returns at once (the broker may be down), `stop()` is prompt.

    `handler` replaces `rewards.services.inbound.handle` (tests inject failures with it).
    """

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

    def nudge(self) -> None:
        """Wake the relay now (after a commit that staged events) instead of at its next poll."""
        self._nudge.set()

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

    # --- helpers ----------------------------------------------------------------------------------

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

    # --- consuming --------------------------------------------------------------------------------

    async def _on_message(self, publish: AbstractChannel, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await self._consume(publish, message)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _consume(self, publish: AbstractChannel, message: AbstractIncomingMessage) -> None:
        # RabbitMQ's own dead-lettering history (x-death...) is dropped from copies: the attempt
        # header is what counts, and the history would only grow with every retry.
        headers = {
            k: v for k, v in (message.headers or {}).items() if not k.startswith(BROKER_HEADERS)
        }
        attempt = header_int(headers.get(ATTEMPT_HEADER))
        routing_key = header_str(headers.get(ROUTING_KEY_HEADER)) or message.routing_key or ""
        label = f"message {message.message_id or '?'} ({routing_key or 'no routing key'})"
        try:
            parsed = inbound.parse(message.body, routing_key)
            label = f"event {parsed.event_id} ({parsed.type})"
            result = await self.handler(self.core, parsed)
        except asyncio.CancelledError:
            raise
        except inbound.PermanentFailure as failure:
            log.warning("event manager: %s dead-lettered: %s", label, failure.reason)
            await self._move(
                publish,
                message,
                dead_letter_queue_name(self.config),
                self._dead_headers(headers, routing_key, attempt, failure.kind, failure.reason),
                dead=True,
            )
            return
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"[:400]
            self._note_error(f"{label}: {reason}")
            if attempt >= self.config.max_retries:
                log.error(
                    "event manager: %s failed %d times, dead-lettered: %s",
                    label,
                    attempt + 1,
                    reason,
                )
                text = f"failed {attempt + 1} times; last error: {reason}"
                await self._move(
                    publish,
                    message,
                    dead_letter_queue_name(self.config),
                    self._dead_headers(headers, routing_key, attempt, "exhausted", text),
                    dead=True,
                )
                return
            delay = retry_delays(self.config)[attempt]
            log.warning(
                "event manager: %s failed (attempt %d of %d), retrying in %ds: %s",
                label,
                attempt + 1,
                self.config.max_retries + 1,
                delay,
                reason,
                exc_info=True,
            )
            retry_headers = {**headers, ATTEMPT_HEADER: attempt + 1}
            retry_headers[ROUTING_KEY_HEADER] = routing_key
            await self._move(
                publish, message, retry_queue_name(self.config, delay), retry_headers, dead=False
            )
            return
        self.consumed += 1
        # Awards are worth a line; the routine (a repeat, a second login today) only at debug.
        log.log(
            logging.INFO if result.awards else logging.DEBUG,
            "event manager: %s",
            inbound.describe(result),
        )
        try:
            await message.ack()
        except Exception as error:  # the channel went: redelivered later, a duplicate then
            log.warning("event manager: could not ack %s: %s", label, error)

    def _dead_headers(
        self, headers: dict[str, Any], routing_key: str, attempt: int, kind: str, reason: str
    ) -> dict[str, Any]:
        return {
            **headers,
            ATTEMPT_HEADER: attempt,
            ROUTING_KEY_HEADER: routing_key,
            FAILURE_HEADER: kind,
            REASON_HEADER: reason[:1000],
            DEAD_AT_HEADER: self.core.clock.now().isoformat(),
        }

    async def _move(
        self,
        publish: AbstractChannel,
        message: AbstractIncomingMessage,
        queue_name: str,
        headers: dict[str, Any],
        *,
        dead: bool,
    ) -> None:
        """Publish a copy to `queue_name`, and ack the original only once that is confirmed."""
        copy = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            correlation_id=message.correlation_id,
            # aiormq matches a returned message to its publish by message id: never leave it out.
            message_id=message.message_id or uuid.uuid4().hex,
            timestamp=message.timestamp,
            type=message.type,
            app_id=message.app_id,
        )
        try:
            await publish.default_exchange.publish(
                copy, routing_key=queue_name, mandatory=True, timeout=PUBLISH_TIMEOUT
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            line = self._note_error(f"could not publish to {queue_name}: {error!r}")
            log.error("event manager: %s; the message goes back to the queue", line)
            # A pause, so a broker refusing the copy does not spin the message around at once.
            pause = min(float(self.config.retry_seconds), SETTLE_PAUSE_MAX)
            await self._sleep(pause)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return
        if dead:
            self.dead_lettered += 1
        else:
            self.retried += 1
        try:
            await message.ack()
        except Exception as error:  # redelivered later: handled again, or moved again
            log.warning("event manager: could not ack after moving to %s: %s", queue_name, error)

    # --- publishing -------------------------------------------------------------------------------

    async def _relay(self, exchange: AbstractExchange) -> None:
        """Publish pending outbox rows until cancelled; failures back off, never end the loop."""
        backoff = RELAY_POLL_SECONDS
        db, clock = self.core.db, self.core.clock
        while not self._stop.is_set():
            self._nudge.clear()  # before the claim: a commit during it wakes the next sleep
            try:
                batch = await outbox.claim(
                    db, now=clock.now(), limit=RELAY_BATCH, lease=RELAY_LEASE
                )
            except Exception as error:
                log.warning("event manager: cannot read the outbox: %s", error)
                self._note_error(f"outbox: {type(error).__name__}: {error}")
                await self._sleep(backoff)
                backoff = min(backoff * 2, RELAY_BACKOFF_MAX)
                continue
            if not batch:
                await self._sleep(RELAY_POLL_SECONDS, self._nudge)
                if self._nudge.is_set():
                    # Woken by a commit: let a burst gather, so a run of kudos goes out in a
                    # few batches instead of costing two extra transactions each.
                    await self._sleep(RELAY_GATHER_SECONDS)
                continue
            if await self._publish(exchange, batch):
                backoff = RELAY_POLL_SECONDS
            else:
                await self._sleep(backoff)
                backoff = min(backoff * 2, RELAY_BACKOFF_MAX)

    async def _publish(self, exchange: AbstractExchange, batch: list[OutboxMessage]) -> bool:
        """Publish one claimed batch; True when every event was confirmed and stamped."""
        db, clock = self.core.db, self.core.clock
        ids = [event.id for event in batch]
        try:
            results = await asyncio.gather(
                *(
                    exchange.publish(
                        outbound_message(event),
                        routing_key=event.routing_key,
                        mandatory=False,  # nobody bound yet is no failure: the broker has it
                        timeout=PUBLISH_TIMEOUT,
                    )
                    for event in batch
                ),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            # Cut short (stop, or the connection went): give the rows back at once rather than
            # leaving them leased for a minute. A background task, as this one is cancelled.
            self._spawn(outbox.release(db, ids, "the relay stopped while publishing"))
            raise
        confirmed = [
            e.id for e, r in zip(batch, results, strict=True) if not isinstance(r, BaseException)
        ]
        failed = [e.id for e, r in zip(batch, results, strict=True) if isinstance(r, BaseException)]
        try:
            if confirmed:
                await outbox.mark_published(db, confirmed, now=clock.now())
                self.published += len(confirmed)
        except asyncio.CancelledError:
            self._spawn(outbox.mark_published(db, confirmed, now=clock.now()))
            raise
        except Exception as error:
            # Published but not stamped: the lease runs out and they go again (consumers see the
            # same message id twice; the inbound side of any consumer dedups by it).
            log.warning(
                "event manager: could not stamp %d events published: %s", len(confirmed), error
            )
        if not failed:
            return True
        first = next(r for r in results if isinstance(r, BaseException))
        line = self._note_error(f"publish: {type(first).__name__}: {first}")
        log.warning(
            "event manager: %d of %d events not confirmed (%s); retrying",
            len(failed),
            len(batch),
            line,
        )
        try:
            await outbox.release(db, failed, line)
        except asyncio.CancelledError:
            self._spawn(outbox.release(db, failed, line))
            raise
        except Exception as error:
            log.warning("event manager: could not release events: %s", error)
        return False

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

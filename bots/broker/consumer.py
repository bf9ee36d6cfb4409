"""The inbound consumer: manual acks, retries with back-off, dead letters.

Each delivery is handled in its own task (up to the prefetch), by `rewards.services.inbound`. A
permanent failure (malformed, unknown member) is copied to the dead-letter queue; a transient one
to the retry queue of its attempt, or to the dead-letter queue once the retries are used up. The
original is acked only after the broker confirmed the copy; if it cannot be confirmed the
delivery goes back to the queue, so nothing is lost in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from bots.broker.base import PUBLISH_TIMEOUT, SETTLE_PAUSE_MAX, BrokerBase
from bots.broker.topology import (
    ATTEMPT_HEADER,
    BROKER_HEADERS,
    DEAD_AT_HEADER,
    FAILURE_HEADER,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
    dead_letter_queue_name,
    header_int,
    header_str,
    retry_delays,
    retry_queue_name,
)
from rewards.services import inbound

log = logging.getLogger("rewards.broker")


class InboundConsumer(BrokerBase):
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

"""The event manager's names, headers and AMQP declarations (see `bots.broker.manager`).

Kept apart from the manager so that what other systems rely on (queue names, header names, the
outbound message's properties) is in one short module.
"""

from __future__ import annotations

import json
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from rewards.services import outbox
from rewards.services.outbox import OutboxMessage
from rewards.settings import EventManagerSettings

ATTEMPT_HEADER = "x-rewards-attempt"
ROUTING_KEY_HEADER = "x-rewards-routing-key"
FAILURE_HEADER = "x-rewards-failure"  # malformed | rejected | exhausted
REASON_HEADER = "x-rewards-reason"
DEAD_AT_HEADER = "x-rewards-dead-at"
BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-")


def retry_delays(settings: EventManagerSettings) -> list[int]:
    """Seconds before retry 1, 2, ...: `retry_seconds` doubling, one per allowed retry."""
    return [settings.retry_seconds * 2**attempt for attempt in range(settings.max_retries)]


def retry_queue_name(settings: EventManagerSettings, delay: int) -> str:
    return f"{settings.queue}.retry.{delay}s"


def dead_letter_queue_name(settings: EventManagerSettings) -> str:
    return f"{settings.queue}.dead"


def header_int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def header_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""


def outbound_message(event: OutboxMessage) -> aio_pika.Message:
    """The AMQP message of an outbox event (see `rewards.services.outbox` for the body)."""
    body = json.dumps(event.body(), ensure_ascii=False, separators=(",", ":"), default=str)
    return aio_pika.Message(
        body.encode("utf-8"),
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=event.event_id,
        type=event.type,
        timestamp=event.occurred_at,
        app_id=outbox.SOURCE,
        headers={"event_type": event.type, "source": outbox.SOURCE},
    )


async def declare(
    config: EventManagerSettings, consume: AbstractChannel, publish: AbstractChannel
) -> tuple[AbstractExchange, AbstractQueue]:
    """Declare the exchange, the dead-letter and retry queues and the inbound queue."""
    exchange = await publish.declare_exchange(
        config.exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    await publish.declare_queue(dead_letter_queue_name(config), durable=True)
    for delay in retry_delays(config):
        await publish.declare_queue(
            retry_queue_name(config, delay),
            durable=True,
            arguments={
                "x-message-ttl": delay * 1000,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": config.queue,
            },
        )
    queue = await consume.declare_queue(config.queue, durable=True)
    return exchange, queue

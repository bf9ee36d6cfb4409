"""The throwaway RabbitMQ node behaves like a real broker across a restart.

The event manager tests rely on it: a durable queue and a persistent, confirmed message must
outlive a clean stop of the node (same name, data dir and port), exactly as in production.
"""

from __future__ import annotations

import uuid

import aio_pika
from pamqp.commands import Basic

from tests.support.rabbitmq import RabbitNode


async def test_persistent_message_survives_a_restart(rabbitmq_restartable: RabbitNode) -> None:
    node = rabbitmq_restartable
    queue_name = f"smoke-{uuid.uuid4().hex}"
    body = b"kudos for the restart"

    async with await aio_pika.connect(node.url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue_name, durable=True)
        confirmation = await channel.default_exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue_name,
        )
        assert isinstance(confirmation, Basic.Ack)

    port = node.port
    node.stop()
    assert not node.running
    node.start()
    assert node.port == port

    async with await aio_pika.connect(node.url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, durable=True, passive=True)
        message = await queue.get(timeout=5)
        assert message is not None
        assert message.body == body
        await message.ack()
        await queue.delete()

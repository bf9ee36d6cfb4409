"""The RabbitMQ event manager (`ENABLE_EVENT_MANAGER`, the `events` extra).

`EventManager` publishes the transactional outbox (`rewards.services.outbox`) to a topic exchange
and consumes inbound events (`rewards.services.inbound`) from a durable queue, with retries and a
dead-letter queue. See `bots.broker.manager` for the topology and the failure handling.

aio-pika is imported by `bots.broker.manager` alone, and that module is loaded only when
`EventManager` is first asked for (this module's `__getattr__`): importing `bots.broker` works
without the extra, and `bots.server` asks for the manager only when the event manager is on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bots.broker.manager import EventManager

__all__ = ["EventManager"]


def __getattr__(name: str) -> Any:
    if name == "EventManager":
        from bots.broker.manager import EventManager

        return EventManager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

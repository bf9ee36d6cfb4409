"""The outbox relay: publishes staged domain events with publisher confirms.

Pending outbox rows are claimed with a lease, published persistent (message id = event id, AMQP
type = event type, timestamp = when it happened), and stamped published once the broker has
confirmed them; a failed publish gives the rows back and backs off. The relay polls every
second; a commit that staged events in this process wakes it (`nudge()`), and it then gathers a
burst for `RELAY_GATHER_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging

from aio_pika.abc import AbstractExchange

from bots.broker.base import (
    PUBLISH_TIMEOUT,
    RELAY_BACKOFF_MAX,
    RELAY_BATCH,
    RELAY_GATHER_SECONDS,
    RELAY_LEASE,
    RELAY_POLL_SECONDS,
    BrokerBase,
)
from bots.broker.topology import outbound_message
from rewards.services import outbox
from rewards.services.outbox import OutboxMessage

log = logging.getLogger("rewards.broker")


class OutboxRelay(BrokerBase):
    def nudge(self) -> None:
        """Wake the relay now (after a commit that staged events) instead of at its next poll."""
        self._nudge.set()

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

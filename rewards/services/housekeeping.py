"""Daily clean-up of tables that only guard against repeats, so they stop growing forever.

- `inbound_event`: ids of platform deliveries (Teams, Slack, Telegram retries) and broker events
  (the event manager's idempotency) already handled. Platforms retry within minutes and brokers
  redeliver within hours; a producer re-sending an event after `INBOUND_KEEP` is treated as new.
- `api_idempotency`: first answers to REST writes sent with an `Idempotency-Key`; a client's
  retry after `IDEMPOTENCY_KEEP` is a new request (as with payment APIs' 24-hour windows, only
  longer).
- `conversation_state`: conversations whose time ran out (they are already ignored when read).
- `link_code`: one-time account link codes a day after they expired (used or not); an expired
  code is refused when read, the day's grace only keeps a trace for someone asking "did it work?".

Nothing that is a record of what happened (awards, kudos, ledger, job runs, deliveries, the API
audit trail) is touched. The outbox prunes its own published rows (`rewards.services.outbox.prune`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import col

from rewards.store.db import Database
from rewards.store.models import ApiIdempotency, ConversationState, InboundEvent, LinkCode

INBOUND_KEEP = timedelta(days=30)
IDEMPOTENCY_KEEP = timedelta(days=7)
LINK_CODE_KEEP = timedelta(days=1)


@dataclass(frozen=True)
class HousekeepingReport:
    inbound_events: int
    idempotency_keys: int
    conversations: int
    link_codes: int = 0

    @property
    def total(self) -> int:
        return self.inbound_events + self.idempotency_keys + self.conversations + self.link_codes


async def prune(db: Database, *, now: datetime) -> HousekeepingReport:
    """Delete what has outlived its purpose, one transaction per table."""
    counts = []
    for statement in (
        delete(InboundEvent).where(col(InboundEvent.received_at) < now - INBOUND_KEEP),
        delete(ApiIdempotency).where(col(ApiIdempotency.created_at) < now - IDEMPOTENCY_KEEP),
        delete(ConversationState).where(col(ConversationState.expires_at) <= now),
        delete(LinkCode).where(col(LinkCode.expires_at) <= now - LINK_CODE_KEEP),
    ):
        async with db.write() as session:
            result = await session.execute(statement)
        counts.append(int(result.rowcount or 0))  # type: ignore[attr-defined]
    return HousekeepingReport(*counts)

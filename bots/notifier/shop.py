"""The shop's notifications as cards: the admins' approval card and the member's outcome.

The shop records them as announcements of kind ``redemption_requested`` (to each admin's
direct chat and the REDEMPTIONS_CHANNEL places) and ``redemption_decided`` (to the member's
direct chat), with the redemption in the payload. Their recipients are not the announcement's
"items" (an admin is not being congratulated), so the notifier sends these cards itself:

- the approval card is drawn from the redemption as it is *now*: a request delivered late (a
  platform was down) after another admin decided shows that decision, not dead buttons;
- the outcome card is drawn from the payload, the redemption as it was decided, so "approved"
  and a quick "fulfilled" after it are two true messages;
- when the outcome goes out on a platform, the approval cards posted there earlier (each admin's
  direct message, the channel) are redrawn with the decision (`posted_requests`), so no admin is
  left with buttons that can only answer "already decided". Best effort: a message deleted
  meanwhile does not fail the outcome.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from bots.gateway import PostedMessage
from cards.model import Card
from cards.shop import redemption_decided
from dialogs.shop import approval_card
from rewards.core import Core
from rewards.economy.shop.model import RedemptionView
from rewards.errors import NotFound
from rewards.services.announcements import AnnouncementView
from rewards.store.models import Announcement, Delivery

REQUESTED = "redemption_requested"
DECIDED = "redemption_decided"
SHOP_KINDS = frozenset({REQUESTED, DECIDED})


def _when(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def redemption_from_payload(payload: dict[str, Any]) -> RedemptionView | None:
    """The redemption a notification's payload carries (`RedemptionView.to_json`), if any."""
    data = payload.get("redemption")
    if not isinstance(data, dict):
        return None
    try:
        requested = _when(data.get("requested_at"))
        assert requested is not None
        return RedemptionView(
            id=int(data["id"]),
            item_id=int(data["item_id"]),
            item_name=str(data["item_name"]),
            item_icon=data.get("item_icon"),
            member_id=int(data["member_id"]),
            member_name=str(data["member_name"]),
            cost=int(data["cost"]),
            note=data.get("note"),
            state=str(data["state"]),
            requested_at=requested,
            decided_by=data.get("decided_by"),
            decided_at=_when(data.get("decided_at")),
            reason=data.get("reason"),
            fulfilled_by=data.get("fulfilled_by"),
            fulfilled_at=_when(data.get("fulfilled_at")),
            approval=bool(data.get("approval")),
        )
    except (KeyError, TypeError, ValueError, AssertionError):
        return None


def redemption_id(payload: dict[str, Any]) -> int | None:
    value = payload.get("redemption_id")
    if isinstance(value, int):
        return value
    data = payload.get("redemption")
    if isinstance(data, dict) and isinstance(data.get("id"), int):
        return int(data["id"])
    return None


async def shop_card(core: Core, view: AnnouncementView) -> Card | None:
    """The card of a shop notification; None for any other announcement (or a redemption that
    is gone and not in the payload either)."""
    if view.kind not in SHOP_KINDS:
        return None
    recorded = redemption_from_payload(view.payload)
    if view.kind == DECIDED and recorded is not None:
        return redemption_decided(recorded)
    number = redemption_id(view.payload)
    current = recorded
    if number is not None:
        with contextlib.suppress(NotFound):  # gone: the payload's copy is all there is
            current = await core.shop.get(number)
    if current is None:
        return None
    return approval_card(current) if view.kind == REQUESTED else redemption_decided(current)


async def posted_requests(core: Core, redemption: int, platform: str) -> list[PostedMessage]:
    """Where the approval card of `redemption` was posted on `platform`: its sent deliveries
    (the notification is unique by key, ``redemption:<id>:requested``)."""
    query = (
        select(col(Delivery.message_ref))
        .join(Announcement, col(Announcement.id) == col(Delivery.announcement_id))
        .where(
            col(Announcement.key) == f"redemption:{redemption}:requested",
            col(Delivery.channel) == platform,
            col(Delivery.status) == "sent",
            col(Delivery.message_ref).is_not(None),
        )
    )
    async with core.db.read() as session:
        refs = (await session.scalars(query)).all()
    out = []
    for ref in refs:
        chat_id, sep, message_id = str(ref).rpartition(":")
        if sep and chat_id and message_id:
            out.append(PostedMessage(platform, chat_id, message_id))
    return out

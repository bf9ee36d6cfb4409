"""What the shop shows and returns: items, offers to one member, balances and redemptions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rewards.catalog.permissions import PermissionEntry

PERIODS = ("day", "week", "month", "year")
"""What a `per_member_limit` counts over (in `TIMEZONE`; the week starts on Monday); no period:
ever."""

REQUESTED, APPROVED, FULFILLED, REJECTED, CANCELLED = (
    "requested",
    "approved",
    "fulfilled",
    "rejected",
    "cancelled",
)
STATES = (REQUESTED, APPROVED, FULFILLED, REJECTED, CANCELLED)
ACTIVE = (REQUESTED, APPROVED, FULFILLED)
"""States whose cost stays spent and whose unit stays taken (the others were refunded)."""


@dataclass(frozen=True)
class ShopItem:
    item_id: int
    name: str
    description: str
    cost: int
    stock: int | None
    per_member_limit: int | None
    limit_period: str | None
    approval: bool
    icon: str | None
    available_to: tuple[PermissionEntry, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The item as the shop file writes it (what `rewards shop load` stores)."""
        return {
            "item_id": self.item_id,
            "name": self.name,
            "description": self.description,
            "cost": self.cost,
            "stock": self.stock,
            "per_member_limit": self.per_member_limit,
            "limit_period": self.limit_period,
            "approval": self.approval,
            "icon": self.icon,
            "available_to": [
                entry.model_dump(mode="json", exclude_defaults=True) for entry in self.available_to
            ],
        }


@dataclass(frozen=True)
class Offer:
    """An item as offered to one member: whether they may redeem it now and, if not, why."""

    item: ShopItem
    stock_left: int | None
    limit_left: int | None
    affordable: bool
    allowed: bool
    reason: str | None


@dataclass(frozen=True)
class Balance:
    """Points earned (the ledger: what leaderboards count), spent in the shop, and spendable.

    `spendable` is `earned - spent`; it can be below zero when an award was revoked after its
    points were spent (nothing can be redeemed until it is positive again)."""

    earned: int
    spent: int
    spendable: int


@dataclass(frozen=True)
class RedemptionView:
    id: int
    item_id: int
    item_name: str
    item_icon: str | None
    member_id: int
    member_name: str
    cost: int
    note: str | None
    state: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    fulfilled_by: str | None
    fulfilled_at: datetime | None
    approval: bool

    def to_json(self) -> dict[str, Any]:
        """JSON values (times in ISO 8601): the API's body and the notifications' payload."""

        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id,
            "item_id": self.item_id,
            "item_name": self.item_name,
            "item_icon": self.item_icon,
            "member_id": self.member_id,
            "member_name": self.member_name,
            "cost": self.cost,
            "note": self.note,
            "state": self.state,
            "requested_at": when(self.requested_at),
            "decided_by": self.decided_by,
            "decided_at": when(self.decided_at),
            "reason": self.reason,
            "fulfilled_by": self.fulfilled_by,
            "fulfilled_at": when(self.fulfilled_at),
            "approval": self.approval,
        }

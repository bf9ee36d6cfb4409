"""Shop items in the database: loading a validated file, reading items back.

A load is one transaction: new items are added, changed ones updated, and items no longer in the
file are withdrawn (`enabled` false: not offered, not redeemable; their redemptions stay). When
an item's `stock` changes, what is left becomes the new stock less the units its active
redemptions hold (never below zero); an unchanged stock keeps what is left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.catalog.permissions import parse_entries
from rewards.economy.shop.model import ACTIVE, ShopItem
from rewards.errors import UnknownItem
from rewards.store.db import Database
from rewards.store.models import Redemption, ShopItemRecord


@dataclass
class ShopLoadReport:
    added: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    withdrawn: list[int] = field(default_factory=list)


def item_of(row: ShopItemRecord) -> ShopItem:
    return ShopItem(
        item_id=row.id,
        name=row.name,
        description=row.description,
        cost=row.cost,
        stock=row.stock,
        per_member_limit=row.per_member_limit,
        limit_period=row.limit_period,
        approval=row.approval,
        icon=row.icon,
        available_to=tuple(parse_entries(row.available_to or [])),
    )


_FIELDS = (
    "name",
    "description",
    "cost",
    "stock",
    "per_member_limit",
    "limit_period",
    "approval",
    "icon",
    "available_to",
)


async def _taken(session: AsyncSession, item_id: int) -> int:
    """Units of the item held by redemptions that were not refunded."""
    count = await session.scalar(
        select(func.count())
        .select_from(Redemption)
        .where(col(Redemption.item_id) == item_id, col(Redemption.state).in_(ACTIVE))
    )
    return int(count or 0)


async def load_items(db: Database, items: Sequence[ShopItem], now: datetime) -> ShopLoadReport:
    """Add, update and withdraw items so the shop matches `items` (all or nothing)."""
    report = ShopLoadReport()
    async with db.write() as session:
        rows = {
            row.id: row for row in (await session.execute(select(ShopItemRecord))).scalars().all()
        }
        wanted = {item.item_id for item in items}
        for item in items:
            values = item.to_json()
            row = rows.get(item.item_id)
            if row is None:
                session.add(
                    ShopItemRecord(
                        id=item.item_id,
                        **{name: values[name] for name in _FIELDS},
                        stock_left=item.stock,
                        enabled=True,
                        updated_at=now,
                    )
                )
                report.added.append(item.item_id)
                continue
            differs = not row.enabled or any(getattr(row, name) != values[name] for name in _FIELDS)
            if not differs:
                report.unchanged.append(item.item_id)
                continue
            if item.stock is None:
                row.stock_left = None
            elif row.stock != item.stock or row.stock_left is None:
                row.stock_left = max(item.stock - await _taken(session, item.item_id), 0)
            for name in _FIELDS:
                setattr(row, name, values[name])
            row.enabled = True
            row.updated_at = now
            report.changed.append(item.item_id)
        for item_id, row in sorted(rows.items()):
            if item_id not in wanted and row.enabled:
                row.enabled = False
                row.updated_at = now
                report.withdrawn.append(item_id)
    return report


async def list_items(session: AsyncSession) -> list[ShopItemRecord]:
    """The items on offer (enabled), by id."""
    result = await session.execute(
        select(ShopItemRecord)
        .where(col(ShopItemRecord.enabled).is_(True))
        .order_by(col(ShopItemRecord.id))
    )
    return list(result.scalars().all())


async def find_item(session: AsyncSession, ref: str | int) -> ShopItemRecord:
    """An item on offer by id (a number) or name (any case); UnknownItem with a sentence."""
    text = str(ref).strip().lstrip("#")
    if text.isdigit():
        row = await session.get(ShopItemRecord, int(text))
    else:
        row = await session.scalar(
            select(ShopItemRecord).where(func.lower(col(ShopItemRecord.name)) == text.lower())
        )
    if row is None or not row.enabled:
        shown = str(ref).strip()[:80] or "that"
        raise UnknownItem(f'The shop has no item "{shown}". Type /shop to see what it offers.')
    return row

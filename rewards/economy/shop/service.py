"""`ShopService` (`core.shop`): the rewards shop for the chat, the CLI and the REST API.

Each method is one transaction (inside a chat turn, the turn's): reads touch the member asked
about and the shop's items only, never the population or the whole ledger; writes change the
state, the wallet, the stock and record the notification together (`rewards.economy.redemptions`).
Refusals raise `rewards.errors` classes whose message is a sentence for the person.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlmodel import col

from rewards.catalog.permissions import allows, parse_entries
from rewards.clock import Clock, SystemClock, as_utc
from rewards.economy import balance as balances
from rewards.economy import grants, redemptions
from rewards.economy.shop.file import load_shop_file
from rewards.economy.shop.model import ACTIVE, STATES, Balance, Offer, RedemptionView, ShopItem
from rewards.economy.shop.store import ShopLoadReport, item_of, list_items, load_items
from rewards.errors import InvalidInput, UnknownMember
from rewards.services._subjects import load_person
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Member, Redemption

MAX_LIST = 500
log = logging.getLogger(__name__)


class ShopService:
    def __init__(self, db: Database, settings: Settings, clock: Clock | None = None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock or SystemClock()

    def _now(self) -> datetime:
        return as_utc(self.clock.now())

    async def load(self, items: list[ShopItem]) -> ShopLoadReport:
        """Make the shop match a validated file (`rewards.economy.shop.file`)."""
        return await load_items(self.db, items, self._now())

    async def load_configured(self) -> ShopLoadReport | None:
        """Load ``REWARDS_SHOP`` at start-up, as the catalogue files are: a missing file is
        skipped with a warning, an invalid one raises `ShopFileError` (the start stops with the
        list of problems rather than serving a shop that is not the file)."""
        name = self.settings.shop_file
        if not name:
            return None
        path = Path(name)
        if not await asyncio.to_thread(path.is_file):
            log.warning("shop file %s not found; skipped", path)
            return None
        items = await asyncio.to_thread(load_shop_file, path)
        report = await self.load(items)
        log.info(
            "shop %s: %d added, %d changed, %d unchanged, %d withdrawn",
            path,
            len(report.added),
            len(report.changed),
            len(report.unchanged),
            len(report.withdrawn),
        )
        return report

    async def items(self) -> list[tuple[ShopItem, int | None]]:
        """Every item on offer with what is left of its stock (None: unlimited)."""
        async with self.db.read() as session:
            return [(item_of(row), row.stock_left) for row in await list_items(session)]

    async def balance(self, member_id: int) -> Balance:
        async with self.db.read() as session:
            if (
                await session.scalar(select(col(Member.id)).where(col(Member.id) == member_id))
                is None
            ):
                raise UnknownMember(f"I don't know a member with id {member_id}.")
            return await balances.read(session, member_id)

    async def offers(self, member_id: int) -> list[Offer]:
        """Every item on offer, with whether this member may redeem it now and, if not, why."""
        now = self._now()
        async with self.db.read() as session:
            person = await load_person(session, member_id)
            rows = await list_items(session)
            wallet = await balances.read(session, member_id)
            limited = [row.id for row in rows if row.per_member_limit is not None]
            taken: dict[int, list[datetime]] = {}
            if limited:
                found = await session.execute(
                    select(col(Redemption.item_id), col(Redemption.requested_at)).where(
                        col(Redemption.member_id) == member_id,
                        col(Redemption.item_id).in_(limited),
                        col(Redemption.state).in_(ACTIVE),
                    )
                )
                for item_id, at in found.all():
                    taken.setdefault(item_id, []).append(as_utc(at))
        offers = []
        tz_name = person.timezone or self.settings.timezone
        for row in rows:
            item = item_of(row)
            permitted = allows(parse_entries(row.available_to or []), person.subject)
            limit_left: int | None = None
            limit_reason: str | None = None
            if row.per_member_limit is not None:
                since = redemptions.limit_window(row, now, tz_name)
                used = sum(1 for at in taken.get(row.id, []) if since is None or at >= since)
                limit_left = max(row.per_member_limit - used, 0)
                limit_reason = redemptions.limit_refusal(row, used)
            sold_out = row.stock_left is not None and row.stock_left <= 0
            affordable = wallet.spendable >= row.cost
            reason = None
            if not permitted:
                reason = f"{row.name} is not available to you."
            elif sold_out:
                reason = f"{row.name} is sold out."
            elif limit_reason is not None:
                reason = limit_reason
            elif not affordable:
                reason = redemptions.cost_refusal(row.name, row.cost, wallet.spendable)
            offers.append(
                Offer(
                    item=item,
                    stock_left=row.stock_left,
                    limit_left=limit_left,
                    affordable=affordable,
                    allowed=permitted and not sold_out and limit_reason is None,
                    reason=reason,
                )
            )
        return offers

    async def redeem(
        self, member_id: int, item_ref: str | int, note: str | None = None
    ) -> RedemptionView:
        async with self.db.write() as session:
            return await redemptions.redeem(
                session,
                self.settings,
                self._now(),
                member_id=member_id,
                item_ref=item_ref,
                note=note,
            )

    async def approve(self, redemption_id: int, *, by: str) -> RedemptionView:
        async with self.db.write() as session:
            return await redemptions.approve(session, self.settings, self._now(), redemption_id, by)

    async def reject(self, redemption_id: int, *, by: str, reason: str) -> RedemptionView:
        async with self.db.write() as session:
            return await redemptions.reject(
                session, self.settings, self._now(), redemption_id, by, reason
            )

    async def fulfil(self, redemption_id: int, *, by: str) -> RedemptionView:
        async with self.db.write() as session:
            return await redemptions.fulfil(session, self.settings, self._now(), redemption_id, by)

    async def cancel(self, redemption_id: int, *, member_id: int) -> RedemptionView:
        async with self.db.write() as session:
            return await redemptions.cancel(session, self._now(), redemption_id, member_id)

    async def get(self, redemption_id: int) -> RedemptionView:
        async with self.db.read() as session:
            return await redemptions.load_view(session, redemption_id)

    async def list(
        self,
        state: str | None = None,
        member_id: int | None = None,
        limit: int = 50,
        *,
        before_id: int | None = None,
    ) -> list[RedemptionView]:
        """Newest first, optionally of one state and/or one member; page with `before_id` (the
        smallest id of the previous page)."""
        if state is not None and state not in STATES:
            raise InvalidInput(f"Unknown state {state!r}; use one of {', '.join(STATES)}.")
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInput(f"Ask for between 1 and {MAX_LIST} redemptions.")
        async with self.db.read() as session:
            return await redemptions.list_views(
                session, state=state, member_id=member_id, limit=limit, before_id=before_id
            )

    async def grant(self, member_id: int, points: int, *, reason: str) -> grants.Grant:
        """An admin's grant or correction (a ledger entry of kind "adjustment")."""
        async with self.db.write() as session:
            return await grants.grant(
                session,
                self.settings,
                self._now(),
                member_id=member_id,
                points=points,
                reason=reason,
            )

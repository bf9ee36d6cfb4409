"""Redemption writes: redeem, approve, reject, fulfil, cancel. Each runs in the caller's write
transaction and either changes everything it must (the state, the member's wallet, the item's
stock, the notification) or raises before the commit, leaving nothing behind.

Concurrency, on SQLite and PostgreSQL alike:
- the member's wallet row is locked first (`balance.lock`), so the balance and the per-member
  limit are checked against every redemption of that member committed before, and two
  redemptions of one member run one after the other: no overdraft;
- the stock is taken with a conditional decrement (``UPDATE shop_item SET stock_left =
  stock_left - 1 WHERE id = :id AND stock_left > 0``): of many redeemers of the last unit one
  updates a row, the others update none and are told it is sold out;
- a decision is a conditional update on the state (``... WHERE state = 'requested'``): of two
  admins clicking at once, one decides and the other is told who did, and when.
Locks are always taken in the order wallet, then item, so two of these never deadlock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from rewards.catalog.permissions import allows, parse_entries
from rewards.clock import as_utc, period_start
from rewards.economy import balance
from rewards.economy.redemption_notices import record_decided, record_requested
from rewards.economy.shop.model import (
    ACTIVE,
    APPROVED,
    CANCELLED,
    FULFILLED,
    REJECTED,
    REQUESTED,
    RedemptionView,
)
from rewards.economy.shop.store import find_item
from rewards.errors import InvalidInput, NotAllowed, NotAvailable, UnknownRedemption
from rewards.inputs.text import text_problem
from rewards.services._subjects import load_person
from rewards.settings import Settings
from rewards.store.models import Member, Redemption, ShopItemRecord

MAX_NOTE = 500
MAX_REASON = 500
MAX_BY = 320
PERIOD_WORDS = {"day": "today", "week": "this week", "month": "this month", "year": "this year"}


def _points(cost: int) -> str:
    return f"{cost} point{'s' if cost != 1 else ''}"


def cost_refusal(name: str, cost: int, spendable: int) -> str:
    return f"{name} costs {_points(cost)}; you have {_points(max(spendable, 0))} to spend."


def clean_text(value: str | None, what: str, limit: int, *, required: bool = False) -> str | None:
    """Stripped text within `limit` characters and without control characters; None if empty
    (InvalidInput when `required`)."""
    text = (value or "").strip()
    if not text:
        if required:
            raise InvalidInput(f"Give a {what}.")
        return None
    if len(text) > limit:
        raise InvalidInput(f"The {what} is {len(text)} characters long; the limit is {limit}.")
    problem = text_problem(text)
    if problem is not None:
        raise InvalidInput(f"The {what} {problem}.")
    return text


def _by(value: str) -> str:
    by = (value or "").strip()[:MAX_BY]
    if not by:
        raise InvalidInput("Say who decides (an admin's name or email).")
    return by


def _views_query() -> Any:
    return (
        select(
            Redemption, col(ShopItemRecord.name), col(ShopItemRecord.icon), col(Member.display_name)
        )
        .join(ShopItemRecord, col(ShopItemRecord.id) == col(Redemption.item_id))
        .join(Member, col(Member.id) == col(Redemption.member_id))
    )


def _view(row: Redemption, item_name: str, icon: str | None, member_name: str) -> RedemptionView:
    assert row.id is not None
    return RedemptionView(
        id=row.id,
        item_id=row.item_id,
        item_name=item_name,
        item_icon=icon,
        member_id=row.member_id,
        member_name=member_name,
        cost=row.cost,
        note=row.note,
        state=row.state,
        requested_at=as_utc(row.requested_at),
        decided_by=row.decided_by,
        decided_at=as_utc(row.decided_at) if row.decided_at else None,
        reason=row.reason,
        fulfilled_by=row.fulfilled_by,
        fulfilled_at=as_utc(row.fulfilled_at) if row.fulfilled_at else None,
        approval=row.approval,
    )


async def load_view(session: AsyncSession, redemption_id: int) -> RedemptionView:
    # populate_existing: the row may sit in the session from before a conditional update
    query = (
        _views_query()
        .where(col(Redemption.id) == redemption_id)
        .execution_options(populate_existing=True)
    )
    found = (await session.execute(query)).first()
    if found is None:
        raise UnknownRedemption(f"There is no redemption {redemption_id}.")
    return _view(*found)


async def list_views(
    session: AsyncSession,
    *,
    state: str | None,
    member_id: int | None,
    limit: int,
    before_id: int | None = None,
) -> list[RedemptionView]:
    query = _views_query().order_by(col(Redemption.id).desc()).limit(limit)
    if before_id is not None:
        query = query.where(col(Redemption.id) < before_id)
    if state is not None:
        query = query.where(col(Redemption.state) == state)
    if member_id is not None:
        query = query.where(col(Redemption.member_id) == member_id)
    return [_view(*found) for found in (await session.execute(query)).all()]


def limit_window(item: ShopItemRecord, now: datetime, tz_name: str) -> datetime | None:
    """Start of the item's limit period containing `now` (None: the limit counts forever)."""
    if item.limit_period is None:
        return None
    return period_start(item.limit_period, now, tz_name)


def limit_refusal(item: ShopItemRecord, used: int) -> str | None:
    """The sentence refusing one more of `item` after `used`, or None while under the limit."""
    if item.per_member_limit is None or used < item.per_member_limit:
        return None
    when = PERIOD_WORDS.get(item.limit_period or "", "already")
    times = f"{used} time{'s' if used != 1 else ''}"
    return f"You have redeemed {item.name} {times} {when}; the limit is {item.per_member_limit}" + (
        f" per {item.limit_period}." if item.limit_period else "."
    )


async def _used(
    session: AsyncSession, member_id: int, item: ShopItemRecord, since: datetime | None
) -> int:
    query = (
        select(func.count())
        .select_from(Redemption)
        .where(
            col(Redemption.member_id) == member_id,
            col(Redemption.item_id) == item.id,
            col(Redemption.state).in_(ACTIVE),
        )
    )
    if since is not None:
        query = query.where(col(Redemption.requested_at) >= since)
    return int(await session.scalar(query) or 0)


async def redeem(
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    *,
    member_id: int,
    item_ref: str | int,
    note: str | None,
) -> RedemptionView:
    """Debit the member and the item's stock and record the redemption ("requested" when the item
    needs approval, with the admins notified; else "approved")."""
    person = await load_person(session, member_id)
    if not person.active:
        raise NotAllowed(f"{person.display_name} is no longer an active member.")
    text = clean_text(note, "note", MAX_NOTE)
    item = await find_item(session, item_ref)
    if not allows(parse_entries(item.available_to or []), person.subject):
        raise NotAllowed(f"{item.name} is not available to you.")
    wallet = await balance.lock(session, member_id, now)
    if wallet.spendable < item.cost:
        raise NotAvailable(cost_refusal(item.name, item.cost, wallet.spendable))
    if item.per_member_limit is not None:
        since = limit_window(item, now, person.timezone or settings.timezone)
        refusal = limit_refusal(item, await _used(session, member_id, item, since))
        if refusal is not None:
            raise NotAvailable(refusal)
    if item.stock_left is not None:
        taken = await session.execute(
            update(ShopItemRecord)
            .where(col(ShopItemRecord.id) == item.id, col(ShopItemRecord.stock_left) > 0)
            .values(stock_left=col(ShopItemRecord.stock_left) - 1)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise NotAvailable(f"{item.name} is sold out.")
    await balance.add_spent(session, member_id, item.cost, now)
    row = Redemption(
        item_id=item.id,
        member_id=member_id,
        cost=item.cost,
        note=text,
        state=REQUESTED if item.approval else APPROVED,
        approval=item.approval,
        requested_at=now,
        decided_at=None if item.approval else now,
    )
    session.add(row)
    await session.flush()
    view = _view(row, item.name, item.icon, person.display_name)
    if item.approval:
        await record_requested(session, settings, view, now)
    return view


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "an earlier time"


def _already(view: RedemptionView, action: str) -> NotAllowed:
    """The refusal of `action` on a redemption that is past the state it needs."""
    if view.state in (APPROVED, REJECTED) and view.decided_by:
        return NotAllowed(
            f"Redemption {view.id} was already {view.state} by {view.decided_by} "
            f"at {when(view.decided_at)}."
        )
    if view.state == APPROVED and action == "approve":
        return NotAllowed(
            f"Redemption {view.id} was already approved (its item needs no approval)."
        )
    if view.state == FULFILLED:
        return NotAllowed(
            f"Redemption {view.id} was already fulfilled by {view.fulfilled_by} "
            f"at {when(view.fulfilled_at)}."
        )
    if view.state == CANCELLED:
        return NotAllowed(
            f"Redemption {view.id} was cancelled by {view.member_name} at {when(view.decided_at)}."
        )
    if view.state == REQUESTED and action == "fulfil":
        return NotAllowed(f"Redemption {view.id} waits for approval; approve it first.")
    return NotAllowed(f"Redemption {view.id} is {view.state}; it cannot be {action}d now.")


UNDECIDED = "approved-unattended"
"""A pseudo-state for `_transition`: approved on request, because its item needs no approval
(no admin decided it yet, so an admin may still reject it)."""


async def _transition(
    session: AsyncSession, redemption_id: int, from_states: tuple[str, ...], values: dict[str, Any]
) -> bool:
    """Move the redemption from one of `from_states` to `values`, in one conditional update:
    of concurrent callers exactly one succeeds."""
    allowed: ColumnElement[bool] = col(Redemption.state).in_(
        [s for s in from_states if s != UNDECIDED]
    )
    if UNDECIDED in from_states:
        allowed = or_(
            allowed,
            and_(col(Redemption.state) == APPROVED, col(Redemption.approval).is_(False)),
        )
    result = await session.execute(
        update(Redemption)
        .where(col(Redemption.id) == redemption_id, allowed)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def _member_email(session: AsyncSession, member_id: int) -> str:
    return str(await session.scalar(select(col(Member.email)).where(col(Member.id) == member_id)))


async def _move(
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    redemption_id: int,
    verb: str,
    states: tuple[str, ...],
    values: dict[str, object],
) -> RedemptionView:
    """Move a redemption on from one of `states` (a conditional update: of two admins or two
    clicks, one moves it and the other is told who did) and tell the member."""
    if not await _transition(session, redemption_id, states, values):
        raise _already(await load_view(session, redemption_id), verb)
    view = await load_view(session, redemption_id)
    await record_decided(session, settings, view, await _member_email(session, view.member_id), now)
    return view


async def approve(
    session: AsyncSession, settings: Settings, now: datetime, redemption_id: int, by: str
) -> RedemptionView:
    values = {"state": APPROVED, "decided_by": _by(by), "decided_at": now}
    return await _move(session, settings, now, redemption_id, "approve", (REQUESTED,), values)


async def fulfil(
    session: AsyncSession, settings: Settings, now: datetime, redemption_id: int, by: str
) -> RedemptionView:
    values = {"state": FULFILLED, "fulfilled_by": _by(by), "fulfilled_at": now}
    return await _move(session, settings, now, redemption_id, "fulfil", (APPROVED,), values)


async def _refund(
    session: AsyncSession,
    now: datetime,
    redemption_id: int,
    *,
    from_states: tuple[str, ...],
    values: dict[str, Any],
    action: str,
    member_id: int | None = None,
) -> RedemptionView:
    """Move the redemption to a refunded state and give back its cost and its unit."""
    before = await load_view(session, redemption_id)
    if member_id is not None and before.member_id != member_id:
        raise UnknownRedemption(f"You have no redemption {redemption_id}.")
    await balance.lock(session, before.member_id, now)  # wallet first, as a redemption does
    if not await _transition(session, redemption_id, from_states, values):
        raise _already(await load_view(session, redemption_id), action)
    await balance.add_spent(session, before.member_id, -before.cost, now)
    await session.execute(
        update(ShopItemRecord)
        .where(
            col(ShopItemRecord.id) == before.item_id, col(ShopItemRecord.stock_left).is_not(None)
        )
        .values(stock_left=col(ShopItemRecord.stock_left) + 1)
        .execution_options(synchronize_session=False)
    )
    return await load_view(session, redemption_id)


async def reject(
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    redemption_id: int,
    by: str,
    reason: str,
) -> RedemptionView:
    who = _by(by)
    why = clean_text(reason, "reason", MAX_REASON, required=True)
    view = await _refund(
        session,
        now,
        redemption_id,
        from_states=(REQUESTED, UNDECIDED),
        values={"state": REJECTED, "decided_by": who, "decided_at": now, "reason": why},
        action="reject",
    )
    await record_decided(session, settings, view, await _member_email(session, view.member_id), now)
    return view


async def cancel(
    session: AsyncSession, now: datetime, redemption_id: int, member_id: int
) -> RedemptionView:
    """The member withdraws a redemption still waiting for approval (refunded)."""
    return await _refund(
        session,
        now,
        redemption_id,
        from_states=(REQUESTED,),
        values={"state": CANCELLED, "decided_at": now},
        action="cancel",
        member_id=member_id,
    )

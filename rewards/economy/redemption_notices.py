"""The notifications of redemptions, recorded as announcements with their deliveries.

They are written in the same transaction as the state change they report (`record_requested`,
`record_decided`), so the notifier (`bots.notifier`) sends each exactly once, with its retries
and leases, and a change that rolls back notifies nobody. Each is unique by key
(``redemption:<id>:<state>``).

- ``redemption_requested``: a redemption waits for approval. One item per admin (members named
  by ``REWARDS_ADMINS``, by email or group) and a delivery to each admin's direct chat on every
  enabled platform they use, to each ``REDEMPTIONS_CHANNEL`` place (``platform:channel``), and
  by email (when ``SMTP_HOST`` is set) to an admin who has no direct chat.
- ``redemption_decided``: approved, rejected or fulfilled. One item, the member, to their
  direct chats (or email as above).

The payload carries ``redemption`` (`RedemptionView.to_json`: id, item, member, cost, note,
state, who and when, reason) for the cards; the title and each item's text are plain sentences,
so a channel, an email or the console can show them as they are. Items carry no points (an
announcement's points are credited ones; a redemption's cost is in the payload).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.economy.shop.model import APPROVED, FULFILLED, REJECTED, RedemptionView
from rewards.services.announcements import (
    DIRECT_PREFIX,
    AnnouncedItem,
    enabled_platforms,
    queue_deliveries,
)
from rewards.services.members import is_placeholder_email
from rewards.settings import Settings
from rewards.store.models import Announcement, Member, MemberGroup, PlatformAccount

REQUESTED_KIND = "redemption_requested"
DECIDED_KIND = "redemption_decided"


def _points(cost: int) -> str:
    return f"{cost} point{'s' if cost != 1 else ''}"


def requested_text(view: RedemptionView) -> str:
    """One line for an admin: who asks for what, at what cost, with their note."""
    note = f' Note: "{view.note}"' if view.note else ""
    return (
        f"{view.member_name} asks to redeem {view.item_name} for {_points(view.cost)} "
        f"(redemption {view.id}).{note} Approve or reject it: "
        f"rewards redemptions approve {view.id} / reject {view.id} --reason ..."
    )


def decided_text(view: RedemptionView) -> str:
    """One line for the member: the outcome, who decided, the reason, the refund."""
    if view.state == APPROVED:
        return f"Your redemption of {view.item_name} was approved by {view.decided_by}."
    if view.state == FULFILLED:
        return f"Your {view.item_name} is on its way: {view.fulfilled_by} marked it fulfilled."
    if view.state == REJECTED:
        reason = f": {view.reason}" if view.reason else ""
        return (
            f"Your redemption of {view.item_name} was rejected by {view.decided_by}{reason}. "
            f"The {_points(view.cost)} are back in your balance."
        )
    return f"Your redemption of {view.item_name} is now {view.state}."


async def admin_members(session: AsyncSession, settings: Settings) -> list[tuple[int, str, str]]:
    """(id, display name, email) of the active members ``REWARDS_ADMINS`` names, by email or
    group: a query over the admins only."""
    names = [name.casefold() for name in settings.admins]
    if not names:
        return []
    in_group = select(col(MemberGroup.member_id)).where(
        func.lower(col(MemberGroup.name)).in_(names)
    )
    rows = await session.execute(
        select(col(Member.id), col(Member.display_name), col(Member.email))
        .where(
            col(Member.active).is_(True),
            or_(func.lower(col(Member.email)).in_(names), col(Member.id).in_(in_group)),
        )
        .order_by(col(Member.id))
    )
    return [(int(i or 0), str(n), str(e)) for i, n, e in rows.all()]


def channel_targets(settings: Settings) -> list[tuple[str, str]]:
    """(platform, channel) of ``REDEMPTIONS_CHANNEL`` on the platforms this process runs."""
    enabled = set(enabled_platforms(settings))
    places = []
    for entry in settings.redemptions_channel:
        platform, _, channel = entry.partition(":")
        if platform in enabled and channel:
            places.append((platform, channel))
    return places


async def _direct_targets(
    session: AsyncSession, settings: Settings, people: Sequence[tuple[int, str]]
) -> list[tuple[str, str]]:
    """Each person's direct chats on the enabled platforms; their email (with SMTP) when they
    have none."""
    ids = [member_id for member_id, _ in people]
    if not ids:
        return []
    enabled = set(enabled_platforms(settings))
    accounts = await session.execute(
        select(col(PlatformAccount.platform), col(PlatformAccount.member_id)).where(
            col(PlatformAccount.member_id).in_(ids)
        )
    )
    direct = sorted(
        {(platform, member_id) for platform, member_id in accounts.all() if platform in enabled}
    )
    reached = {member_id for _, member_id in direct}
    targets = [(platform, f"{DIRECT_PREFIX}{member_id}") for platform, member_id in direct]
    if settings.smtp_host:
        targets += [
            ("email", email)
            for member_id, email in people
            if member_id not in reached and email and not is_placeholder_email(email)
        ]
    return targets


async def _record(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    title: str,
    items: Sequence[AnnouncedItem],
    view: RedemptionView,
    targets: Sequence[tuple[str, str]],
    now: datetime,
) -> int | None:
    existing = await session.scalar(
        select(col(Announcement.id)).where(col(Announcement.key) == key)
    )
    if existing is not None:
        return None
    row = Announcement(
        key=key,
        kind=kind,
        title=title,
        payload={
            "redemption": view.to_json(),
            "icon": view.item_icon,
            "items": [item.to_json() for item in items],
        },
        created_at=now,
    )
    session.add(row)
    await session.flush()
    assert row.id is not None
    await queue_deliveries(session, row.id, targets, now)
    return row.id


async def record_requested(
    session: AsyncSession, settings: Settings, view: RedemptionView, now: datetime
) -> int | None:
    """Tell the admins (and ``REDEMPTIONS_CHANNEL``) that `view` waits for their decision."""
    admins = await admin_members(session, settings)
    text = requested_text(view)
    items = [AnnouncedItem(member_id=i, name=name, text=text) for i, name, _ in admins]
    targets = channel_targets(settings) + await _direct_targets(
        session, settings, [(i, email) for i, _, email in admins]
    )
    return await _record(
        session,
        key=f"redemption:{view.id}:requested",
        kind=REQUESTED_KIND,
        title=f"Redemption {view.id}: {view.member_name} asks for {view.item_name}",
        items=items,
        view=view,
        targets=targets,
        now=now,
    )


async def record_decided(
    session: AsyncSession, settings: Settings, view: RedemptionView, email: str, now: datetime
) -> int | None:
    """Tell the member the outcome of their redemption."""
    item = AnnouncedItem(member_id=view.member_id, name=view.member_name, text=decided_text(view))
    targets = await _direct_targets(session, settings, [(view.member_id, email)])
    return await _record(
        session,
        key=f"redemption:{view.id}:{view.state}",
        kind=DECIDED_KIND,
        title=f"Redemption {view.id} of {view.item_name}: {view.state}",
        items=[item],
        view=view,
        targets=targets,
        now=now,
    )

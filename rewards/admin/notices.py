"""Telling a member, by a direct message, what an admin did to them: an award or kudos revoked,
their giving locked or unlocked.

A notice is an announcement (kind ``admin_notice``) with a delivery to each of the member's
direct chats on the enabled platforms (by email when ``SMTP_HOST`` is set and they have none),
written in the action's transaction: the notifier (`bots.notifier`) sends it once, with its
retries, and an action that rolls back tells nobody. Never posted in a channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.services.announcements import (
    DIRECT_PREFIX,
    PENDING,
    AnnouncedItem,
    enabled_platforms,
)
from rewards.services.members import is_placeholder_email
from rewards.settings import Settings
from rewards.store.models import Announcement, Delivery, Member, PlatformAccount

KIND = "admin_notice"


@dataclass(frozen=True)
class Told:
    """One member to tell, and the sentence meant for them."""

    member_id: int
    text: str


async def record(
    session: AsyncSession,
    settings: Settings,
    *,
    key: str,
    title: str,
    told: Sequence[Told],
    now: datetime,
) -> int | None:
    """Record the notice `key` (once: a second record of the same key does nothing) to each of
    `told`'s direct chats. Returns the announcement's id, or None when it existed."""
    ids = sorted({t.member_id for t in told})
    if not ids:
        return None
    existing = await session.scalar(
        select(col(Announcement.id)).where(col(Announcement.key) == key)
    )
    if existing is not None:
        return None
    people = {
        int(member_id or 0): (name, email)
        for member_id, name, email in await session.execute(
            select(col(Member.id), col(Member.display_name), col(Member.email)).where(
                col(Member.id).in_(ids)
            )
        )
    }
    enabled = set(enabled_platforms(settings))
    direct = sorted(
        {
            (platform, member_id)
            for platform, member_id in await session.execute(
                select(col(PlatformAccount.platform), col(PlatformAccount.member_id)).where(
                    col(PlatformAccount.member_id).in_(ids)
                )
            )
            if platform in enabled
        }
    )
    reached = {member_id for _, member_id in direct}
    targets = [(platform, f"{DIRECT_PREFIX}{member_id}") for platform, member_id in direct]
    if settings.smtp_host:
        targets += [
            ("email", email)
            for member_id, (_, email) in people.items()
            if member_id not in reached and email and not is_placeholder_email(email)
        ]
    items = [
        AnnouncedItem(member_id=t.member_id, name=people.get(t.member_id, ("", ""))[0], text=t.text)
        for t in told
    ]
    row = Announcement(
        key=key[:300],
        kind=KIND,
        title=title[:300],
        payload={"items": [item.to_json() for item in items]},
        created_at=now,
    )
    session.add(row)
    await session.flush()
    assert row.id is not None
    if targets:
        await session.execute(
            insert(Delivery),
            [
                {
                    "announcement_id": row.id,
                    "channel": channel,
                    "target": target,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                }
                for channel, target in dict.fromkeys(targets)
            ],
        )
    return row.id

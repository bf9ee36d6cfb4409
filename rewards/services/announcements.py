"""Announcements: what to post after a rule, a lottery or a celebration awarded someone.

`announce()` is called by whoever awarded (the rule evaluator, the event handler) right after the
awards are written. It records one `Announcement` (unique by `key`, so a re-run of the same
evaluation announces nothing new) and one `Delivery` per place:

- each platform's channel (the reward's `announce` section, else the settings' default);
- each recipient's direct chat on every enabled platform (unless `direct` is false);
- each recipient's email when the reward asks for email and ``SMTP_*`` is set.

Delivering is the notifier's job (`bots`), which has the platform gateways. Several recipients
in one announcement become one card per channel ("folded"), and one direct message each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from rewards.catalog.announce import DEFAULT_ANNOUNCE, AnnounceSpec
from rewards.services.members import is_placeholder_email
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Announcement, Delivery, Member, PlatformAccount

DIRECT_PREFIX = "member:"
"""A delivery target naming a member's direct chat (``member:42``) rather than a channel."""


@dataclass(frozen=True)
class AnnouncedItem:
    """One recipient in an announcement: who, and the line shown for them (the award message)."""

    member_id: int
    name: str
    text: str
    points: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id,
            "name": self.name,
            "text": self.text,
            "points": self.points,
            **({"extra": self.extra} if self.extra else {}),
        }


def enabled_platforms(settings: Settings) -> tuple[str, ...]:
    """Platforms this process can post to: Teams always (the Bot Framework adapter is always
    mounted), Slack with a bot token, Telegram with a bot token."""
    platforms = ["teams"]
    if settings.extra.get("SLACK_BOT_TOKEN"):
        platforms.append("slack")
    if settings.telegram_bot_token:
        platforms.append("telegram")
    return tuple(platforms)


def channel_places(settings: Settings, spec: AnnounceSpec | None) -> list[tuple[str, str]]:
    """(platform, channel) pairs an announcement is posted to."""
    spec = spec or DEFAULT_ANNOUNCE
    defaults = {
        "teams": settings.announce_teams,
        "slack": settings.announce_slack,
        "telegram": settings.telegram_chat_id,
    }
    places = []
    for platform in enabled_platforms(settings):
        place = spec.place(platform, defaults[platform])
        if place:
            places.append((platform, place))
    return places


async def announce(
    db: Database,
    settings: Settings,
    *,
    key: str,
    kind: str,
    title: str,
    items: list[AnnouncedItem],
    now: datetime,
    reward_id: int | None = None,
    spec: AnnounceSpec | None = None,
    payload: dict[str, Any] | None = None,
) -> int | None:
    """Record an announcement and its deliveries; returns its id, or None when `key` was already
    announced (a re-run) or there is nobody to announce."""
    if not items:
        return None
    spec = spec or DEFAULT_ANNOUNCE
    member_ids = [item.member_id for item in items]
    async with db.write() as session:
        existing = await session.scalar(
            select(col(Announcement.id)).where(col(Announcement.key) == key)
        )
        if existing is not None:
            return None
        row = Announcement(
            key=key,
            reward_id=reward_id,
            kind=kind,
            title=title,
            payload={**(payload or {}), "items": [item.to_json() for item in items]},
            created_at=now,
        )
        session.add(row)
        await session.flush()
        assert row.id is not None
        targets: list[tuple[str, str]] = list(channel_places(settings, spec))
        if spec.direct:
            accounts = await session.execute(
                select(col(PlatformAccount.platform), col(PlatformAccount.member_id)).where(
                    col(PlatformAccount.member_id).in_(member_ids)
                )
            )
            enabled = set(enabled_platforms(settings))
            targets += sorted(
                {
                    (platform, f"{DIRECT_PREFIX}{member_id}")
                    for platform, member_id in accounts.all()
                    if platform in enabled
                }
            )
        if spec.email and settings.smtp_host:
            emails = await session.execute(
                select(col(Member.email)).where(
                    col(Member.id).in_(member_ids), col(Member.email).is_not(None)
                )
            )
            targets += [
                ("email", email)
                for (email,) in emails.all()
                if email and not is_placeholder_email(email)
            ]
        for channel, target in dict.fromkeys(targets):
            session.add(
                Delivery(
                    announcement_id=row.id, channel=channel, target=target, next_attempt_at=now
                )
            )
        await session.flush()
        return row.id

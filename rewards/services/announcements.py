"""Announcements: what to post after a rule, a lottery or a celebration awarded someone.

`announce()` is called by whoever awarded (the event handler, the nomination and workflow flows)
right after the awards are written. It records one `Announcement` (unique by `key`, so a re-run of
the same evaluation announces nothing new) and one `Delivery` per place:

- each platform's channel (the reward's `announce` section, else the settings' default);
- each recipient's direct chat on every enabled platform (unless `direct` is false);
- each recipient's email when the reward asks for email and ``SMTP_*`` is set.

Rule awards (the sweep, the scheduler's jobs, lottery winners) are announced from the awards
themselves (`announce_awards`): the batch award writes one ``announce_pending`` row per batch
naming its run and its awards (same transaction as the awards), and one transaction records the
announcement with its deliveries and deletes those rows. A crash between the two leaves the rows,
and the next run announces them: exactly once, however the process stops.

Delivering is the notifier's job (`bots.notifier`), which has the platform gateways. Several
recipients in one announcement become one card per channel ("folded"), and one direct message
each. This module holds the queue the notifier works from:

- `claim_due()` reserves due pending deliveries for one process: the attempt is counted,
  `next_attempt_at` moves to the end of a lease (`LEASE` = the send timeout + a margin) and a
  fresh ``lease_token`` is written in the same statement, so another notifier does not see them as
  due; on PostgreSQL the rows are picked with ``FOR UPDATE SKIP LOCKED``. A process that dies
  mid-send leaves its claims to be taken again when the lease ends.
- `renew()` is the re-check right before sending: a conditional UPDATE on the token that starts a
  fresh lease. A claim whose lease ran out while it waited and was taken by another process is
  not sent; a send bounded by `SEND_TIMEOUT` cannot outlive the lease it starts under.
- `mark_sent()` records the platform's message reference; `mark_failed_attempt()` schedules the
  next attempt after ``DELIVERY_BACKOFF_SECONDS * 2^(attempt-1)`` (at most `MAX_BACKOFF`) or, after
  ``DELIVERY_MAX_ATTEMPTS``, marks the delivery "failed" with the last error; `mark_skipped()`
  records a delivery that cannot happen and is not retried (the bot never met the member there).
  Each mark applies only while the claim is still the caller's (same token, still pending).
- `list_deliveries()` / `list_failures()` and `retry_delivery()` serve ``rewards deliveries``;
  a sent delivery is never re-queued, so nothing is announced twice.
- `went_nowhere()` finds announcements recorded without a single delivery (no channel configured
  and no recipient reachable in a direct chat): ``rewards deliveries list`` and the job's output
  say so, instead of the announcement vanishing silently.

Statuses: "pending" (waiting or leased), "sent", "failed", "skipped". Awards are never touched by
delivering: they are written before their announcement, so a platform outage cannot lose or
repeat one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, any_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.catalog.announce import DEFAULT_ANNOUNCE, AnnounceSpec
from rewards.clock import as_utc
from rewards.errors import NotAvailable, NotFound
from rewards.privacy.preferences import PRIVATE, PUBLIC, celebrations_of
from rewards.services.members import is_placeholder_email
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import (
    Announcement,
    AnnouncePending,
    Award,
    Delivery,
    Member,
    PlatformAccount,
    Reward,
)

log = logging.getLogger(__name__)

NOWHERE = (
    "nowhere to go: no channel is configured for it (ANNOUNCE_TEAMS_CHANNEL, "
    "ANNOUNCE_SLACK_CHANNEL, TELEGRAM_CHAT_ID or the reward's announce section) and no "
    "recipient has a chat account the bot can write to"
)
"""Why an announcement without deliveries was not sent, for the CLI and the job's output."""

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


def ids_in(session: AsyncSession, column: Any, ids: Sequence[int]) -> Any:
    """``column IN ids`` as one bound value however many ids: a PostgreSQL array
    (``= ANY(:ids)``) or, on SQLite, a JSON array read by ``json_each``. Binding 14,000 member
    ids one by one cost ~2 s per announcement."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Integer)))
    values = func.json_each(bindparam(None, json.dumps(list(ids)), type_=String)).table_valued(
        "value"
    )
    return column.in_(select(values.c.value))


async def _record(
    session: AsyncSession,
    settings: Settings,
    *,
    key: str,
    kind: str,
    title: str,
    items: Sequence[AnnouncedItem],
    now: datetime,
    reward_id: int | None,
    spec: AnnounceSpec,
    payload: dict[str, Any] | None,
) -> int | None:
    """Write one announcement and its deliveries in the caller's transaction; None when `key`
    was already announced."""
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
    member_ids = sorted({item.member_id for item in items})
    targets: list[tuple[str, str]] = list(channel_places(settings, spec))
    if spec.direct and member_ids:
        accounts = await session.execute(
            select(col(PlatformAccount.platform), col(PlatformAccount.member_id)).where(
                ids_in(session, col(PlatformAccount.member_id), member_ids)
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
    if spec.email and settings.smtp_host and member_ids:
        emails = await session.execute(
            select(col(Member.email)).where(
                ids_in(session, col(Member.id), member_ids), col(Member.email).is_not(None)
            )
        )
        targets += [
            ("email", email)
            for (email,) in emails.all()
            if email and not is_placeholder_email(email)
        ]
    if not await queue_deliveries(session, row.id, targets, now):
        log.warning("announcement %s (%s) has %s", row.id, title, NOWHERE)
    return row.id


async def queue_deliveries(
    session: AsyncSession,
    announcement_id: int,
    targets: Sequence[tuple[str, str]],
    now: datetime,
) -> int:
    """One pending delivery per distinct (channel, target), due now; returns how many."""
    rows = [
        {
            "announcement_id": announcement_id,
            "channel": channel,
            "target": target,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
        }
        for channel, target in dict.fromkeys(targets)
    ]
    if rows:
        await session.execute(insert(Delivery), rows)
    return len(rows)


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
    allow_empty: bool = False,
) -> int | None:
    """Record an announcement and its deliveries; returns its id, or None when `key` was already
    announced (a re-run) or there is nobody to announce. With `allow_empty`, an announcement
    without recipients (a nomination campaign opening) still goes to the channels."""
    if not items and not allow_empty:
        return None
    async with db.write() as session:
        return await _record(
            session,
            settings,
            key=key,
            kind=kind,
            title=title,
            items=items,
            now=now,
            reward_id=reward_id,
            spec=spec or DEFAULT_ANNOUNCE,
            payload=payload,
        )


async def announce_awards(
    db: Database,
    settings: Settings,
    *,
    reward_id: int,
    kind: str,
    title: str,
    now: datetime,
    spec: AnnounceSpec | None = None,
) -> list[int]:
    """Announce every award of `reward_id` still waiting for its announcement (`AnnouncePending`
    rows); returns the new announcements' ids (one per run, usually one).

    The batch award writes one pending row per batch, in the awards' own transaction; this
    transaction records the announcement and its deliveries and deletes exactly the pending rows
    it names. A crash between the two leaves the rows, so the next run (which finds the awards
    taken and awards nobody) still announces them: no announcement is lost, and none is recorded
    twice (the rows are deleted with it, the key is unique, and on PostgreSQL the pending rows
    are locked while a concurrent run waits). The awards themselves are only read: nothing is
    written to the award rows. The key names the reward, the run and the awards:
    ``reward:{id}:{run}:{digest of the award ids}``."""
    async with db.write() as session:
        query = (
            select(
                col(AnnouncePending.id),
                col(AnnouncePending.run_key),
                col(AnnouncePending.award_ids),
            )
            .where(col(AnnouncePending.reward_id) == reward_id)
            .order_by(col(AnnouncePending.id))
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        pending = (await session.execute(query)).all()
        if not pending:
            return []
        run_of = {int(a): str(p.run_key) for p in pending for a in p.award_ids}
        awards = (
            await session.execute(
                select(
                    col(Award.id),
                    col(Award.member_id),
                    col(Award.message),
                    col(Award.points),
                    col(Member.display_name),
                    col(Member.celebrations),
                    col(Member.celebrations_opt_out),
                )
                .join(Member, col(Member.id) == col(Award.member_id))
                .where(ids_in(session, col(Award.id), sorted(run_of)))
                .order_by(col(Award.member_id), col(Award.id))
            )
        ).all()
        runs: dict[str, list[Any]] = {}
        for found in awards:
            runs.setdefault(run_of[int(found.id)], []).append(found)
        made = []
        for run_key, items_of_run in runs.items():
            digest = hashlib.sha256(",".join(str(a.id) for a in items_of_run).encode()).hexdigest()
            key = f"reward:{reward_id}:{run_key}:{digest[:16]}"
            for suffix, place, told in _audiences(kind, spec or DEFAULT_ANNOUNCE, items_of_run):
                items = [
                    AnnouncedItem(
                        member_id=a.member_id,
                        name=a.display_name,
                        text=a.message or f"{a.display_name} received {title}",
                        points=a.points,
                    )
                    for a in told
                ]
                announcement_id = await _record(
                    session,
                    settings,
                    key=f"{key[: 300 - len(suffix)]}{suffix}",
                    kind=kind,
                    title=title,
                    items=items,
                    now=now,
                    reward_id=reward_id,
                    spec=place,
                    payload={"run_key": run_key},
                )
                if announcement_id is not None:
                    made.append(announcement_id)
        await session.execute(
            delete(AnnouncePending).where(col(AnnouncePending.id).in_([int(p.id) for p in pending]))
        )
        return made


CELEBRATION_KINDS = frozenset({"birthday", "anniversary"})
PRIVATE_SUFFIX = ":private"


def _audiences(
    kind: str, spec: AnnounceSpec, found: Sequence[Any]
) -> list[tuple[str, AnnounceSpec, list[Any]]]:
    """(key suffix, where, whose awards) for one run. A celebration is split by each member's
    choice (`rewards.privacy`): "public" ones as the reward says, "private" ones by direct
    message only (no channel line), "off" ones not at all. Other kinds are one announcement."""
    if kind not in CELEBRATION_KINDS:
        return [("", spec, list(found))]
    public: list[Any] = []
    private: list[Any] = []
    for award in found:
        mode = celebrations_of(award.celebrations, award.celebrations_opt_out)
        if mode == PUBLIC:
            public.append(award)
        elif mode == PRIVATE:
            private.append(award)
    groups: list[tuple[str, AnnounceSpec, list[Any]]] = []
    if public:
        groups.append(("", spec, public))
    if private:
        direct_only = spec.model_copy(
            update={"teams": False, "slack": False, "telegram": False, "direct": True}
        )
        groups.append((PRIVATE_SUFFIX, direct_only, private))
    return groups


# --- delivering ---------------------------------------------------------------------------------

SEND_TIMEOUT = timedelta(seconds=60)
"""The longest one send may take (the notifier cancels it then and counts a failed attempt)."""

LEASE_MARGIN = timedelta(seconds=30)
"""What a lease keeps beyond the send timeout: the re-check before the send and the mark after
it (two short writes) fit in it, so a send can never outlive the lease it started under."""

LEASE = SEND_TIMEOUT + LEASE_MARGIN
"""How long a claimed delivery is reserved for the process that claimed it. The notifier renews
it (`renew`) immediately before sending and bounds the send by `SEND_TIMEOUT`, so a live process
never sends under a lease that ran out; a process that dies mid-send leaves the delivery to be
picked up again once the lease runs out."""


def lease_for(send_timeout: timedelta) -> timedelta:
    """The lease a sender with this send timeout needs: the timeout plus `LEASE_MARGIN`."""
    return send_timeout + LEASE_MARGIN


MAX_BACKOFF = timedelta(hours=1)
"""The longest wait between two attempts, however many attempts came before."""

PENDING, SENT, FAILED, SKIPPED = "pending", "sent", "failed", "skipped"


@dataclass(frozen=True)
class AnnouncementView:
    """What a card needs: the announcement's kind, title, recipients and the reward's icon."""

    id: int
    key: str
    kind: str
    title: str
    items: tuple[AnnouncedItem, ...]
    created_at: datetime
    reward_id: int | None = None
    reward_name: str | None = None
    icon: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    def item_for(self, member_id: int) -> AnnouncedItem | None:
        return next((item for item in self.items if item.member_id == member_id), None)


@dataclass(frozen=True)
class DeliveryView:
    id: int
    announcement_id: int
    channel: str
    target: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    sent_at: datetime | None
    message_ref: str | None
    title: str = ""
    kind: str = ""


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery this process has reserved until `lease_until`, with what to send.

    `attempts` counts this attempt; `token` names this claim: `renew` and the marks below only
    apply while the delivery still carries it (and is still pending), so a process whose lease
    ran out and was taken over can neither send nor overwrite the outcome of the one that took
    over."""

    id: int
    channel: str
    target: str
    attempts: int
    lease_until: datetime
    announcement: AnnouncementView
    member_id: int | None
    """The recipient of a direct message or an email; None for a channel post."""
    token: str = ""
    lease: timedelta = LEASE


def direct_member(target: str) -> int | None:
    """The member id of a ``member:<id>`` target; None for a channel or an address."""
    if not target.startswith(DIRECT_PREFIX):
        return None
    rest = target[len(DIRECT_PREFIX) :]
    return int(rest) if rest.isdigit() else None


def backoff(settings: Settings, attempts: int) -> timedelta:
    """The wait after failed attempt number `attempts` (1, 2, ...): delivery_backoff_seconds,
    doubled after each failure, never more than `MAX_BACKOFF`."""
    exponent = max(attempts - 1, 0)
    base = max(settings.delivery_backoff_seconds, 0)
    if exponent > 30:  # 2**30 times anything is past the cap; avoid huge integers
        return MAX_BACKOFF
    return min(timedelta(seconds=base * 2**exponent), MAX_BACKOFF)


def _delivery_view(row: Delivery, announcement: Announcement | None = None) -> DeliveryView:
    assert row.id is not None
    return DeliveryView(
        id=row.id,
        announcement_id=row.announcement_id,
        channel=row.channel,
        target=row.target,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=as_utc(row.next_attempt_at),
        last_error=row.last_error,
        sent_at=as_utc(row.sent_at) if row.sent_at else None,
        message_ref=row.message_ref,
        title=announcement.title if announcement else "",
        kind=announcement.kind if announcement else "",
    )


def _items(payload: dict[str, Any]) -> tuple[AnnouncedItem, ...]:
    items = []
    for raw in payload.get("items") or []:
        if not isinstance(raw, dict) or not isinstance(raw.get("member_id"), int):
            continue
        items.append(
            AnnouncedItem(
                member_id=raw["member_id"],
                name=str(raw.get("name") or ""),
                text=str(raw.get("text") or ""),
                points=int(raw.get("points") or 0),
                extra=dict(raw.get("extra") or {}),
            )
        )
    return tuple(items)


def _announcement_view(row: Announcement, reward: Reward | None) -> AnnouncementView:
    assert row.id is not None
    payload = dict(row.payload or {})
    icon = payload.get("icon") if isinstance(payload.get("icon"), str) else None
    if not icon and reward is not None:
        defined = (reward.definition or {}).get("icon")
        icon = reward.icon or (defined if isinstance(defined, str) else None)
    return AnnouncementView(
        id=row.id,
        key=row.key,
        kind=row.kind,
        title=row.title,
        items=_items(payload),
        created_at=as_utc(row.created_at),
        reward_id=row.reward_id,
        reward_name=reward.name if reward else None,
        icon=icon or None,
        payload=payload,
    )


async def load_announcement(db: Database, announcement_id: int) -> AnnouncementView | None:
    async with db.read() as session:
        row = await session.get(Announcement, announcement_id)
        if row is None:
            return None
        reward = await session.get(Reward, row.reward_id) if row.reward_id else None
        return _announcement_view(row, reward)


async def claim_due(
    db: Database,
    now: datetime,
    *,
    channels: Iterable[str],
    limit: int = 20,
    lease: timedelta = LEASE,
) -> list[ClaimedDelivery]:
    """Reserve up to `limit` pending deliveries on `channels` whose time has come.

    One write transaction selects the due rows and, in the same statement that reserves them,
    moves `next_attempt_at` to the end of the lease and counts the attempt. Another process
    running the same query sees them as not due until the lease ends, so two notifiers never send
    the same delivery. On PostgreSQL the selection takes row locks with SKIP LOCKED (a racing
    claimer takes other rows instead of waiting) and the UPDATE re-checks the condition; SQLite
    serialises writers with BEGIN IMMEDIATE, so the second claimer sees the first one's result.
    """
    wanted = sorted(set(channels))
    if not wanted or limit <= 0:
        return []
    due = (
        col(Delivery.status) == PENDING,
        col(Delivery.next_attempt_at) <= now,
        col(Delivery.channel).in_(wanted),
    )
    lease_until = now + lease
    token = str(uuid.uuid4())
    async with db.write() as session:
        query = (
            select(col(Delivery.id))
            .where(*due)
            .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
            .limit(limit)
        )
        if db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list((await session.execute(query)).scalars())
        if not ids:
            return []
        claimed = await session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(ids), *due)
            .values(
                attempts=col(Delivery.attempts) + 1, next_attempt_at=lease_until, lease_token=token
            )
            .returning(
                col(Delivery.id),
                col(Delivery.announcement_id),
                col(Delivery.channel),
                col(Delivery.target),
                col(Delivery.attempts),
            )
        )
        rows = claimed.all()
        announcement_ids = {row.announcement_id for row in rows}
        announcements = {
            a.id: a
            for a in (
                await session.execute(
                    select(Announcement).where(col(Announcement.id).in_(announcement_ids))
                )
            ).scalars()
        }
        reward_ids = {a.reward_id for a in announcements.values() if a.reward_id}
        rewards = {
            r.id: r
            for r in (
                await session.execute(select(Reward).where(col(Reward.id).in_(reward_ids)))
            ).scalars()
        }
        emails = {row.target.lower() for row in rows if row.channel == "email"}
        by_email: dict[str, int] = {}
        if emails:
            found = await session.execute(
                select(col(Member.email), col(Member.id)).where(
                    func.lower(col(Member.email)).in_(emails)
                )
            )
            by_email = {email.lower(): member_id for email, member_id in found.all() if member_id}
    views = {
        a_id: _announcement_view(a, rewards.get(a.reward_id) if a.reward_id else None)
        for a_id, a in announcements.items()
        if a_id is not None
    }
    result = []
    for row in sorted(rows, key=lambda r: r.id):
        member_id = (
            by_email.get(row.target.lower())
            if row.channel == "email"
            else direct_member(row.target)
        )
        result.append(
            ClaimedDelivery(
                id=row.id,
                channel=row.channel,
                target=row.target,
                attempts=row.attempts,
                lease_until=lease_until,
                announcement=views[row.announcement_id],
                member_id=member_id,
                token=token,
                lease=lease,
            )
        )
    return result


def _still_ours(claim: ClaimedDelivery) -> tuple[Any, ...]:
    return (
        col(Delivery.id) == claim.id,
        col(Delivery.status) == PENDING,
        col(Delivery.lease_token) == claim.token,
    )


async def renew(db: Database, claim: ClaimedDelivery, now: datetime) -> ClaimedDelivery | None:
    """Re-check the claim right before sending and start a fresh lease from `now`; None when the
    delivery is no longer ours (the lease ran out while this process waited, and another claimed
    it, sent it, or it was given back): then it must not be sent.

    One conditional UPDATE on the claim's token: if it matches, nobody else can have claimed the
    delivery (a claim writes a new token), and the new lease outlasts a send bounded by the send
    timeout, so nobody else can claim it before this send is over."""
    lease_until = now + claim.lease
    async with db.write() as session:
        done = await session.execute(
            update(Delivery)
            .where(*_still_ours(claim))
            .values(next_attempt_at=lease_until)
            .returning(col(Delivery.id))
        )
        if done.first() is None:
            return None
    return replace(claim, lease_until=lease_until)


async def _mark(db: Database, claim: ClaimedDelivery, **values: Any) -> bool:
    async with db.write() as session:
        done = await session.execute(
            update(Delivery).where(*_still_ours(claim)).values(**values).returning(col(Delivery.id))
        )
        return done.first() is not None


def _error_text(error: str) -> str:
    return error.strip()[:2000] or "unknown error"


async def mark_sent(
    db: Database, claim: ClaimedDelivery, now: datetime, message_ref: str = ""
) -> bool:
    """Record a successful send; False when the claim was no longer ours (it is sent anyway)."""
    return await _mark(
        db,
        claim,
        status=SENT,
        sent_at=now,
        message_ref=(message_ref or None),
        last_error=None,
        lease_token=None,
    )


async def mark_skipped(db: Database, claim: ClaimedDelivery, now: datetime, reason: str) -> bool:
    """Record that there is nothing to send and nothing to retry (the bot never met the member
    on that platform); the reason stays visible in `rewards deliveries list`."""
    return await _mark(db, claim, status=SKIPPED, last_error=_error_text(reason), lease_token=None)


async def mark_failed_attempt(
    db: Database,
    settings: Settings,
    claim: ClaimedDelivery,
    now: datetime,
    error: str,
    *,
    final: bool = False,
) -> str:
    """Record a failed attempt: retry after `backoff()` while attempts remain, else (or when
    `final`) mark it failed for good. Returns the new status ("pending" or "failed")."""
    if final or claim.attempts >= max(settings.delivery_max_attempts, 1):
        await _mark(db, claim, status=FAILED, last_error=_error_text(error), lease_token=None)
        return FAILED
    await _mark(
        db,
        claim,
        next_attempt_at=now + backoff(settings, claim.attempts),
        last_error=_error_text(error),
        lease_token=None,
    )
    return PENDING


async def release(db: Database, claim: ClaimedDelivery, now: datetime) -> bool:
    """Give a claim back without counting the attempt (the process is stopping before sending)."""
    return await _mark(
        db, claim, attempts=claim.attempts - 1, next_attempt_at=now, lease_token=None
    )


async def list_deliveries(
    db: Database, *, status: str | None = None, failed: bool = False, limit: int = 200
) -> list[DeliveryView]:
    """Deliveries, newest first; `failed` lists the ones that need a person (failed, skipped)."""
    query = (
        select(Delivery, Announcement)
        .join(Announcement, col(Announcement.id) == col(Delivery.announcement_id))
        .order_by(col(Delivery.id).desc())
        .limit(limit)
    )
    if failed:
        query = query.where(col(Delivery.status).in_((FAILED, SKIPPED)))
    elif status:
        query = query.where(col(Delivery.status) == status)
    async with db.read() as session:
        rows = (await session.execute(query)).all()
        return [_delivery_view(delivery, announcement) for delivery, announcement in rows]


async def list_failures(db: Database, *, limit: int = 200) -> list[DeliveryView]:
    """Deliveries that gave up (failed after the last attempt) or were skipped, newest first."""
    return await list_deliveries(db, failed=True, limit=limit)


async def get_delivery(db: Database, delivery_id: int) -> DeliveryView | None:
    async with db.read() as session:
        row = await session.get(Delivery, delivery_id)
        if row is None:
            return None
        return _delivery_view(row, await session.get(Announcement, row.announcement_id))


async def retry_delivery(db: Database, delivery_id: int, now: datetime) -> DeliveryView:
    """Queue a failed or skipped delivery again with a fresh set of attempts.

    A sent delivery is refused (it would be sent twice); a pending one is made due now, unless a
    notifier holds its lease (it may be sending right now; it is left to finish)."""
    async with db.write() as session:
        row = await session.get(Delivery, delivery_id)
        if row is None:
            raise NotFound(f"There is no delivery {delivery_id}.")
        if row.status == SENT:
            raise NotAvailable(f"Delivery {delivery_id} was already sent; it is not sent again.")
        leased = row.lease_token is not None and as_utc(row.next_attempt_at) > as_utc(now)
        if row.status != PENDING:
            row.attempts = 0
        row.status = PENDING
        if not leased:
            row.next_attempt_at = now
        session.add(row)
        await session.flush()
        return _delivery_view(row, await session.get(Announcement, row.announcement_id))


@dataclass(frozen=True)
class Undelivered:
    """An announcement recorded with no delivery at all: nothing was, or will be, sent."""

    announcement_id: int
    kind: str
    title: str
    created_at: datetime


async def went_nowhere(
    db: Database, *, ids: Sequence[int] | None = None, limit: int = 100
) -> list[Undelivered]:
    """Announcements without a single delivery row, newest first (only among `ids` if given):
    nothing was configured to receive them. The rows are kept, so fixing the settings and
    announcing again is a person's decision, not a silent loss."""
    no_delivery = ~(
        select(col(Delivery.id))
        .where(col(Delivery.announcement_id) == col(Announcement.id))
        .exists()
    )
    query = (
        select(
            col(Announcement.id),
            col(Announcement.kind),
            col(Announcement.title),
            col(Announcement.created_at),
        )
        .where(no_delivery)
        .order_by(col(Announcement.id).desc())
        .limit(limit)
    )
    if ids is not None:
        if not ids:
            return []
        query = query.where(col(Announcement.id).in_(list(ids)))
    async with db.read() as session:
        rows = (await session.execute(query)).all()
    return [Undelivered(int(i or 0), str(k), str(t), as_utc(c)) for i, k, t, c in rows]

"""Forgetting a member (`/forget me`, `rewards members forget`, the API's admin route).

The member's row stays, as an anonymous placeholder ("Former member", an address under
``.invalid``, inactive, hidden, never celebrated), so every ledger entry, award, kudos, vote and
redemption keeps its member: balances, totals and other people's history still add up. What is
erased, in one transaction:

- the profile: name, email, job code, department, manager, birthday, hire date, zone, locale,
  language, groups; the member is no longer anyone's manager;
- the ways to reach or recognise them: platform accounts, link codes, direct-chat references,
  activity days and streak, their conversation state, and pending deliveries to them;
- free text they wrote: kudos messages, badge messages and revocation reasons, nomination
  reasons, redemption notes (and decisions recorded under their name);
- their name, email and usernames wherever others' text or recorded payloads carry them: kudos
  and badges they received, nominations of them, their ledger notes, announcements, outbox
  events, hook payloads, API idempotency records and audit paths, campaign outcomes, other
  people's conversation state (dropped: those conversations start again).

Rows about the member are found by indexed member columns. The recorded payloads (announcements,
outbox, idempotency, audit, conversations, campaigns, redemption decisions) have no member
column, so they are searched for the member's strings: one pass over those tables, acceptable
for a rare request and kept out of every chat turn's path.

Because the accounts are gone, the same person writing to the bot again is admitted as a new
member with nothing (under MEMBERSHIP=open), and an HR import can bring them back by email.
Forgetting twice is harmless: the second call finds the placeholder and changes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from rewards.errors import UnknownMember
from rewards.privacy.preferences import HIDDEN, OFF
from rewards.services.members import normalise_email
from rewards.store.db import Database

PLACEHOLDER_NAME = "Former member"
PLACEHOLDER_DOMAIN = "forgotten.invalid"
REMOVED = "(removed at the author's request)"
"""What a kudos message or nomination reason its author asked to erase reads as (the columns
are NOT NULL: the row stays, its words go)."""


def _table(name: str) -> Any:
    return SQLModel.metadata.tables[name]


MEMBER = _table("member")


def placeholder_email(member_id: int) -> str:
    return f"forgotten-{member_id}@{PLACEHOLDER_DOMAIN}"


@dataclass(frozen=True)
class Erasure:
    """What forgetting did (counts of rows changed), or `already` when it had been done."""

    member_id: int
    already: bool = False
    accounts: int = 0
    texts: int = 0
    records: int = 0


class _Scrubber:
    """Replaces the member's strings in text and JSON values: `anywhere` ones (their email) in
    any position, `words` (names, usernames, platform ids) only as whole words, so that erasing
    "Ana" leaves "banana" alone."""

    def __init__(self, anywhere: Iterable[str], words: Iterable[str]) -> None:
        self.anywhere = sorted({n for n in anywhere if n}, key=len, reverse=True)
        self.words = sorted({n for n in words if n and len(n) >= 2}, key=len, reverse=True)
        self.needles = [*self.anywhere, *self.words]
        parts = [re.escape(n) for n in self.anywhere]
        parts += [rf"(?<!\w){re.escape(n)}(?!\w)" for n in self.words]
        self.pattern = re.compile("|".join(parts), re.IGNORECASE) if parts else None

    def text(self, value: str) -> str:
        return value if self.pattern is None else self.pattern.sub(PLACEHOLDER_NAME, value)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value

    def like(self, column: Any) -> Any:
        """SQL: the column (as text) contains any needle, raw or as JSON escapes it."""
        forms = set()
        for word in self.needles:
            forms.add(word.lower())
            forms.add(json.dumps(word)[1:-1].lower())
        text = func.lower(cast(column, String))
        return or_(*(text.contains(form, autoescape=True) for form in sorted(forms)))


async def forget_member(db: Database, member_id: int, *, now: datetime) -> Erasure:
    """Erase the member's personal data, keeping their rows as an anonymous placeholder."""
    async with db.write() as session:
        query = select(
            MEMBER.c.id, MEMBER.c.email, MEMBER.c.display_name, MEMBER.c.forgotten_at
        ).where(MEMBER.c.id == member_id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        row = (await session.execute(query)).first()
        if row is None:
            raise UnknownMember("I don't know that member.")
        if row.forgotten_at is not None:
            return Erasure(member_id, already=True)
        return await _forget_in(session, row, now)


async def forget_by_email(db: Database, email: str, *, now: datetime) -> Erasure:
    """`forget_member` for the member with this email (the admin's way to name them)."""
    address = normalise_email(email)
    async with db.read() as session:
        member_id = await session.scalar(select(MEMBER.c.id).where(MEMBER.c.email == address))
    if member_id is None:
        raise UnknownMember(f"No member has the email {address}.")
    return await forget_member(db, int(member_id), now=now)


async def _forget_in(session: AsyncSession, member: Any, now: datetime) -> Erasure:
    member_id = int(member.id)
    t = _table
    account = t("platform_account")
    accounts = (
        await session.execute(
            select(
                account.c.platform, account.c.tenant, account.c.user_id, account.c.username
            ).where(account.c.member_id == member_id)
        )
    ).all()
    words = [member.display_name, member.email.split("@", 1)[0]]
    for found in accounts:
        words.append(found.user_id)
        if found.username:
            words.append(found.username)
    scrub = _Scrubber([member.email], words)

    # Who they were, and how to reach them.
    state = t("conversation_state")
    for found in accounts:
        await session.execute(
            delete(state).where(
                state.c.platform == found.platform,
                state.c.tenant == found.tenant,
                state.c.user_id == found.user_id,
            )
        )
    gone = _changed(await session.execute(delete(account).where(account.c.member_id == member_id)))
    for name in ("link_code", "member_group", "member_activity", "member_streak"):
        table = t(name)
        await session.execute(delete(table).where(table.c.member_id == member_id))
    channel = t("channel_reference")
    await session.execute(delete(channel).where(channel.c.member_id == member_id))
    delivery = t("delivery")
    await session.execute(
        delete(delivery).where(
            delivery.c.status == "pending",
            delivery.c.target.in_((f"member:{member_id}", member.email)),
        )
    )
    await session.execute(
        update(MEMBER).where(MEMBER.c.manager_id == member_id).values(manager_id=None)
    )
    await session.execute(
        update(MEMBER)
        .where(MEMBER.c.id == member_id)
        .values(
            email=placeholder_email(member_id),
            display_name=PLACEHOLDER_NAME,
            job_code=None,
            department=None,
            manager_id=None,
            birthday_month=None,
            birthday_day=None,
            birth_year=None,
            hire_date=None,
            timezone=None,
            locale=None,
            reply_language=None,
            active=False,
            leaderboard_choice=HIDDEN,
            celebrations=OFF,
            forgotten_at=now,
            updated_at=now,
            # A placeholder gives nothing: an admin's lock (and its reason) has no one to hold.
            giving_locked_at=None,
            giving_lock_reason=None,
        )
    )

    # Free text they wrote.
    texts = 0
    kudos, award, nomination, redemption = (
        t("kudos"),
        t("award"),
        t("nomination"),
        t("redemption"),
    )
    texts += _changed(
        await session.execute(
            update(kudos).where(kudos.c.giver_id == member_id).values(message=REMOVED)
        )
    )
    texts += _changed(
        await session.execute(
            update(award)
            .where(award.c.giver_id == member_id, award.c.message.is_not(None))
            .values(message=None)
        )
    )
    texts += _changed(
        await session.execute(
            update(award)
            .where(award.c.revoked_by_id == member_id, award.c.revoke_reason.is_not(None))
            .values(revoke_reason=None)
        )
    )
    texts += _changed(
        await session.execute(
            update(nomination).where(nomination.c.nominator_id == member_id).values(reason=REMOVED)
        )
    )
    texts += _changed(
        await session.execute(
            update(redemption)
            .where(redemption.c.member_id == member_id, redemption.c.note.is_not(None))
            .values(note=None)
        )
    )
    await session.execute(update(award).where(award.c.member_id == member_id).values(context={}))

    # Their name in what others wrote about them, and in recorded payloads.
    receiver = t("kudos_receiver")
    received = select(receiver.c.kudos_id).where(receiver.c.member_id == member_id)
    records = 0
    records += await _scrub(session, scrub, kudos, ("message",), kudos.c.id.in_(received))
    records += await _scrub(
        session, scrub, award, ("message", "revoke_reason"), award.c.member_id == member_id
    )
    records += await _scrub(
        session, scrub, nomination, ("reason",), nomination.c.nominee_id == member_id
    )
    ledger = t("ledger_entry")
    records += await _scrub(session, scrub, ledger, ("note",), ledger.c.member_id == member_id)
    records += await _scrub(
        session, scrub, redemption, ("decided_by", "fulfilled_by", "reason", "note"), None
    )
    records += await _scrub(session, scrub, t("announcement"), ("title", "payload"), None)
    records += await _scrub(session, scrub, t("outbox_event"), ("payload",), None)
    records += await _scrub(session, scrub, t("event_hook"), ("payload",), None)
    records += await _scrub(session, scrub, t("api_idempotency"), ("body",), None)
    records += await _scrub(session, scrub, t("api_audit"), ("path",), None)
    # The admin audit log keeps each action (who did what, when) with the member's strings
    # replaced, whether they were its target or the admin who acted.
    records += await _scrub(
        session, scrub, t("admin_audit"), ("actor", "target_label", "reason"), None
    )
    records += await _scrub(session, scrub, t("nomination_campaign"), ("outcome", "messages"), None)
    records += await _scrub(session, scrub, t("delivery"), ("target", "last_error"), None)
    # Someone else's unfinished dialog naming them (a badge for them) simply ends.
    records += _changed(await session.execute(delete(state).where(scrub.like(state.c["values"]))))
    return Erasure(member_id, accounts=gone, texts=texts, records=records)


def _changed(result: object) -> int:
    """Rows an UPDATE or DELETE changed."""
    return int(getattr(result, "rowcount", 0) or 0)


async def _scrub(
    session: AsyncSession,
    scrub: _Scrubber,
    table: Any,
    columns: Sequence[str],
    where: Any,
) -> int:
    """Rewrite the rows of `table` (narrowed by `where`) whose `columns` carry the member's
    strings; returns how many rows changed."""
    if not scrub.needles:
        return 0
    key = list(table.primary_key.columns)
    wanted = [table.c[name] for name in columns]
    matches = or_(*(scrub.like(column) for column in wanted))
    query = select(*key, *wanted).where(matches if where is None else (where & matches))
    changed = 0
    for row in (await session.execute(query)).all():
        values = {}
        for name in columns:
            before = row._mapping[table.c[name]]
            after = scrub.value(before)
            if after != before:
                values[name] = after
        if values:
            ident = [k == row._mapping[k] for k in key]
            await session.execute(update(table).where(*ident).values(values))
            changed += 1
    return changed

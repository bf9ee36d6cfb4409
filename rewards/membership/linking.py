"""Account linking: `/link` on one platform, `/link CODE` on another, one member and one ledger.

Emails join a person's accounts automatically where platforms share them (Teams, Slack). Telegram
never does, and some workspaces hide emails, so a member can join an account themselves:

1. `issue_code` gives the member a one-time code (8 characters from an alphabet without look-alike
   characters, about 10^12 possibilities), valid for `LINK_TTL`. Only its SHA-256 is stored, and
   issuing a new code spends the member's older unused ones.
2. `redeem_code`, from an account on another platform, spends the code (a conditional update, so
   of two concurrent redemptions one wins) and joins that account to the code's member.

An account that already belongs to another member moves only when that member is an empty shell
(a placeholder email, no other platform, no points, awards or kudos): such a member was made on
first sight and is deactivated after the move. An account with its own history is never moved
silently; the person is told to ask an admin. A refused redemption writes nothing, and the code
stays usable until it expires.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from rewards.clock import Clock, SystemClock
from rewards.errors import InvalidInput, NotAllowed
from rewards.membership.admission import Person
from rewards.membership.errors import BotRefused
from rewards.services.members import (
    ACCOUNT,
    MEMBER,
    MemberView,
    _account_member_id_in,
    _get_member_in,
    _link_account_in,
    _profile,
    is_placeholder_email,
)
from rewards.store.db import Database
from rewards.store.models import Award, Kudos, KudosReceiver, LedgerEntry, LinkCode

LINK_TTL = timedelta(minutes=10)
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no I, O, 0, 1
CODE_LENGTH = 8

LINK_CODE = SQLModel.metadata.tables[LinkCode.__tablename__]
LEDGER = SQLModel.metadata.tables[LedgerEntry.__tablename__]
AWARD = SQLModel.metadata.tables[Award.__tablename__]
KUDOS = SQLModel.metadata.tables[Kudos.__tablename__]
KUDOS_RECEIVER = SQLModel.metadata.tables[KudosReceiver.__tablename__]

BAD_CODE = (
    "That link code is wrong or has expired. Send /link on your other platform to get a new one."
)


def normalise_code(raw: str) -> str:
    """`abcd-efgh` or `ABCD EFGH` -> `ABCDEFGH`."""
    return "".join(c for c in raw.upper() if c.isalnum())


def shown_code(code: str) -> str:
    """`ABCDEFGH` -> `ABCD-EFGH`, easier to read and type."""
    return f"{code[:4]}-{code[4:]}"


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Linked:
    """The outcome of a redemption: the member the account now belongs to."""

    member: MemberView
    platform: str
    already: bool = False  # the account was this member's already


async def issue_code(
    db: Database, member_id: int, platform: str, *, clock: Clock | None = None
) -> tuple[str, datetime]:
    """A new one-time code for `member_id`, issued on `platform`; returns (shown code, expiry)."""
    now = (clock or SystemClock()).now()
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    expires = now + LINK_TTL
    async with db.write() as session:
        await _get_member_in(session, member_id)
        await session.execute(
            delete(LINK_CODE).where(
                LINK_CODE.c.member_id == member_id, LINK_CODE.c.used_at.is_(None)
            )
        )
        await session.execute(
            insert(LINK_CODE).values(
                code_hash=_hash(code),
                member_id=member_id,
                platform=platform,
                created_at=now,
                expires_at=expires,
            )
        )
    return shown_code(code), expires


async def _has_history(session: AsyncSession, member_id: int) -> bool:
    """Points, awards (given or received) or kudos (given or received)."""
    checks = (
        exists().where(LEDGER.c.member_id == member_id),
        exists().where(AWARD.c.member_id == member_id),
        exists().where(AWARD.c.giver_id == member_id),
        exists().where(KUDOS.c.giver_id == member_id),
        exists().where(KUDOS_RECEIVER.c.member_id == member_id),
    )
    for check in checks:
        if (await session.execute(select(check))).scalar():
            return True
    return False


async def _is_empty_shell(session: AsyncSession, member_id: int, platform: str) -> bool:
    view = await _get_member_in(session, member_id)
    if not is_placeholder_email(view.email):
        return False
    if any(a.platform != platform for a in view.accounts):
        return False
    return not await _has_history(session, member_id)


async def redeem_code(
    db: Database, code: str, person: Person, *, clock: Clock | None = None
) -> Linked:
    """Join `person`'s account to the member who was given `code`."""
    if person.is_bot:
        raise BotRefused()
    normal = normalise_code(code)
    if len(normal) != CODE_LENGTH or any(c not in ALPHABET for c in normal):
        raise InvalidInput(BAD_CODE)
    p = _profile(person.platform, person.user_id, person.tenant, None, None, person.username, None)
    now = (clock or SystemClock()).now()
    async with db.write() as session:
        row = (
            await session.execute(
                select(LINK_CODE.c.id, LINK_CODE.c.member_id, LINK_CODE.c.platform).where(
                    LINK_CODE.c.code_hash == _hash(normal),
                    LINK_CODE.c.used_at.is_(None),
                    LINK_CODE.c.expires_at > now,
                )
            )
        ).one_or_none()
        if row is None:
            raise InvalidInput(BAD_CODE)
        if row.platform == p.platform:
            raise InvalidInput(
                f"That code was made on {p.platform.title()}: send it from your account on"
                " another platform to join the two."
            )
        target = await _get_member_in(session, row.member_id)
        if not target.active:
            raise InvalidInput(BAD_CODE)
        claimed = await session.execute(
            update(LINK_CODE)
            .where(LINK_CODE.c.id == row.id, LINK_CODE.c.used_at.is_(None))
            .values(used_at=now)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]  # spent a moment ago
            raise InvalidInput(BAD_CODE)
        holder = await _account_member_id_in(session, p.platform, p.user_id, p.tenant)
        if holder == target.id:
            return Linked(target, p.platform, already=True)
        if holder is None:
            await _link_account_in(
                session,
                target.id,
                p.platform,
                p.user_id,
                tenant=p.tenant,
                username=p.username,
                clock=clock,
            )
        else:
            if not await _is_empty_shell(session, holder, p.platform):
                raise NotAllowed(
                    f"This {p.platform.title()} account already has its own rewards history,"
                    " so I can't join it by myself. Please ask your admin to merge the two."
                )
            await session.execute(
                update(ACCOUNT)
                .where(ACCOUNT.c.member_id == holder, ACCOUNT.c.platform == p.platform)
                .values(member_id=target.id, tenant=p.tenant or ACCOUNT.c.tenant)
            )
            await session.execute(
                update(MEMBER).where(MEMBER.c.id == holder).values(active=False, updated_at=now)
            )
        return Linked(await _get_member_in(session, target.id), p.platform)

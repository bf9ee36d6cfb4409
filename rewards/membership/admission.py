"""Admission: from what a platform says about a person to a member, or a polite refusal.

The adapters call `admit` only for requests inside the boundary (`Boundary`), so every link made
here, including a merge by email with a member imported from HR, stays inside the organisation.

Who is admitted:

- a known account (linked earlier, or imported by platform id or `@username`) always;
- under `MEMBERSHIP=directory`, otherwise only someone whose platform email matches an existing
  member, whose account is then linked to that member;
- under `MEMBERSHIP=open` (the default) anyone else as a new member, except on Telegram, which is
  never open to the world: there a stranger is admitted only when `vouched` (the adapter checked
  they belong to one of the organisation's chats);
- never a bot.

A refusal raises before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from rewards.clock import Clock
from rewards.membership.errors import (
    BOT_REFUSAL,
    BotRefused,
    NotAMember,
    not_a_member_sentence,
)
from rewards.services.members import (
    ACCOUNT,
    MemberView,
    _account_member_id_in,
    _get_member_in,
    ensure_member_for_account,
    find_by_email,
    normalise_email,
    normalise_platform,
    normalise_username,
    pending_user_id,
    turn_account_holder,
)
from rewards.store.db import Database

OPEN = "open"
DIRECTORY = "directory"


@dataclass(frozen=True)
class Person:
    """What a platform told us about someone (nothing here has been trusted or stored yet)."""

    platform: str
    user_id: str
    tenant: str = ""
    email: str | None = None
    display_name: str | None = None
    username: str | None = None
    timezone: str | None = None
    is_bot: bool = False


async def known_member(
    db: Database, platform: str, user_id: str, tenant: str = "", username: str | None = None
) -> MemberView | None:
    """The member holding this account (or the imported `@username` it claims); reads only.

    An account the turn already looked up (the adapter's look-up of everyone a request names)
    is answered from the turn's cache, without a block of its own."""
    platform = normalise_platform(platform)
    user_id, tenant = user_id.strip(), tenant.strip()
    name = normalise_username(username)
    found, view = turn_account_holder(db, platform, user_id, tenant)
    if found and (view is not None or not name):
        return view
    async with db.read() as session:
        member_id = await _account_member_id_in(session, platform, user_id, tenant)
        if member_id is None and name:
            member_id = (
                await session.execute(
                    select(ACCOUNT.c.member_id)
                    .where(
                        ACCOUNT.c.platform == platform,
                        ACCOUNT.c.tenant == "",
                        ACCOUNT.c.user_id == pending_user_id(name),
                    )
                    .limit(1)
                )
            ).scalar_one_or_none()
        return None if member_id is None else await _get_member_in(session, member_id)


def strangers_allowed(platform: str, policy: str, *, vouched: bool = False) -> bool:
    """Whether someone unknown (no account, no matching email) may become a member."""
    if policy != OPEN:
        return False
    return normalise_platform(platform) != "telegram" or vouched


async def refusal_for(
    db: Database, person: Person, *, policy: str = OPEN, vouched: bool = False
) -> str | None:
    """Read only: the sentence `admit` would refuse `person` with, or None when it would admit
    them. Lets an adapter vet everyone a request names before it writes anything for any."""
    if person.is_bot:
        return BOT_REFUSAL
    if strangers_allowed(person.platform, policy, vouched=vouched):
        return None  # decided without a query
    if await known_member(db, person.platform, person.user_id, person.tenant, person.username):
        return None
    if person.email and await find_by_email(db, normalise_email(person.email)) is not None:
        return None
    return not_a_member_sentence(normalise_platform(person.platform))


async def admit(
    db: Database,
    person: Person,
    *,
    policy: str = OPEN,
    vouched: bool = False,
    clock: Clock | None = None,
) -> MemberView:
    """The member behind `person`, created or linked when the policy allows; else NotAMember
    (or BotRefused), with nothing written."""
    if person.is_bot:
        raise BotRefused()
    known = await known_member(db, person.platform, person.user_id, person.tenant, person.username)
    if known is None:
        matched = await find_by_email(db, normalise_email(person.email)) if person.email else None
        if matched is None and not strangers_allowed(person.platform, policy, vouched=vouched):
            raise NotAMember(not_a_member_sentence(normalise_platform(person.platform)))
    return await ensure_member_for_account(
        db,
        person.platform,
        person.user_id,
        tenant=person.tenant,
        email=person.email,
        display_name=person.display_name,
        username=person.username,
        timezone=person.timezone,
        clock=clock,
    )

"""Who does `@ana` mean? Matching chat mentions to members, for one-shot commands.

A mention matches, case-insensitively: an email address; the local part of an email
(`@ana.lopez`); or a display name, where dots and underscores stand for spaces (`@Ana.Lima`,
`@"Ana Lima"`). Only active members are candidates. An ambiguous or unknown mention raises
`UnknownMember` with a sentence listing the candidates: guessing would thank the wrong person.
"""

from __future__ import annotations

from sqlalchemy import func, or_

from rewards.errors import UnknownMember
from rewards.services.members import (
    MEMBER,
    PLACEHOLDER_DOMAIN_SUFFIX,
    MemberView,
    _members_where_in,
    find_by_email,
    is_placeholder_email,
    normalise_email,
)
from rewards.store.db import Database

MAX_CANDIDATES = 5


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def candidates(db: Database, mention: str) -> list[MemberView]:
    """Every active member the mention could mean (an exact email match wins outright)."""
    name = mention.strip().lstrip("@").strip().strip('"').strip()
    if not name:
        return []
    if "@" in name:
        found = await find_by_email(db, name)
        return [found] if found is not None and found.active else []
    lowered = name.lower()
    spaced = " ".join(lowered.replace(".", " ").replace("_", " ").split())
    async with db.read() as session:
        return await _members_where_in(
            session,
            MEMBER.c.active.is_(True),
            or_(
                func.lower(MEMBER.c.email).like(_like_escape(lowered) + "@%", escape="\\"),
                func.lower(MEMBER.c.display_name) == lowered,
                func.lower(MEMBER.c.display_name) == spaced,
            ),
        )


def _shown(member: MemberView) -> str:
    """A candidate in a "could be" sentence: the name and the address, or for a member with only
    a placeholder address (`teams-user-…@teams.invalid`: an Emulator or Telegram user) the name
    and the platform they were seen on; the placeholder means nothing to a person."""
    if is_placeholder_email(member.email):
        platform = member.email.rpartition("@")[2].removesuffix(PLACEHOLDER_DOMAIN_SUFFIX)
        return f"{member.display_name} (on {platform.title()})"
    return f"{member.display_name} ({normalise_email(member.email)})"


async def resolve_mention(db: Database, mention: str) -> MemberView:
    """The one member a mention names; raises UnknownMember (with candidates) otherwise."""
    shown = mention.strip()
    if not shown.startswith("@") and "@" not in shown:
        shown = "@" + shown
    found = await candidates(db, mention)
    if len(found) == 1:
        return found[0]
    if not found:
        if "@" in shown.lstrip("@"):
            # They already typed an address: suggesting one would be no help.
            raise UnknownMember(
                f"I don't know anyone with the address {shown.lstrip('@')}. "
                "Check the spelling, or ask an admin to add them."
            )
        raise UnknownMember(
            f"I don't know anyone called {shown}. Try their email address, e.g. @name@company.com."
        )
    # A placeholder address (`teams-user-…@teams.invalid`, an Emulator or Telegram user) means
    # nothing to a person: such a candidate is shown by name alone.
    listed = ", ".join(_shown(m) for m in found[:MAX_CANDIDATES])
    more = f" and {len(found) - MAX_CANDIDATES} more" if len(found) > MAX_CANDIDATES else ""
    advice = (
        "Please pick them with a real @-mention (from the chat's suggestions) or use their "
        "email address."
        if any(is_placeholder_email(m.email) for m in found[:MAX_CANDIDATES])
        else "Please use their email address."
    )
    raise UnknownMember(f"{shown} could be {listed}{more}. {advice}")

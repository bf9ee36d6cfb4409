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
    MemberView,
    _members_where_in,
    find_by_email,
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
    listed = ", ".join(
        f"{m.display_name} ({normalise_email(m.email)})" for m in found[:MAX_CANDIDATES]
    )
    more = f" and {len(found) - MAX_CANDIDATES} more" if len(found) > MAX_CANDIDATES else ""
    raise UnknownMember(f"{shown} could be {listed}{more}. Please use their email address.")

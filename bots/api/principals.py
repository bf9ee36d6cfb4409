"""Who an API request acts as: the key itself.

A key is not a person. Its scope says what it may do: `write` keys record what happens in the
organisation (kudos and badges from a named `giver`, the seed's contract; members' plain HR
fields; attendance, data, events, enrolments), and only `admin` keys do what the chat reserves
for admins. Most admin actions are whole routes marked `@needs("admin")`; two checks here cover
the rest:

- `acting_member`: a body's `by` / `as` (act as that member, whose own rights the service then
  checks) is accepted from admin keys only. Without one, an admin key acts as itself: the
  services' "system" (`by=None`), with the key recorded on what it made.
- `member_change_reasons`: a member upsert by a write key may change plain fields, but not what
  decides power or identity: `groups` of an existing member, anything that makes someone an admin
  (their email or groups named in REWARDS_ADMINS), or a platform id (`teams_aad_id`,
  `slack_user_id`, `telegram_user_id`, `telegram_username`) they do not already have, since
  linking an id to a member hands that chat account their identity.

Both refuse with 403 problem+json before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from bots.api.auth import api_key
from bots.server import CORE
from rewards.catalog.permissions import Subject
from rewards.errors import RewardsError
from rewards.services import members
from rewards.services.admins import is_admin
from rewards.services.apikeys import scope_allows
from rewards.services.members import MemberView
from rewards.services.members_import import MemberRecord, parse_rows
from rewards.settings import Settings

ADMIN = "admin"
PLATFORM_FIELDS = ("teams_aad_id", "slack_user_id", "telegram_user_id", "telegram_username")
_SOURCE = Path("the request")


class AdminScopeNeeded(RewardsError):
    """A write key asked for something only an admin key may do."""

    status = 403
    code = "admin-scope-needed"


def is_admin_key(request: web.Request) -> bool:
    return scope_allows(api_key(request).scope, ADMIN)


def require_admin(request: web.Request, what: str) -> None:
    """Raise AdminScopeNeeded unless the request's key has the admin scope; `what` completes
    "... needs an API key with the admin scope"."""
    if not is_admin_key(request):
        scope = api_key(request).scope
        raise AdminScopeNeeded(
            f"{what} needs an API key with the admin scope; this key has the {scope} scope."
        )


async def acting_member(request: web.Request, ref: int | str | None, field: str) -> int | None:
    """The member a body's `by` / `as` (`field`) names, or None: the key acts as itself.

    Only admin keys may name someone; the service then checks that member's own rights."""
    if ref is None:
        return None
    require_admin(request, f"Acting as a member (`{field}`)")
    return (await members.resolve(request.app[CORE].db, ref)).id


# ---- member upserts ---------------------------------------------------------------------------


def _subject(email: str, groups: tuple[str, ...] | frozenset[str]) -> Subject:
    return Subject(id=0, email=email, job_code=None, department=None, groups=frozenset(groups))


def _account_reasons(record: MemberRecord, current: MemberView | None) -> list[str]:
    """A sentence for each platform id of `record` that `current` does not have as it is."""
    held = current.accounts if current else ()
    reasons = []
    for account in record.accounts:
        if account.user_id.startswith("@"):  # a telegram_username alone
            same = any(a.platform == "telegram" and a.username == account.username for a in held)
        else:
            same = any(
                a.platform == account.platform
                and a.user_id == account.user_id
                and (account.username is None or a.username == account.username)
                for a in held
            )
        if not same:
            reasons.append(f"it links {account.label} to the member")
    return reasons


def member_change_reasons(
    settings: Settings, record: MemberRecord, current: MemberView | None
) -> list[str]:
    """Why upserting `record` over `current` (None: a new member) needs the admin scope; empty
    when a write key may do it."""
    reasons = []
    groups_before = current.groups if current else ()
    changes_groups = record.groups is not None and set(record.groups) != set(groups_before)
    if current is not None and changes_groups:
        reasons.append("it changes the member's groups")
    groups_after = record.groups if record.groups is not None else groups_before
    was_admin = current is not None and is_admin(settings, _subject(current.email, groups_before))
    if not was_admin and is_admin(settings, _subject(record.email, groups_after)):
        reasons.append("it makes the member an admin")
    return reasons + _account_reasons(record, current)


async def check_member_upsert(request: web.Request, item: dict[str, Any]) -> None:
    """Refuse (403) a member upsert that only an admin key may make; admin keys pass unread.

    An item the import would refuse anyway passes too: the import answers its reasons (422) and
    writes nothing."""
    if is_admin_key(request):
        return
    parsed = parse_rows(_SOURCE, "json", [(1, item)], [])
    if not parsed.records:
        return
    record = parsed.records[0]
    core = request.app[CORE]
    reasons = member_change_reasons(
        core.settings, record, await members.find_by_email(core.db, record.email)
    )
    if reasons:
        scope = api_key(request).scope
        raise AdminScopeNeeded(
            f"This change needs an API key with the admin scope ({'; '.join(reasons)}); "
            f"this key has the {scope} scope."
        )

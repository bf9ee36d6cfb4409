"""People picked with the Teams people picker: Azure AD object ids to members.

The kudos, badge and nomination cards pick people with the Adaptive Card people picker
(`cards.render.adaptive`), which submits Azure AD object ids, comma-separated for several. A
submitted value made only of such ids is a pick (`picked_ids`); anything else (a typed
`@name or email`) is left to the dialog's mention resolver as before.

A pick is vetted like an `<at>` mention before anything is written (`picked_person`, reading
only), and then admitted and rewritten to the member's `@email` for the dialog
(`rewrite_picked`). An id is accepted when it is an account we already hold for this tenant (a
`platform_account` row), or when the Teams roster knows it (`TeamsInfo.get_member` takes an AAD
object id) as someone of this tenant; the membership policy then decides as for a mention. An id
neither knows, or someone of another tenant, is refused with a sentence, and the turn ends there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bots.teams.people import PLATFORM, Roster, refusal_for
from cards.render.adaptive import is_aad_id
from dialogs.events import Action, Event
from rewards.core import Core
from rewards.errors import InvalidInput
from rewards.membership import Person, check_mention_count, known_member

NOT_FOUND = (
    "I can't find the person you picked in your organisation's Teams. Please pick them again,"
    " or type @name or email instead."
)
OUTSIDE = (
    "The person you picked is outside this organisation, so they can't take part in its"
    " rewards. Please pick someone from your organisation."
)
PICKED = "The person you picked"


def _ids(value: Any) -> list[str]:
    """The AAD object ids of a submitted value made of nothing else (else none)."""
    items = value if isinstance(value, list | tuple) else [value]
    parts = [p.strip() for item in items if isinstance(item, str) for p in item.split(",")]
    parts = [p for p in parts if p]
    return [p.lower() for p in parts] if parts and all(is_aad_id(p) for p in parts) else []


def picked_ids(event: Event) -> list[str]:
    """The distinct AAD object ids a submitted card picked, in order."""
    if not isinstance(event, Action) or not event.values:
        return []
    return list(dict.fromkeys(i for v in event.values.values() for i in _ids(v)))


def bound_picks(ids: list[str], limit: int) -> str | None:
    """The kudos receiver limit on the picks, checked before any of them is looked up."""
    try:
        check_mention_count(len(ids), limit)
    except InvalidInput as refusal:
        return str(refusal)
    return None


async def picked_person(roster: Roster, core: Core, aad: str) -> Person | str:
    """The person behind a picked AAD object id, or the sentence refusing them; reads only."""
    known = await known_member(core.db, PLATFORM, aad, roster.tenant)
    name = known.display_name if known is not None else ""
    if known is None:
        profile = await roster.profile(aad)
        if profile is None:
            return NOT_FOUND
        tenant = getattr(profile, "tenant_id", None)
        if tenant and tenant != roster.tenant:
            return OUTSIDE
        name = profile.name or ""
    person = await roster.person(aad, aad, name)
    refusal = await refusal_for(core, person, mentioned=person.display_name or PICKED)
    return refusal if refusal is not None else person


def rewrite_picked(event: Event, emails: Mapping[str, str]) -> Event:
    """`event` with each picked id replaced by `@email` of the member admitted for it."""
    if not isinstance(event, Action) or not emails:
        return event
    values: dict[str, Any] = {}
    for key, value in event.values.items():
        ids = _ids(value)
        values[key] = [f"@{emails[i]}" for i in ids if i in emails] if ids else value
    return Action(event.token, values)

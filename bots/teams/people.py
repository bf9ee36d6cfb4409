"""The people of a Teams activity: its sender and its mentions, as `rewards.membership.Person`.

Everything here runs inside the boundary (`bots.teams.boundary` has passed the activity), so a
roster email used to match a member by email comes from our own tenant.

- Mentions are read from the activity's `mention` entities and bounded before any of them is
  looked up (`bound_mentions`): too many people, a bot (`28:` ids) or a channel/team/tag mention
  ends the turn with a sentence, having cost nothing.
- `Roster` turns an account into a `Person`, reading its email from the Teams roster: at most
  once per account per request for someone unknown, and once per process for a known member
  who still has no email (the roster may simply not have one).
- `refusal_for` says, reading only, whether the membership policy would refuse a person, so a
  turn can be refused before anything is written for anyone in it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.schema import Activity, ChannelAccount

from rewards.core import Core
from rewards.errors import InvalidInput
from rewards.membership import (
    BOT_REFUSAL,
    Person,
    check_mention_count,
    known_member,
)
from rewards.membership import refusal_for as membership_refusal

log = logging.getLogger("bots.teams")

PLATFORM = "teams"
BOT_PREFIX = "28:"  # Bot Framework ids of bots and apps
GROUP_PREFIX = "19:"  # channels, teams and chats: a mention of one is not a person
GROUP_TYPES = frozenset({"tag", "channel", "team"})
MAX_REMEMBERED = 50_000  # the per-process memory of roster look-ups is bounded


@dataclass(frozen=True)
class Mention:
    """One `<at>` mention of someone other than this bot."""

    account_id: str
    aad: str | None
    name: str
    shown: str  # the text it occupies in the message, e.g. `<at>Ana Lopez</at>`
    kind: str = ""  # "tag", "channel"... when Teams says so

    @property
    def is_bot(self) -> bool:
        return self.account_id.startswith(BOT_PREFIX)

    @property
    def is_group(self) -> bool:
        return self.kind in GROUP_TYPES or self.account_id.startswith(GROUP_PREFIX)


def mentions_of(activity: Activity) -> list[Mention]:
    """The message's mentions, in order, without this bot's own (which only addresses it)."""
    bot_id = activity.recipient.id if activity.recipient else None
    found: list[Mention] = []
    for entity in activity.entities or []:
        props = entity.additional_properties or {}
        if entity.type != "mention" and props.get("type") != "mention":
            continue
        mentioned = props.get("mentioned")
        if not isinstance(mentioned, dict) or not mentioned.get("id"):
            continue
        account_id = str(mentioned["id"])
        if account_id == bot_id:
            continue
        name = str(mentioned.get("name") or "")
        aad = mentioned.get("aadObjectId") or mentioned.get("aad_object_id")
        found.append(
            Mention(
                account_id=account_id,
                aad=str(aad) if aad else None,
                name=name,
                shown=str(props.get("text") or f"<at>{name}</at>"),
                kind=str(mentioned.get("type") or "").lower(),
            )
        )
    return found


def bound_mentions(mentions: list[Mention], limit: int) -> str | None:
    """The sentence ending the turn when the mentions cannot all be people we look up, else None.

    Checked on the raw mentions, before any look-up: the number of distinct people (bots
    aside, they are refused anyway) against the kudos receiver limit, then bots, then groups.
    """
    people = {m.account_id for m in mentions if not m.is_bot}
    try:
        check_mention_count(len(people), limit)
    except InvalidInput as refusal:  # the kudos service's own sentence
        return str(refusal)
    if any(m.is_bot for m in mentions):
        return BOT_REFUSAL
    group = next((m for m in mentions if m.is_group), None)
    if group is not None:
        shown = group.name or "that"
        return f"{shown} is a channel, team or tag, not a person: please mention people one by one."
    return None


def account_fields(account: ChannelAccount | Mapping[str, Any]) -> tuple[str, str | None, str]:
    """(id, aadObjectId, name) of a ChannelAccount or a raw `mentioned` dict."""
    if isinstance(account, Mapping):
        aad = account.get("aadObjectId") or account.get("aad_object_id")
        name = str(account.get("name") or "")
        return str(account.get("id") or ""), str(aad) if aad else None, name
    return account.id or "", account.aad_object_id, account.name or ""


class RosterMemory:
    """What the roster told this process, so known people are not looked up on every message.

    - `aad`: a `29:` account id's AAD object id (mentions often carry only the former, while
      members are stored by the latter);
    - `asked`: known members whose email was asked for already (the roster may have none).
    Both are bounded; forgetting only costs a look-up.
    """

    def __init__(self) -> None:
        self.aad: dict[tuple[str, str], str] = {}
        self.asked: set[tuple[str, str]] = set()

    def learn(self, tenant: str, account_id: str, aad: str) -> None:
        if len(self.aad) >= MAX_REMEMBERED:
            self.aad.clear()
        self.aad[(tenant, account_id)] = aad

    def mark_asked(self, tenant: str, user_id: str) -> None:
        if len(self.asked) >= MAX_REMEMBERED:
            self.asked.clear()
        self.asked.add((tenant, user_id))


class Roster:
    """The people of one request, looked up in the Teams roster at most once each."""

    def __init__(self, context: TurnContext, core: Core, tenant: str, memory: RosterMemory) -> None:
        self.context = context
        self.core = core
        self.tenant = tenant
        self.memory = memory
        self.lookups = 0
        self._profiles: dict[str, ChannelAccount | None] = {}

    async def _profile(self, account_id: str) -> ChannelAccount | None:
        """The roster entry of `account_id`, fetched at most once in this request."""
        if account_id not in self._profiles:
            profile: ChannelAccount | None = None
            self.lookups += 1
            try:
                profile = await TeamsInfo.get_member(self.context, account_id)
            except Exception as problem:  # the roster is a nicety: go on without the email
                log.info("teams: no profile for %s: %r", account_id, problem)
            self._profiles[account_id] = profile
        return self._profiles[account_id]

    async def profile(self, account_id: str) -> ChannelAccount | None:
        """The roster entry of a `29:` id or an AAD object id (Teams takes either), or None."""
        return await self._profile(account_id)

    async def person(self, account_id: str, aad: str | None, name: str) -> Person:
        """What we know of an account; its roster email when we may need it."""
        aad = aad or self.memory.aad.get((self.tenant, account_id))
        user_id = aad or account_id
        if account_id.startswith(BOT_PREFIX):
            return Person(PLATFORM, user_id, self.tenant, display_name=name or None, is_bot=True)
        known = await known_member(self.core.db, PLATFORM, user_id, self.tenant)
        if known is not None and (
            known.has_real_email or (self.tenant, user_id) in self.memory.asked
        ):
            return Person(PLATFORM, user_id, self.tenant, display_name=name or None)
        email: str | None = None
        profile = await self._profile(account_id) if account_id else None
        if profile is not None:
            email = getattr(profile, "email", None) or None
            if not aad and profile.aad_object_id:
                aad = str(profile.aad_object_id)
                self.memory.learn(self.tenant, account_id, aad)
            name = name or profile.name or ""
        user_id = aad or account_id
        if known is not None or profile is None:
            self.memory.mark_asked(self.tenant, user_id)
        return Person(PLATFORM, user_id, self.tenant, email=email, display_name=name or None)

    async def sender(self, activity: Activity) -> Person:
        account_id, aad, name = account_fields(activity.from_property or ChannelAccount())
        return await self.person(account_id, aad, name)


async def refusal_for(core: Core, person: Person, *, mentioned: str | None = None) -> str | None:
    """The sentence refusing `person` under the membership policy, or None; reads only.

    `mentioned` is the name shown for someone mentioned (the sentence then speaks of them).
    The rules are `rewards.membership.admit`'s (`membership_refusal` reads them without writing).
    """
    sentence = await membership_refusal(core.db, person, policy=core.settings.membership)
    if sentence is None or person.is_bot or mentioned is None:
        return sentence
    return (
        f"{mentioned or 'Someone you mentioned'} isn't in this rewards programme yet, so they"
        " can't take part. Please ask your admin to add them."
    )

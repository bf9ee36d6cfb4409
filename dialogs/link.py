"""`/link` and `/link CODE`: one person's accounts on several platforms become one member.

`/link` gives the member a one-time code, only where the answer reaches them alone (a direct
chat, or Slack's ephemeral answer); in a shared channel it asks for a direct message instead, so
nobody else can read the code. `/link CODE` on another platform joins that account.

People the membership policy does not admit yet (an unknown Telegram user, anyone unknown under
`MEMBERSHIP=directory`) reach no dialog at all: their adapter calls `admit_sender`, which answers
their `/link CODE` here and refuses anything else politely, writing nothing.
"""

from __future__ import annotations

import re
from datetime import datetime

from dialogs.base import Context, Dialog, Finish, Step
from dialogs.events import Command, Event, Text
from dialogs.replies import Reply, Say
from rewards.core import Core
from rewards.errors import InvalidInput, RewardsError
from rewards.membership import (
    LINK_TTL,
    BotRefused,
    NotAMember,
    Person,
    admit,
    issue_code,
    known_member,
    redeem_code,
)

PLATFORM_NAMES = {"teams": "Teams", "slack": "Slack", "telegram": "Telegram", "console": "console"}
_LINK = re.compile(r"^/?link(?:@\w+)?(?:\s+(.*))?$", re.IGNORECASE | re.DOTALL)


def _minutes(ttl_seconds: float) -> int:
    return max(1, round(ttl_seconds / 60))


def code_sentence(code: str, expires: datetime, now: datetime) -> str:
    minutes = _minutes((expires - now).total_seconds())
    return (
        f"Your link code is {code}. It works once, for the next {minutes} minutes."
        f" On your other platform (Teams, Slack or Telegram), send /link {code} to me there,"
        " and both accounts will share your points, badges and kudos."
    )


def linked_sentence(platform: str, name: str, already: bool) -> str:
    shown = PLATFORM_NAMES.get(platform, platform)
    if already:
        return f"This {shown} account is already part of {name}'s rewards."
    return (
        f"Done: this {shown} account is now part of {name}'s rewards,"
        " with one balance everywhere. Try /me."
    )


def link_args(event: Event) -> str | None:
    """The words after `/link` when `event` is the link command, else None."""
    if isinstance(event, Command):
        name = event.name.strip().lstrip("/").split("@", 1)[0].lower()
        return event.args.strip() if name == "link" else None
    if isinstance(event, Text):
        match = _LINK.match(event.text.strip())
        return (match.group(1) or "").strip() if match and event.text.strip()[:1] == "/" else None
    return None


def _person(ctx: Context) -> Person:
    key = ctx.turn.key
    return Person(platform=key.platform, user_id=key.user, tenant=key.tenant)


class LinkDialog(Dialog):
    name = "link"

    async def start(self, ctx: Context, args: str) -> Step:
        core = ctx.core
        if args:
            if ctx.turn.key.platform not in ("teams", "slack", "telegram"):
                raise InvalidInput(
                    "A link code joins a chat account: send /link CODE to me on Teams, Slack or"
                    " Telegram."
                )
            linked = await redeem_code(core.db, args, _person(ctx), clock=core.clock)
            sentence = linked_sentence(linked.platform, linked.member.display_name, linked.already)
            return Finish((Say(sentence),))
        if not ctx.turn.private:
            return Finish(
                (
                    Say(
                        "Send /link to me in a direct message, and I'll give you your code"
                        " there, where only you can see it."
                    ),
                )
            )
        code, expires = await issue_code(
            core.db, ctx.member_id, ctx.turn.key.platform, clock=core.clock
        )
        return Finish((Say(code_sentence(code, expires, ctx.now)),))


async def admit_sender(
    core: Core, person: Person, event: Event, *, vouched: bool = False
) -> int | list[Reply]:
    """The sender's member id, or the replies that end the turn for someone not admitted.

    A `/link CODE` from an account nobody holds yet is redeemed here, before admission: that is
    how a stranger joins, and it spares anyone else a first-sight member (whose welcome badges
    would then stand in the way of joining the two). Anything else from someone not admitted
    gets the refusal's sentence. A refusal writes nothing.
    """
    args = link_args(event)
    if args and not person.is_bot:
        known = await known_member(
            core.db, person.platform, person.user_id, person.tenant, person.username
        )
        if known is None:
            return await _redeem(core, person, args)
    try:
        member = await admit(
            core.db, person, policy=core.settings.membership, vouched=vouched, clock=core.clock
        )
    except BotRefused as refusal:
        return [Say(str(refusal))]
    except NotAMember as refusal:
        return [Say(str(refusal))]
    return member.id


async def _redeem(core: Core, person: Person, code: str) -> list[Reply]:
    try:
        linked = await redeem_code(core.db, code, person, clock=core.clock)
    except RewardsError as problem:
        return [Say(str(problem))]
    return [Say(linked_sentence(linked.platform, linked.member.display_name, linked.already))]


__all__ = ["LINK_TTL", "LinkDialog", "admit_sender", "code_sentence", "link_args"]

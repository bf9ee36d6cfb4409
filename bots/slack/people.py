"""Slack users to members: the sender of a turn and every `<@U…>` mention in its text.

Nobody becomes a member just by being named. For each person the adapter first builds a
`rewards.membership.Person` and vets it without writing (`refusal`), then admits the ones that
passed (`rewards.membership.admit`, or `dialogs.link.admit_sender` for the sender):

- an account already linked to a member (or imported with its Slack id) is taken as it is, at no
  `users.info` call;
- anyone else is looked up once per request with `users.info` (email, real name, time zone, and
  whether it is a bot or someone of another organisation);
- bots (`is_bot`, `is_app_user`, the app's own bot user, Slackbot) never take part;
- a stranger takes part when the membership policy allows it (`MEMBERSHIP=open`), or when their
  email matches a member imported from HR, whose account it is then linked to.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.failures import WEB_API_FAILURES, error_code, reason
from rewards.clock import Clock
from rewards.membership import (
    BOT_REFUSAL,
    Person,
    admit,
    known_member,
    not_a_member_sentence,
    strangers_allowed,
)
from rewards.services.members import (
    MemberView,
    find_by_email,
    is_valid_timezone,
    remember_accounts,
)
from rewards.store.db import Database

log = logging.getLogger("bots.slack.people")

PLATFORM = "slack"
SLACKBOT = "USLACKBOT"
# `<@U123>` or `<@U123|name>`; W… ids are Enterprise Grid users.
SLACK_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def mention_ids(text: str) -> list[str]:
    """The distinct user ids mentioned in `text`, in order (nothing is looked up)."""
    return list(dict.fromkeys(m.group(1) for m in SLACK_MENTION.finditer(text)))


def person_from_profile(user_id: str, team: str, user: Mapping[str, Any], bot_user: str) -> Person:
    """A `Person` from a `users.info` user object (empty when the look-up failed)."""
    profile = user.get("profile") or {}
    name = (
        user.get("real_name")
        or profile.get("real_name")
        or profile.get("display_name")
        or user.get("name")
        or None
    )
    tz = user.get("tz") or None
    return Person(
        platform=PLATFORM,
        user_id=user_id,
        tenant=team,
        email=profile.get("email") or None,
        display_name=name,
        username=user.get("name") or None,
        timezone=tz if tz and is_valid_timezone(tz) else None,
        is_bot=bool(user.get("is_bot") or user.get("is_app_user"))
        or user_id in {bot_user, SLACKBOT},
    )


def lookup_failed(user_id: str) -> str:
    return f"I couldn't look up <@{user_id}> just now. Please try again in a moment."


def mention_refusal(user_id: str) -> str:
    """What the sender is told about someone they named who is not in the programme.

    Only the mention itself names the person (Slack shows it as their name); no id or email."""
    return (
        f"<@{user_id}> isn't in this rewards programme yet, so I can't include them."
        " Please ask your admin to add them."
    )


class SlackPeople:
    """Slack user ids to members for one request; an unknown id hits `users.info` at most once.

    `person_inside(profile)` says whether a looked-up profile belongs to the organisation (see
    `bots.slack.boundary.person_inside`).
    """

    def __init__(
        self,
        db: Database,
        client: AsyncWebClient,
        team_id: str,
        *,
        policy: str = "open",
        bot_user: str = "",
        person_inside: Callable[[Mapping[str, Any]], bool] = lambda _profile: True,
        clock: Clock | None = None,
    ) -> None:
        self.db = db
        self.client = client
        self.team_id = team_id
        self.policy = policy
        self.bot_user = bot_user
        self.person_inside = person_inside
        self.clock = clock
        self._profiles: dict[str, dict[str, Any] | None] = {}
        self._failed: set[str] = set()  # looked up, but Slack failed (not "no such user")
        self._known: dict[str, MemberView | None] = {}
        self._members: dict[str, MemberView] = {}

    async def _profile(self, user_id: str) -> dict[str, Any] | None:
        """`users.info` for `user_id`, once per request; None when Slack did not answer."""
        if user_id not in self._profiles:
            try:
                answer = await self.client.users_info(user=user_id)
                user = answer.get("user")
                self._profiles[user_id] = user if isinstance(user, dict) else None
            except WEB_API_FAILURES as problem:  # Slack's error, or no JSON answer at all
                log.warning("users.info %s failed: %s", user_id, reason(problem))
                self._profiles[user_id] = None
                if error_code(problem) not in ("user_not_found", "users_not_found"):
                    self._failed.add(user_id)
        return self._profiles[user_id]

    async def look_up(self, user_ids: list[str]) -> None:
        """Read the members holding all these accounts at once (inside a unit: kept for the
        turn, so `known` and the services after it read none of them again)."""
        await remember_accounts(self.db, PLATFORM, user_ids, self.team_id)

    async def known(self, user_id: str) -> MemberView | None:
        """The member already holding this Slack account, read only and remembered."""
        if user_id not in self._known:
            self._known[user_id] = await known_member(self.db, PLATFORM, user_id, self.team_id)
        return self._known[user_id]

    def _own_bot(self, user_id: str) -> bool:
        return user_id in {self.bot_user, SLACKBOT}

    async def person(self, user_id: str) -> Person:
        """What we know of `user_id`: a bare Person for a known account, else from users.info."""
        if self._own_bot(user_id):
            return Person(PLATFORM, user_id, self.team_id, is_bot=True)
        if await self.known(user_id) is not None:
            return Person(PLATFORM, user_id, self.team_id)
        profile = await self._profile(user_id) or {}
        return person_from_profile(user_id, self.team_id, profile, self.bot_user)

    async def _stranger_refusal(self, person: Person) -> str | None:
        """Read only: why an unknown, non-bot person would not be admitted, or None."""
        if person.email and await find_by_email(self.db, person.email) is not None:
            return None  # an imported member: the account is linked to them
        if strangers_allowed(PLATFORM, self.policy):
            return None
        return not_a_member_sentence(PLATFORM)

    async def sender_outside(self, user_id: str) -> bool:
        """Read only: whether an unknown sender's profile shows another organisation (a Slack
        Connect guest whose request carries only our workspace's ids)."""
        if self._own_bot(user_id) or await self.known(user_id) is not None:
            return False
        profile = await self._profile(user_id)
        return profile is not None and not self.person_inside(profile)

    async def sender_refusal(self, user_id: str) -> str | None:
        """Read only: why the sender would be refused (a bot, not a member), or None."""
        person = await self.person(user_id)
        if person.is_bot:
            return BOT_REFUSAL
        if await self.known(user_id) is not None:
            return None
        return await self._stranger_refusal(person)

    async def mention_refusal(self, user_id: str) -> str | None:
        """Read only: why a mentioned person would be refused, or None.

        Unlike the sender, whose signed request shows they are in the workspace, a mention is
        only text: an unknown one counts when `users.info` finds a person of the organisation."""
        person = await self.person(user_id)
        if person.is_bot:
            return BOT_REFUSAL
        if await self.known(user_id) is not None:
            return None
        profile = self._profiles.get(user_id)
        if user_id in self._failed:
            return lookup_failed(user_id)
        # A deactivated account (someone who left) is not made a member by being named.
        if profile is None or profile.get("deleted") or not self.person_inside(profile):
            return mention_refusal(user_id)
        if await self._stranger_refusal(person) is not None:
            return mention_refusal(user_id)
        return None

    async def member(self, user_id: str) -> MemberView:
        """Admit a vetted mention: the member behind it, linked or created as the policy allows
        (raises `NotAMember` / `BotRefused` if things changed since it was vetted)."""
        if user_id not in self._members:
            person = await self.person(user_id)
            self._members[user_id] = await admit(
                self.db, person, policy=self.policy, clock=self.clock
            )
        return self._members[user_id]

    async def rewrite(self, text: str) -> str:
        """`text` with every `<@U…>` replaced by `@email` of the member it names."""
        emails = {uid: (await self.member(uid)).email for uid in mention_ids(text)}
        return SLACK_MENTION.sub(lambda m: f"@{emails[m.group(1)]}", text)

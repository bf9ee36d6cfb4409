"""Slack users to members: the sender of a turn and every `<@U…>` mention in command text.

A Slack account already linked to a member is found with `find_by_account`; an unknown one is
looked up once with `users.info` (email, real name, time zone) and created or linked with
`ensure_member_for_account`, so a person with the same email on Teams stays one member.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from rewards.services.members import (
    MemberView,
    ensure_member_for_account,
    find_by_account,
    is_valid_timezone,
)
from rewards.store.db import Database

log = logging.getLogger("bots.slack.people")

PLATFORM = "slack"
# `<@U123>` or `<@U123|name>`; W… ids are Enterprise Grid users.
SLACK_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


class SlackPeople:
    """Slack user ids to members for one request; an unknown id hits `users.info` once."""

    def __init__(self, db: Database, client: AsyncWebClient, team_id: str) -> None:
        self.db = db
        self.client = client
        self.team_id = team_id
        self._seen: dict[str, MemberView] = {}

    async def _profile(self, user_id: str) -> dict[str, Any]:
        try:
            answer = await self.client.users_info(user=user_id)
        except SlackApiError as problem:
            log.warning("users.info %s failed: %s", user_id, problem.response.get("error"))
            return {}
        user = answer.get("user") or {}
        return user if isinstance(user, dict) else {}

    async def member(self, user_id: str) -> MemberView:
        """The member behind a Slack user id, created (or linked by email) on first sight."""
        if user_id in self._seen:
            return self._seen[user_id]
        found = await find_by_account(self.db, PLATFORM, user_id, self.team_id)
        if found is None:
            user = await self._profile(user_id)
            profile = user.get("profile") or {}
            email = profile.get("email") or None
            name = (
                user.get("real_name")
                or profile.get("real_name")
                or profile.get("display_name")
                or user.get("name")
                or None
            )
            tz = user.get("tz") or None
            found = await ensure_member_for_account(
                self.db,
                PLATFORM,
                user_id,
                tenant=self.team_id,
                email=email,
                display_name=name,
                username=user.get("name") or None,
                timezone=tz if tz and is_valid_timezone(tz) else None,
            )
        self._seen[user_id] = found
        return found

    async def rewrite(self, text: str) -> str:
        """`text` with every `<@U…>` replaced by `@email` of the member it names."""
        ids = list(dict.fromkeys(m.group(1) for m in SLACK_MENTION.finditer(text)))
        emails = {uid: (await self.member(uid)).email for uid in ids}
        return SLACK_MENTION.sub(lambda m: f"@{emails[m.group(1)]}", text)

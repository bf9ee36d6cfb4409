"""The organisation's boundary, from the settings: which Slack workspaces, Teams tenants and
Telegram chats are ours. Checked before anything is written for a request.

- Slack: `SLACK_TEAM_IDS` (workspace ids, and Enterprise Grid org ids). When it is empty the only
  workspace is the bot token's own, which the Slack adapter learns from `auth.test` at start and
  passes in as `own_team`; until it is known nothing is allowed (fail closed).
- Teams: `REWARDS_TENANT_ID` (a comma list). When it is empty any tenant is allowed, which the
  server warns about at start. A request with no tenant at all is allowed only without an app id
  (the Bot Framework Emulator, loopback only), since signed Teams traffic always names one.
- Telegram: the chats of `TELEGRAM_CHAT_ID` and `TELEGRAM_ALLOWED_CHATS`, whose members may take
  part (checked with getChatMember by the adapter).
"""

from __future__ import annotations

from dataclasses import dataclass

from rewards.settings import Settings


@dataclass(frozen=True)
class Boundary:
    slack_teams: frozenset[str] = frozenset()
    teams_tenants: frozenset[str] = frozenset()
    telegram_chats: tuple[str, ...] = ()
    emulator: bool = False  # Teams without an app id: only loopback clients are served

    @classmethod
    def from_settings(cls, settings: Settings) -> Boundary:
        return cls(
            slack_teams=frozenset(settings.slack_team_ids),
            teams_tenants=frozenset(t.lower() for t in settings.tenant_ids),
            # TELEGRAM_CHAT_ID too: `load_settings` merges it in, but a `Settings` built in code
            # may set only that field.
            telegram_chats=tuple(
                dict.fromkeys(
                    c.strip()
                    for c in (*settings.telegram_allowed_chats, settings.telegram_chat_id)
                    if c.strip()
                )
            ),
            emulator=not settings.bot_app_id,
        )

    def slack_allows(self, team_id: str, enterprise_id: str = "", own_team: str = "") -> bool:
        """Whether a Slack request from `team_id` (of Grid org `enterprise_id`) is ours."""
        allowed = self.slack_teams or ({own_team} if own_team else set())
        return bool(allowed) and bool(
            (team_id and team_id in allowed) or (enterprise_id and enterprise_id in allowed)
        )

    def teams_allows(self, tenant: str) -> bool:
        """Whether a Teams activity of `tenant` is ours."""
        if not self.teams_tenants:
            return True
        if not tenant:
            return self.emulator
        return tenant.lower() in self.teams_tenants

    def teams_tenant_list(self) -> tuple[str, ...]:
        return tuple(sorted(self.teams_tenants))

    def describe(self, own_slack_team: str = "") -> dict[str, str]:
        """One line per platform for `rewards settings` and the start-up log."""
        slack = (
            ", ".join(sorted(self.slack_teams))
            if self.slack_teams
            else f"the bot token's own workspace{f' ({own_slack_team})' if own_slack_team else ''}"
            " (SLACK_TEAM_IDS unset)"
        )
        if self.teams_tenants:
            teams = ", ".join(sorted(self.teams_tenants))
        elif self.emulator:
            teams = "loopback clients only (Emulator mode); set REWARDS_TENANT_ID before going live"
        else:
            teams = "ANY tenant (set REWARDS_TENANT_ID to your tenant id)"
        telegram = (
            "imported or linked people, and members of chats " + ", ".join(self.telegram_chats)
            if self.telegram_chats
            else "imported or linked people only"
        )
        return {"slack": slack, "teams": teams, "telegram": telegram}

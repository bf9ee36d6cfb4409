"""`rewards settings`: the effective configuration, as this process would run with it.

Secrets are never printed, only whether they are set. The point is the questions people ask when
something stays quiet: which database, which catalogue, is the scheduler on, is Slack mounted,
and, above all, is the event manager really on (switched on *and* its extra installed)?
"""

from __future__ import annotations

import click

from bots.commands.common import settings as load
from rewards.membership import Boundary
from rewards.settings import Settings

MEMBERSHIP = {
    "open": "open: people inside the boundary become members on first sight (Telegram: only"
    " members of the allowed chats)",
    "directory": "directory: only people already imported (or linked with /link) take part",
}


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def describe(config: Settings) -> list[tuple[str, str]]:
    extra = config.extra
    slack = bool(extra.get("SLACK_BOT_TOKEN") and extra.get("SLACK_SIGNING_SECRET"))
    telegram = bool(extra.get("TELEGRAM_BOT_TOKEN") or config.telegram_bot_token)
    boundary = Boundary.from_settings(config).describe()
    return [
        ("database", config.redacted_database_url()),
        ("time zone", config.timezone),
        ("listen", f"http://{config.host}:{config.port}"),
        ("public URL (PUBLIC_URL)", config.public_url or "(unset: each request's scheme and host)"),
        ("manifest pages (SITE_PAGES_DIR)", config.site.pages_dir or "the built-in wording"),
        ("logs (LOG_FORMAT, LOG_LEVEL)", f"{config.log_format}, {config.log_level}"),
        ("catalogue files", ", ".join(config.catalog_files) or "(none)"),
        ("shop file (REWARDS_SHOP)", config.shop_file or "(none)"),
        (
            "redemption requests (REDEMPTIONS_CHANNEL)",
            ", ".join(config.redemptions_channel) or "the admins' direct chats only",
        ),
        ("rewards (ENABLE_REWARDS)", _on(config.enable_rewards)),
        ("scheduler (REWARD_SCHEDULER)", _on(config.reward_scheduler)),
        ("login middleware (REWARD_MIDDLEWARE)", _on(config.reward_middleware)),
        ("event manager (ENABLE_EVENT_MANAGER)", config.event_manager.status()),
        ("teams", "app id set" if config.bot_app_id else "Emulator only (no BOT_REWARDS_ID)"),
        ("slack", _on(slack)),
        ("telegram", _on(telegram)),
        ("email (SMTP_HOST)", config.smtp_host or "off"),
        ("membership (MEMBERSHIP)", MEMBERSHIP[config.membership]),
        ("teams boundary (REWARDS_TENANT_ID)", boundary["teams"]),
        ("slack boundary (SLACK_TEAM_IDS)", boundary["slack"]),
        ("telegram boundary (TELEGRAM_ALLOWED_CHATS)", boundary["telegram"]),
    ]


@click.command("settings")
def show_settings() -> None:
    """Print the effective settings (secrets hidden), including whether the event manager is on."""
    rows = describe(load())
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        click.echo(f"{name.ljust(width)}  {value}")

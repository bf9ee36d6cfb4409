"""Slack: `setup(app, settings)` mounts `POST /slack/events` when the bot token and signing secret
are set. Every Slack SDK import stays inside this package.

Only the organisation's workspaces are served (`SLACK_TEAM_IDS`, else the token's own, learnt with
`auth.test` on the first request and kept as `app[SLACK].own`); see `bots.slack.boundary`."""

from __future__ import annotations

from aiohttp import web

from bots.slack.bot import SlackBot
from bots.slack.gateway import SlackGateway
from rewards.settings import Settings

SLACK = web.AppKey("slack", SlackBot)
EVENTS_PATH = "/slack/events"

__all__ = ["EVENTS_PATH", "SLACK", "SlackBot", "SlackGateway", "setup"]


def setup(app: web.Application, settings: Settings) -> bool:
    """Mount the Slack endpoint on `app`; False (nothing mounted) without SLACK_BOT_TOKEN and
    SLACK_SIGNING_SECRET. The bot is stored as `app[SLACK]` (its `client` serves `SlackGateway`)."""
    extra = settings.extra
    if not extra.get("SLACK_BOT_TOKEN") or not extra.get("SLACK_SIGNING_SECRET"):
        return False
    bot = SlackBot(app, settings)
    app[SLACK] = bot
    app.router.add_post(EVENTS_PATH, bot.handle)
    app.on_shutdown.append(bot.shutdown)
    return True

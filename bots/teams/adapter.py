"""The Bot Framework side of the Teams adapter: the SDK's `CloudAdapter`, the `/api/messages`
handler and the eager `setup`. Importing this module imports botbuilder (~0.25 s), which is why
`bots.teams` itself does not: `rewards serve` mounts Teams through `bots.teams.setup_lazy`, which
imports this module on the first request (or shortly after the server is up).

Authenticity: with an app id every request must carry a Bot Framework JWT; a missing, malformed or
forged token is answered 401 (the SDK itself would answer 500 to a malformed one, so we wrap it)
and nothing reaches the bot. Without an app id authentication is off, which is only safe for the
Bot Framework Emulator on this machine: then only loopback clients are served, only activities
whose `serviceUrl` is a loopback URL are processed (the bot would answer, and later post, to that
URL), and a warning is logged once.

The tenant boundary (`REWARDS_TENANT_ID`) is enforced by the bot itself on every activity
(`bots.teams.boundary`); with an app id but no tenant list, any tenant can use the bot, which is
logged as a warning at start.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from botbuilder.core import TurnContext, serializer_helper
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity
from botframework.connector.auth import AuthenticationConstants as Auth
from botframework.connector.auth import CallerIdConstants

from bots.gate import read_json, refusal
from bots.teams import (
    ADAPTER,
    GATEWAY,
    _unauthorized,
    is_loopback_request,
    log,
    warn_about_boundary,
)
from bots.teams.bot import RewardsTeamsBot
from bots.teams.boundary import is_loopback_url
from bots.teams.gateway import TeamsGateway
from rewards.inputs import WEBHOOK_JSON, InputRefused, clean_strings
from rewards.settings import Settings

__all__ = ["RewardsTeamsBot", "TeamsGateway", "make_adapter", "make_handler", "setup"]


class _Config:
    """What ConfigurationBotFrameworkAuthentication reads (attribute names are the SDK's)."""

    def __init__(self, settings: Settings, openid_metadata_url: str | None) -> None:
        self.APP_ID = settings.bot_app_id
        self.APP_PASSWORD = settings.bot_app_secret
        self.APP_TENANTID = settings.bot_tenant_id
        # Single tenant sign-in needs an app id; the Emulator (none) keeps REWARDS_TENANT_ID
        # for the boundary only.
        single = bool(settings.bot_app_id and settings.bot_tenant_id)
        self.APP_TYPE = "SingleTenant" if single else "MultiTenant"
        if openid_metadata_url:
            # Any one of these switches the SDK to its "parameterized" cloud, which needs them
            # all: the public cloud's values, with the signing keys read from elsewhere (tests).
            self.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = openid_metadata_url
            self.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL = openid_metadata_url
            self.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = Auth.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
            self.TO_CHANNEL_FROM_BOT_LOGIN_URL = (
                Auth.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX + Auth.DEFAULT_CHANNEL_AUTH_TENANT
            )
            self.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = Auth.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
            self.OAUTH_URL = Auth.OAUTH_URL
            self.CALLER_ID = CallerIdConstants.public_azure_channel.value


def _addressed(activity: Activity) -> bool:
    """The activity says who sent it and in which conversation (the input gate for Teams: one
    without `from` was answered 200 after a traceback in the log)."""
    sender, conversation = activity.from_property, activity.conversation
    return bool(
        sender is not None
        and isinstance(sender.id, str)
        and sender.id
        and conversation is not None
        and isinstance(conversation.id, str)
        and conversation.id
    )


def make_adapter(settings: Settings, *, openid_metadata_url: str | None = None) -> CloudAdapter:
    adapter = CloudAdapter(
        ConfigurationBotFrameworkAuthentication(_Config(settings, openid_metadata_url))
    )

    async def on_error(context: TurnContext, error: Exception) -> None:
        log.error("teams: turn failed", exc_info=error)

    adapter.on_turn_error = on_error
    return adapter


def make_handler(
    adapter: CloudAdapter, bot: RewardsTeamsBot, settings: Settings
) -> Any:  # the aiohttp handler
    warned = False

    async def messages(request: web.Request) -> web.StreamResponse:
        nonlocal warned
        authenticated = bool(settings.bot_app_id)
        if not authenticated:
            if not warned:
                warned = True
                log.warning(
                    "teams: BOT_REWARDS_ID is not set, so Bot Framework authentication is OFF; "
                    "only loopback clients (the Bot Framework Emulator) are served"
                )
            if not is_loopback_request(request.remote, request.headers):
                log.warning("teams: refused %s: no app id, not a loopback client", request.remote)
                return _unauthorized()
        auth_header = request.headers.get("Authorization", "")
        if authenticated and not auth_header.startswith("Bearer "):
            return _unauthorized()
        if "application/json" not in request.headers.get("Content-Type", ""):
            return web.json_response({"error": "expected application/json"}, status=415)
        try:  # the input gate: size, nesting depth, valid JSON (`rewards.inputs`)
            body = await read_json(request, WEBHOOK_JSON, "The activity")
        except InputRefused as refused:
            return refusal(request, refused, "teams")
        try:  # control characters in every string replaced before the SDK reads it
            cleaned = clean_strings(body) if isinstance(body, dict) else None
            activity = Activity().deserialize(cleaned) if cleaned is not None else None
        except Exception:  # not shaped like an Activity
            activity = None
        if activity is None or not activity.type:
            return web.json_response({"error": "expected an Activity"}, status=400)
        if not _addressed(activity):  # nobody to answer or record: refused before the SDK
            log.info(
                "teams: refused a %s activity without from.id or conversation.id", activity.type
            )
            return web.json_response(
                {"error": "an Activity names its sender (from.id) and conversation"}, status=400
            )
        if not authenticated and not is_loopback_url(activity.service_url):
            # The bot would answer (and store, for later posts) whatever serviceUrl it is given.
            log.warning(
                "teams: dropped an activity: no app id and its serviceUrl %r is not a loopback URL",
                activity.service_url,
            )
            return web.json_response(
                {"error": "without an app id, serviceUrl must be a loopback URL"}, status=403
            )

        started = False

        async def logic(context: TurnContext) -> None:
            nonlocal started
            started = True
            await bot.on_turn(context)

        try:
            invoke = await adapter.process_activity(auth_header, activity, logic)
        except Exception as problem:
            if not started:  # authentication (or the token's key lookup) failed: not our caller
                log.warning("teams: refused an activity: %s: %s", type(problem).__name__, problem)
                return _unauthorized()
            log.exception("teams: activity failed")
            return web.json_response({"error": "internal error"}, status=500)
        if invoke is not None:
            body = invoke.body
            if body is not None and not isinstance(body, dict | list | str | int | float | bool):
                body = serializer_helper(body)
            return web.json_response(body, status=invoke.status)
        return web.Response(status=200)

    return messages


def setup(
    app: web.Application, settings: Settings, *, openid_metadata_url: str | None = None
) -> None:
    """Add `POST /api/messages`; `app[ADAPTER]` and, once started, `app[GATEWAY]` are set."""
    from bots.lifecycle import lifecycle
    from bots.server import CORE  # here, not at the top: bots.server will import this module

    # msrest warns about every Teams channelData field it has no model for; that is just noise.
    logging.getLogger("msrest.serialization").setLevel(logging.ERROR)

    warn_about_boundary(settings)
    adapter = make_adapter(settings, openid_metadata_url=openid_metadata_url)
    bot = RewardsTeamsBot(lambda: app[CORE])
    app[ADAPTER] = adapter

    async def gateway(app: web.Application) -> Any:
        app[GATEWAY] = TeamsGateway(app[CORE], adapter, settings.bot_app_id)
        yield

    lifecycle(app).append(gateway)
    app.router.add_post("/api/messages", make_handler(adapter, bot, settings))

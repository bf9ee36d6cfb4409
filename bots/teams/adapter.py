"""The `/api/messages` endpoint over the chosen SDK (`TEAMS_SDK`, `bots.teams.backends`), and the
eager `setup`. Importing this module imports no SDK; building the endpoint (`make_adapter`) imports
the chosen one (botbuilder ~0.25 s), which is why `rewards serve` mounts Teams through
`bots.teams.setup_lazy`, which builds it on the first request (or shortly after the server is up).

Authenticity: with an app id every request must carry a Bot Framework JWT; a missing, malformed or
forged token is answered 401 (botbuilder itself would answer 500 to a malformed one, so the
backends report it as `Unauthenticated`) and nothing reaches the bot. Without an app id
authentication is off, which is only safe for the Bot Framework Emulator (or the Agents
Playground) on this machine: then only loopback clients are served, only activities whose
`serviceUrl` is a loopback URL are processed (the bot would answer, and later post, to that URL),
and a warning is logged once.

The tenant boundary (`REWARDS_TENANT_ID`) is enforced by the bot itself on every activity
(`bots.teams.boundary`); with an app id but no tenant list, any tenant can use the bot, which is
logged as a warning at start.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bots.gate import read_json, refusal
from bots.teams import (
    ADAPTER,
    GATEWAY,
    _unauthorized,
    is_loopback_request,
    log,
    warn_about_boundary,
)
from bots.teams.backends import TeamsBackend, Unauthenticated, load
from bots.teams.bot import RewardsTeamsBot
from bots.teams.boundary import is_loopback_url
from bots.teams.gateway import TeamsGateway
from rewards.inputs import WEBHOOK_JSON, InputRefused, clean_strings
from rewards.settings import Settings

__all__ = ["RewardsTeamsBot", "TeamsGateway", "make_adapter", "make_handler", "setup"]


def _addressed(activity: Any) -> bool:
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


def make_adapter(settings: Settings, **options: Any) -> TeamsBackend:
    """The backend `settings.teams_sdk` names (its SDK imported now); `options` are the
    backends' test seams (`openid_metadata_url`, `token_provider`)."""
    return load(settings, **options)


def make_handler(
    backend: TeamsBackend, bot: RewardsTeamsBot, settings: Settings
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
            activity = backend.parse(cleaned) if cleaned is not None else None
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

        try:
            invoke = await backend.process(auth_header, activity, bot.on_turn)
        except Unauthenticated as problem:  # not our caller; the bot never saw the activity
            log.warning("teams: refused an activity: %s", problem)
            return _unauthorized()
        except Exception:
            log.exception("teams: activity failed")
            return web.json_response({"error": "internal error"}, status=500)
        if invoke is not None:
            status, answer = invoke
            return web.json_response(answer, status=status)
        return web.Response(status=200)

    return messages


def setup(app: web.Application, settings: Settings, **options: Any) -> None:
    """Add `POST /api/messages`; `app[ADAPTER]` (the backend) and, once started, `app[GATEWAY]`
    are set. `options`: the backends' test seams (see `make_adapter`)."""
    from bots.lifecycle import lifecycle
    from bots.server import CORE  # here, not at the top: bots.server will import this module

    warn_about_boundary(settings)
    backend = make_adapter(settings, **options)
    bot = RewardsTeamsBot(lambda: app[CORE])
    app[ADAPTER] = backend

    async def gateway(app: web.Application) -> Any:
        app[GATEWAY] = TeamsGateway(app[CORE], backend)
        yield

    lifecycle(app).append(gateway)
    app.router.add_post("/api/messages", make_handler(backend, bot, settings))

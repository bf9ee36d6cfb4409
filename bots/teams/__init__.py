"""Microsoft Teams (Bot Framework protocol): `setup(app, settings)` adds `POST /api/messages`.

Authenticity (Bot Framework tokens; loopback-only Emulator mode) and the tenant boundary are
described in `bots.teams.adapter` and `bots.teams.boundary`; the SDK underneath (`TEAMS_SDK`:
botbuilder or the Microsoft 365 Agents SDK) in `bots.teams.backends`.

This package's own module does not import an SDK (botbuilder and msrest: ~0.25 s of start-up, and
Teams is always mounted): `bots.teams.adapter` imports it when it builds the endpoint. `setup`
does so at once (tests, embedders that want the backend in `app[ADAPTER]`); `setup_lazy`, what
`rewards serve` uses, mounts a small handler that builds it on the first request, or imports the
SDK in a worker thread a moment after the server is up, whichever comes first. Until then the
Teams gateway reads as "still starting" to the notifier, which keeps Teams deliveries for its next
pass.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from rewards.settings import Settings

if TYPE_CHECKING:
    from bots.teams.adapter import make_adapter, make_handler
    from bots.teams.backends import TeamsBackend
    from bots.teams.bot import RewardsTeamsBot
    from bots.teams.gateway import TeamsGateway

log = logging.getLogger("bots.teams")

__all__ = [
    "ADAPTER",
    "GATEWAY",
    "LAZY",
    "LazyTeams",
    "RewardsTeamsBot",
    "TeamsGateway",
    "is_loopback_request",
    "make_adapter",
    "make_handler",
    "setup",
    "setup_lazy",
]

ADAPTER: web.AppKey[TeamsBackend] = web.AppKey("teams_adapter")
GATEWAY: web.AppKey[TeamsGateway] = web.AppKey("teams_gateway")

# Seconds after start-up before the SDK is imported in the background: after the first health
# check, so the import does not compete with the start for the interpreter.
WARM_UP_SECONDS = 2.0

_SDK_NAMES = {"make_adapter", "make_handler", "RewardsTeamsBot", "TeamsGateway"}


def __getattr__(name: str) -> Any:
    """The endpoint's names, imported from `bots.teams.adapter` when first asked for."""
    if name in _SDK_NAMES:
        return getattr(importlib.import_module("bots.teams.adapter"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _loopback(address: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 (with or without brackets and port) and `localhost`."""
    if not address:
        return False
    host = address.strip().strip('"')
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def _header_values(headers: Mapping[str, str], name: str) -> list[str]:
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return list(getall(name, []))
    value = headers.get(name)
    return [value] if value else []


def is_loopback_request(remote: str | None, headers: Mapping[str, str]) -> bool:
    """True when the peer and every proxy hop it names (X-Forwarded-For, Forwarded) are local.

    Behind a reverse proxy on the same machine every peer looks local, so the forwarding headers
    count too: a request forwarded for anyone else is not served without authentication.
    """
    if not _loopback(remote):
        return False
    hops: list[str] = []
    for value in _header_values(headers, "X-Forwarded-For"):
        hops += [h.strip() for h in value.split(",") if h.strip()]
    for value in _header_values(headers, "Forwarded"):
        for part in value.replace(",", ";").split(";"):
            key, _, raw = part.strip().partition("=")
            if key.strip().lower() == "for":
                hops.append(raw)
    return all(_loopback(h) for h in hops)


def _unauthorized() -> web.Response:
    return web.json_response({"error": "unauthorized"}, status=401)


def warn_about_boundary(settings: Settings) -> None:
    """A signed bot without a tenant list answers any tenant whose users can reach it."""
    if settings.bot_app_id and not settings.tenant_ids:
        log.warning(
            "teams: REWARDS_TENANT_ID is not set, so any tenant can use this bot: people of any "
            "organisation that installs the app become members. Set REWARDS_TENANT_ID to your "
            "tenant id (a comma list for several)."
        )
    elif settings.tenant_ids:
        log.info("teams: serving tenant(s) %s", ", ".join(settings.tenant_ids))


def setup(app: web.Application, settings: Settings, **options: Any) -> None:
    """Add `POST /api/messages` with the SDK imported now; `app[ADAPTER]` (the backend) and, once
    started, `app[GATEWAY]` are set. `options`: the backends' test seams."""
    from bots.teams import adapter

    adapter.setup(app, settings, **options)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LazyTeams:
    """Teams mounted without its SDK: `load()` builds the backend (importing its SDK), the bot,
    the handler and (once the core is up) the gateway, exactly as `setup` does; `messages` is the
    `/api/messages` handler that loads on the first request."""

    def __init__(self, app: web.Application, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.adapter: TeamsBackend | None = None
        self._gateway: TeamsGateway | None = None
        self._handler: Handler | None = None

    def load(self) -> Handler:
        if self._handler is None:
            from bots.server import CORE  # here: bots.server imports this package
            from bots.teams import adapter as sdk

            backend = sdk.make_adapter(self.settings)
            bot = sdk.RewardsTeamsBot(lambda: self.app[CORE])
            self.adapter = backend
            self._handler = sdk.make_handler(backend, bot, self.settings)
            log.info("teams: %s SDK loaded", backend.name)
        return self._handler

    @property
    def loaded(self) -> bool:
        return self._handler is not None

    @property
    def gateway(self) -> TeamsGateway | None:
        """The gateway once the SDK is loaded and the core is up; None while still starting."""
        if self._gateway is None and self.adapter is not None:
            from bots.server import CORE
            from bots.teams.gateway import TeamsGateway

            if CORE in self.app:
                self._gateway = TeamsGateway(self.app[CORE], self.adapter)
        return self._gateway

    async def messages(self, request: web.Request) -> web.StreamResponse:
        return await self.load()(request)

    async def warm_up(self, delay: float = WARM_UP_SECONDS) -> None:
        """Import the SDK in a worker thread after `delay` (the module import is the cost; the
        objects are then built on the event loop), so no request pays for it."""
        await asyncio.sleep(delay)
        if not self.loaded:
            from bots.teams.backends import SDKS

            await asyncio.to_thread(importlib.import_module, SDKS[self.settings.teams_sdk])
            self.load()
            if gc.get_freeze_count():  # the process froze its start-up heap (`rewards serve`):
                gc.freeze()  # the SDK's modules live as long as the process too


LAZY: web.AppKey[LazyTeams] = web.AppKey("teams_lazy", LazyTeams)


def setup_lazy(app: web.Application, settings: Settings) -> LazyTeams:
    """Add `POST /api/messages` without importing the SDK yet (see `LazyTeams`); `app[LAZY]`."""
    from bots.lifecycle import lifecycle
    from bots.teams.backends import check_installed

    check_installed(settings)
    warn_about_boundary(settings)
    teams = LazyTeams(app, settings)
    app[LAZY] = teams

    async def warming(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(teams.warm_up(), name="teams-warm-up")
        yield
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:  # the first request reports an SDK problem; shutdown must not
            log.exception("teams: loading the %s SDK failed", settings.teams_sdk)

    lifecycle(app).append(warming)
    app.router.add_post("/api/messages", teams.messages)
    return teams

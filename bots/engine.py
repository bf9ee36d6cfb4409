"""The rewards engine inside someone else's aiohttp application (the seed's Quick Start).

    app = web.Application()
    rewards_engine = RewardsEngine(app)
    rewards_engine.setup()
    app.on_startup.append(rewards_engine.reward_startup)
    app.on_shutdown.append(rewards_engine.reward_shutdown)

`setup()` mounts what `rewards serve` serves (`/healthz`, `/metrics`, `/livez`, `/readyz`, the
REST API, the Teams, Slack and Telegram endpoints) on the host's router, from the same settings;
`reward_startup` runs the same start steps (migrations, catalogue, scheduler, event manager,
platforms, notifier) and `reward_shutdown` stops them in reverse. The host's own routes and
middlewares are untouched; one middleware is added in front of them (`bots.observability`: it
counts every request by route and names it for the log), and an operations path the host
serves already is left to the host.
The catalogue comes from the storages the host adds (`add_storage`), plus the files of
`REWARDS_CATALOG` when that setting is given.

The seed's switches: `ENABLE_REWARDS=false` mounts nothing (the two hooks then do nothing, so a
host can ship the code switched off); `REWARD_SCHEDULER` and `ENABLE_EVENT_MANAGER` as for the
server; `REWARD_MIDDLEWARE` adds a middleware recording a login for each request of an
authenticated member of the host app, which is what Automated Badges such as "Welcome to
Navigator" listen to. Who is authenticated is the host's business: `identify(request)` returns
the member's email, member id or ``platform:user_id``; the default reads the user the host's
authentication stored on the request (``request["user"]`` or ``request.user``, as a mapping or
object with an ``email``).

This module is imported through `rewards.engine`, the one place where the core package reaches up
into `bots` (declared in the import-linter contracts in pyproject.toml).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date

from aiohttp import web

from bots.lifecycle import Lifecycle
from bots.server import CORE, load_storage, mount
from rewards.clock import local_today
from rewards.core import Core
from rewards.errors import UnknownMember
from rewards.services import members
from rewards.services.catalog import LoadReport
from rewards.settings import Settings, load_settings
from rewards.storages import DatabaseStorage, RewardStorage

log = logging.getLogger("rewards.engine")

MemberRef = str | int
Identify = Callable[[web.Request], "MemberRef | Awaitable[MemberRef | None] | None"]

# Members remembered by the login middleware; past this many the memory starts over (a day's
# worth of distinct members in any realistic company, a few MB at most).
_SEEN_LIMIT = 100_000


def default_identify(request: web.Request) -> MemberRef | None:
    """The member the host's authentication put on the request, as an email or id."""
    user = request.get("user") or getattr(request, "user", None)
    if user is None:
        return None
    for name in ("email", "member_id", "user_id", "id"):
        value = user.get(name) if isinstance(user, Mapping) else getattr(user, name, None)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return value
    return None


@dataclass(frozen=True)
class _Seen:
    member_id: int | None  # None: nobody with this reference (known as of `day`)
    timezone: str | None
    day: date


class RewardsEngine:
    """The nav-rewards engine mounted on a host aiohttp application."""

    def __init__(
        self,
        app: web.Application,
        *,
        settings: Settings | None = None,
        core: Core | None = None,
        identify: Identify | None = None,
        platforms: bool = True,
    ) -> None:
        self.app = app
        self.settings = settings or load_settings()
        self._core = core
        self._identify = identify or default_identify
        self._platforms = platforms
        self._storages: list[RewardStorage] = []
        self._lifecycle: Lifecycle | None = None
        self._seen: dict[MemberRef, _Seen] = {}

    # --- the seed's API -----------------------------------------------------------------------

    def setup(self) -> None:
        """Mount routes, endpoints and (with REWARD_MIDDLEWARE) the login middleware; call it
        once, before the application starts."""
        if self._lifecycle is not None:
            raise RuntimeError("RewardsEngine.setup() was already called")
        if not self.settings.enable_rewards:
            log.info("ENABLE_REWARDS is false: the rewards engine is not mounted")
            return
        self._lifecycle = mount(
            self.app,
            self.settings,
            self._core,
            platforms=self._platforms,
            catalog_files=self.settings.catalog_from_env,
            catalog=self._load_storages,
        )
        if self.settings.reward_middleware:
            self.app.middlewares.append(self.login_middleware)

    async def reward_startup(self, app: web.Application) -> None:
        """The host's `on_startup` hook: migrate, load the catalogue, start everything."""
        if self._lifecycle is None:
            if self.settings.enable_rewards:
                raise RuntimeError("call RewardsEngine.setup() before the application starts")
            return
        await self._lifecycle.start(app)
        log.info(
            "rewards engine started: %d storage(s), scheduler %s, event manager %s",
            len(self._storages),
            "on" if self.settings.reward_scheduler else "off",
            self.settings.event_manager.status(),
        )

    async def reward_shutdown(self, app: web.Application) -> None:
        """The host's `on_shutdown` hook: stop everything, close the database."""
        if self._lifecycle is not None:
            await self._lifecycle.stop(app)

    async def add_storage(self, storage: RewardStorage) -> LoadReport | None:
        """Add a catalogue source. Before start-up it is loaded at start-up; once the engine
        runs it is loaded now and the report returned. A catalogue with problems raises
        `CatalogError` listing all of them and changes nothing."""
        self._storages.append(storage)
        if self._lifecycle is None or not self._lifecycle.running or CORE not in self.app:
            return None
        return await self._load(self.core, storage)

    # --- for the host -------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self._lifecycle is not None

    @property
    def core(self) -> Core:
        """The running core (kudos, awards, leaderboards...), for the host's own code."""
        return self.app[CORE]

    @web.middleware
    async def login_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Record a login for the authenticated member once the host has answered; never lets
        a rewards problem fail or slow down the host's request beyond one lookup a day."""
        try:
            response = await handler(request)
        except web.HTTPException as answer:
            if answer.status < 400:
                await self._record_login(request)
            raise
        if response.status < 400:
            await self._record_login(request)
        return response

    # --- internals ----------------------------------------------------------------------------

    async def _load_storages(self, core: Core) -> None:
        for storage in self._storages:
            await self._load(core, storage)

    async def _load(self, core: Core, storage: RewardStorage) -> LoadReport:
        if isinstance(storage, DatabaseStorage):
            storage.bind(core.db)
        return await load_storage(core, storage)

    async def _record_login(self, request: web.Request) -> None:
        if CORE not in self.app:
            return
        try:
            found = self._identify(request)
            ref = await found if inspect.isawaitable(found) else found
            if ref is None or isinstance(ref, bool):
                return
            await self._login(self.core, ref)
        except Exception:
            log.exception("login middleware: could not record the login of %s", request.path)

    async def _login(self, core: Core, ref: MemberRef) -> None:
        now = core.clock.now()
        seen = self._seen.get(ref)
        if seen is not None and seen.day == local_today(
            now, seen.timezone or self.settings.timezone
        ):
            return
        try:
            member = await members.resolve(core.db, ref)
        except UnknownMember:
            # Not a member (yet): remembered for the day, so each request costs no lookup.
            self._remember(ref, _Seen(None, None, local_today(now, self.settings.timezone)))
            return
        # The login's hooks are staged with the activity and run after the host's response.
        await core.events.activity(member.id, member.timezone, now=now, defer=True)
        zone = member.timezone or self.settings.timezone
        self._remember(ref, _Seen(member.id, member.timezone, local_today(now, zone)))

    def _remember(self, ref: MemberRef, seen: _Seen) -> None:
        if len(self._seen) >= _SEEN_LIMIT:
            self._seen.clear()
        self._seen[ref] = seen

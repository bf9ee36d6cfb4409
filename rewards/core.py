"""`Core`: the services of one process, built from settings. Dialogs, the REST API and the
scheduler all receive the same `Core`, so every path shares one award pipeline and one ledger.

The award and kudos services are the evented ones (`rewards.services.events`): whoever gives a
kudos or a badge through the core also fires the Automated Badges listening to it. Those events
are staged with the write and run by `hooks` (`rewards.hooks.HookRunner`) right after the commit;
`await core.hooks.drain()` waits for them, and `close()` runs what is left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from rewards.admin.service import AdminService
from rewards.clock import Clock, SystemClock
from rewards.economy.shop.service import ShopService
from rewards.exports.files import FileDelivery
from rewards.functions.registry import FunctionRegistry, build_registry
from rewards.hooks import HookRunner
from rewards.limits import RateLimits
from rewards.observability import Signals
from rewards.services.events import EventedAwards, EventedKudos, EventService
from rewards.services.leaderboards import LeaderboardService
from rewards.services.nominations import NominationService
from rewards.services.workflows import WorkflowService
from rewards.settings import Settings
from rewards.store.db import Database


@lru_cache(maxsize=8)
def _registry(function_modules: tuple[str, ...]) -> FunctionRegistry:
    return build_registry(function_modules=function_modules)


@dataclass
class Core:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        # What this core reports for metrics (`rewards.observability`); the server attaches the
        # observer that counts it.
        self.signals = Signals()
        self.events = EventService(self.db, self.settings, self.clock)
        self.awards = EventedAwards(self.db, self.settings, self.clock, events=self.events)
        self.awards.signals = self.signals
        self.events.awards = self.awards
        self.kudos = EventedKudos(self.db, self.settings, self.clock, events=self.events)
        self.kudos.signals = self.signals
        self.leaderboards = LeaderboardService(self.db, self.settings, self.clock)
        self.nominations = NominationService(self.db, self.settings, self.clock, self.awards)
        self.workflows = WorkflowService(
            self.db,
            self.settings,
            self.clock,
            awards=self.awards,
            events=self.events,
            functions=lambda: self.functions,
        )
        # The rewards shop: offers, balances, redemptions and their approvals, admin grants.
        self.shop = ShopService(self.db, self.settings, self.clock)
        self.admin = AdminService(self.db, self.settings, self.clock, self.awards, self.nominations)
        # Who delivers files (exports, a member's data) into a direct chat, per platform: bound
        # by the server (bots/files); unbound, no platform can receive files.
        self.files = FileDelivery()
        self.hooks = HookRunner(self.db, self.clock, self.events.handle_many)
        # Per-process rate limits (API keys, chat members): shared by every turn and request.
        self.limits = RateLimits.from_settings(self.settings)
        self.db.hook_listeners.append(self.hooks.nudge)
        self.db.before_dispose.append(self.hooks.stop)

    @cached_property
    def functions(self) -> FunctionRegistry:
        """Achievement functions: built-ins, ``REWARDS_FUNCTION_MODULES``, entry points.

        Built on first use (the chat never needs it) and shared by cores with the same modules.
        """
        return _registry(tuple(self.settings.function_modules))

    @classmethod
    def open(cls, settings: Settings, clock: Clock | None = None) -> Core:
        return cls(
            settings=settings, db=Database(settings.database_url), clock=clock or SystemClock()
        )

    async def close(self) -> None:
        """Run the hooks still queued, then close the database (`Database.dispose` stops the
        runner first, as it does for a CLI command's core that is never closed itself)."""
        await self.db.dispose()
        if self.hooks.nudge in self.db.hook_listeners:
            self.db.hook_listeners.remove(self.hooks.nudge)

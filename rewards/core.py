"""`Core`: the services of one process, built from settings. Dialogs, the REST API and the
scheduler all receive the same `Core`, so every path shares one award pipeline and one ledger."""

from __future__ import annotations

from dataclasses import dataclass, field

from rewards.clock import Clock, SystemClock
from rewards.services.awards import AwardService
from rewards.services.kudos import KudosService
from rewards.services.leaderboards import LeaderboardService
from rewards.settings import Settings
from rewards.store.db import Database


@dataclass
class Core:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        self.awards = AwardService(self.db, self.settings, self.clock)
        self.kudos = KudosService(self.db, self.settings, self.clock)
        self.leaderboards = LeaderboardService(self.db, self.settings, self.clock)

    @classmethod
    def open(cls, settings: Settings, clock: Clock | None = None) -> Core:
        return cls(
            settings=settings, db=Database(settings.database_url), clock=clock or SystemClock()
        )

    async def close(self) -> None:
        await self.db.dispose()

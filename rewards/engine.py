"""`from rewards.engine import RewardsEngine`: the engine embedded in an aiohttp application.

The seed's Quick Start imports the engine from here, so this is where it lives for users; the
engine itself mounts web routes and chat platforms, which belong to `bots`
(`bots.engine.RewardsEngine`). This re-export is the one place where `rewards` imports from
`bots`, declared as the single exception in the import-linter contracts (pyproject.toml); nothing
else in the core may import it.
"""

from __future__ import annotations

from bots.engine import RewardsEngine, default_identify
from rewards.storages import DatabaseStorage, JsonStorage, RewardStorage

__all__ = ["DatabaseStorage", "JsonStorage", "RewardStorage", "RewardsEngine", "default_identify"]

"""Announcement channels named by name (or id) resolve only inside the organisation's boundary.

The foreign channels here were stored as they would have been before the boundary was set (or
on Slack by a workspace no longer listed): the bot remembers every chat it has been in.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bots.notifier.notifier import SendFailed, resolve_channel
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.services.channels import remember_channel
from rewards.settings import Settings
from rewards.store.db import Database

OURS = "72f988bf-86f1-41af-91ab-2d7cd011db47"
FOREIGN = "0badc0de-0000-4000-8000-00000000f00d"


def core(database: Database, clock: FixedClock, **settings: Any) -> Core:
    config = Settings(database_url=database.url, catalog_files=(), **settings)
    return Core(settings=config, db=database, clock=clock)


async def channel(
    database: Database, clock: FixedClock, platform: str, chat_id: str, tenant: str, name: str
) -> None:
    """Remember a channel, one minute after the previous one (so later means newer)."""
    clock.set(clock.now() + timedelta(minutes=1))
    reference = {"conversation": {"id": chat_id}, "serviceUrl": "http://127.0.0.1:1/"}
    await remember_channel(
        database, platform, chat_id, reference, tenant=tenant, name=name, clock=clock
    )


async def test_a_teams_name_resolves_in_our_tenant_not_a_newer_one_elsewhere(database, clock):
    await channel(database, clock, "teams", "19:ours@thread.tacv2", OURS, "Rewards")
    await channel(database, clock, "teams", "19:theirs@thread.tacv2", FOREIGN, "Rewards")
    bounded = core(database, clock, tenant_ids=(OURS,))
    assert await resolve_channel(bounded, "teams", "rewards") == ("19:ours@thread.tacv2", OURS)
    # Naming the foreign channel by its id does not reach it either.
    with pytest.raises(SendFailed, match="this organisation"):
        await resolve_channel(bounded, "teams", "19:theirs@thread.tacv2")


async def test_a_teams_name_known_only_elsewhere_is_not_resolved(database, clock):
    await channel(database, clock, "teams", "19:theirs@thread.tacv2", FOREIGN, "Announcements")
    with pytest.raises(SendFailed):
        await resolve_channel(core(database, clock, tenant_ids=(OURS,)), "teams", "Announcements")


async def test_several_tenants_may_be_ours(database, clock):
    second = "5e2f7a11-2222-4333-8444-555555555555"
    await channel(database, clock, "teams", "19:ours@thread.tacv2", OURS, "Rewards")
    await channel(database, clock, "teams", "19:second@thread.tacv2", second, "Rewards")
    await channel(database, clock, "teams", "19:theirs@thread.tacv2", FOREIGN, "Rewards")
    both = core(database, clock, tenant_ids=(OURS, second.upper()))
    assert await resolve_channel(both, "teams", "Rewards") == ("19:second@thread.tacv2", second)


async def test_without_a_tenant_list_every_tenant_is_a_candidate(database, clock):
    """REWARDS_TENANT_ID unset (warned about at start): the most recently seen channel wins."""
    await channel(database, clock, "teams", "19:ours@thread.tacv2", OURS, "Rewards")
    await channel(database, clock, "teams", "19:theirs@thread.tacv2", FOREIGN, "Rewards")
    unbounded = core(database, clock)
    assert await resolve_channel(unbounded, "teams", "Rewards") == (
        "19:theirs@thread.tacv2",
        FOREIGN,
    )


async def test_a_slack_name_resolves_in_our_workspaces_when_they_are_listed(database, clock):
    await channel(database, clock, "slack", "C0OURS", "T0OURS", "rewards")
    await channel(database, clock, "slack", "C0THEIRS", "T0THEIRS", "rewards")
    bounded = core(database, clock, slack_team_ids=("T0OURS",))
    assert await resolve_channel(bounded, "slack", "rewards") == ("C0OURS", "T0OURS")
    # An id outside the list is passed on as it is: Slack answers for our own token's workspace.
    assert await resolve_channel(bounded, "slack", "C0THEIRS") == ("C0THEIRS", "")
    # Unlisted (the bot token's own workspace only), the stored channels are all candidates.
    assert await resolve_channel(core(database, clock), "slack", "rewards") == (
        "C0THEIRS",
        "T0THEIRS",
    )

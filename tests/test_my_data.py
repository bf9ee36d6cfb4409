"""A member's data document (`/me data`, `rewards members data`, the admin API) on SQLite and
PostgreSQL: every part the issue lists is there, with the member's own rows only, other people
named as the chat showed them and never by email."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta

from click.testing import CliRunner

from bots.cli import cli
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.economy.shop.file import parse_shop
from rewards.exports.mydata import member_data
from rewards.services.members import link_account
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import MemberActivity, Nomination, NominationCampaign, NominationVote
from tests.factories import add_member, add_reward


async def test_my_data_holds_everything_about_me_and_nothing_of_others(
    database: Database, clock: FixedClock
) -> None:
    settings = Settings(
        database_url=database.url, catalog_files=(), reward_scheduler=False, kudos_allowance=5
    )
    core = Core(settings=settings, db=database, clock=clock)
    ana, bo = await add_member(database, "Ana Lopez"), await add_member(database, "Bo Smith")
    await link_account(database, ana, "slack", "U0ANA")
    await core.kudos.give(ana, [bo], "thanks for the fix", ["teamwork"])
    await core.kudos.give(bo, [ana], "great talk")
    await core.shop.load(parse_shop([{"item_id": 1, "name": "Mug", "cost": 3}]))
    await core.shop.redeem(ana, "Mug", "blue")
    await add_reward(database, reward_id=502, reward="MVP", reward_type="Nomination Badge")
    async with database.write() as session:
        campaign = NominationCampaign(
            key="c1",
            reward_id=502,
            nominations_close_at=clock.now() + timedelta(days=1),
            voting_close_at=clock.now() + timedelta(days=2),
        )
        session.add(campaign)
        await session.flush()
        assert campaign.id is not None
        session.add(
            Nomination(campaign_id=campaign.id, nominator_id=ana, nominee_id=bo, reason="steady")
        )
        session.add(
            Nomination(campaign_id=campaign.id, nominator_id=bo, nominee_id=ana, reason="bold")
        )
        session.add(NominationVote(campaign_id=campaign.id, voter_id=ana, nominee_id=bo))
        session.add(MemberActivity(member_id=ana, day=date(2026, 11, 18)))
    await core.hooks.drain()

    document = await member_data(database, ana, now=clock.now())
    assert document["profile"]["email"] == "ana.lopez@example.com"
    assert [(a["platform"], a["user_id"]) for a in document["accounts"]] == [("slack", "U0ANA")]
    [given] = document["kudos_given"]
    assert (given["receiver_name"], given["message"], given["tags"]) == (
        "Bo Smith",
        "thanks for the fix",
        ["teamwork"],
    )
    assert [k["giver_name"] for k in document["kudos_received"]] == ["Bo Smith"]
    assert [n["reason"] for n in document["nominations_made"]] == ["steady"]
    assert [n["nominator_name"] for n in document["nominations_received"]] == ["Bo Smith"]
    assert [v["voted_for"] for v in document["votes"]] == ["Bo Smith"]
    assert document["activity_days"] == ["2026-11-18"]
    assert [r["item_name"] for r in document["redemptions"]] == ["Mug"]
    assert document["spent_in_shop"] == 3
    assert document["allowance_use"]["used"] == 1
    assert sum(e["points"] for e in document["ledger"]) == 5  # Bo's kudos to Ana
    assert "bo.smith@example.com" not in json.dumps(document)

    # The admin's equivalent on the command line: the same document.
    env = {"DATABASE_URL": database.url, "REWARDS_ENV_FILE": "/nonexistent/.env"}
    shown = await asyncio.to_thread(
        CliRunner().invoke, cli, ["members", "data", "ana.lopez@example.com"], env=env
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["kudos_given"] == document["kudos_given"]
    unknown = await asyncio.to_thread(
        CliRunner().invoke, cli, ["members", "data", "nobody@example.com"], env=env
    )
    assert unknown.exit_code == 1

"""The rewards shop's core (rewards/economy): file validation, redemptions with and without
approval, refunds, stock and balances under concurrency, per-member limits, and the
notifications each state change records, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cards.announcements import personal
from cards.render.text import to_text
from rewards.clock import FixedClock
from rewards.economy.shop.file import ShopFileError, load_shop_file, parse_shop
from rewards.economy.shop.model import Balance
from rewards.economy.shop.service import ShopService
from rewards.errors import NotAllowed, NotAvailable, SettingsError, UnknownItem
from rewards.services.announcements import load_announcement
from rewards.settings import Settings, load_settings
from rewards.store.db import Database
from rewards.store.models import Announcement, Delivery, PlatformAccount, Redemption
from tests.factories import add_member

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "shop.json"
SETTINGS = Settings(
    timezone="UTC",
    admins=("boss@example.com", "shop-admins"),
    redemptions_channel=("slack:C0SHOP", "telegram:-1001"),
    extra={"SLACK_BOT_TOKEN": "xoxb-test"},  # Slack on; Telegram off: its channel is not used
)
ITEMS = [
    {"item_id": 1, "name": "Coffee", "cost": 30, "icon": "☕"},
    {"item_id": 2, "name": "Day off", "cost": 100, "approval": True},
    {"item_id": 3, "name": "Ticket", "cost": 10, "stock": 1},
    {"item_id": 4, "name": "Hoodie", "cost": 5, "per_member_limit": 2, "limit_period": "week"},
    {"item_id": 5, "name": "Lunch", "cost": 5, "available_to": [{"job_code": ["MANAGER"]}]},
]


def shop(database: Database, clock: FixedClock) -> ShopService:
    return ShopService(database, SETTINGS, clock)


async def count(database: Database, model: type, *where: object) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


def test_the_example_file_and_every_problem_named_by_item_and_field() -> None:
    items = load_shop_file(EXAMPLE)
    assert [i.item_id for i in items] == [1, 2, 3, 4, 5]
    assert items[1].approval and items[1].limit_period == "year"

    bad = [
        {"item_id": 1, "name": "Coffee", "cost": -1, "colour": "red"},
        {"item_id": 1, "name": "coffee", "cost": 5, "limit_period": "week"},
        {"item_id": 3, "name": "Bad\u0000name", "cost": 5, "available_to": [{}]},
        {"item_id": 4, "name": "42", "cost": "5", "approval": "yes"},
    ]
    with pytest.raises(ShopFileError) as caught:
        parse_shop(bad)
    lines = str(caught.value).splitlines()
    assert "item 1: cost: Input should be greater than or equal to 0, got -1" in lines
    assert any(line.startswith("item 1: colour: unknown field") for line in lines)
    assert "item 1: (item): limit_period is given without a per_member_limit to count" in lines
    assert any("item 3: name: contains a control character (U+0000)" in line for line in lines)
    assert any(line.startswith("item 3: available_to[0]: ") for line in lines)
    assert any(line.startswith("item 4: name: ") and "number" in line for line in lines)
    assert any(line.startswith("item 4: cost: ") for line in lines)
    assert any(line.startswith("item 4: approval: ") for line in lines)


def test_shop_settings_read_from_the_environment() -> None:
    env = {
        "REWARDS_SHOP": "examples/shop.json",
        "REDEMPTIONS_CHANNEL": "slack: C0SHOP ; teams:Rewards admins,telegram:-1001",
    }
    settings = load_settings(env, Path(os.devnull))
    assert settings.shop_file == "examples/shop.json"
    assert settings.redemptions_channel == (
        "slack:C0SHOP",
        "teams:Rewards admins",
        "telegram:-1001",
    )
    with pytest.raises(SettingsError, match="REDEMPTIONS_CHANNEL must list platform:channel"):
        load_settings({"REDEMPTIONS_CHANNEL": "C0SHOP"}, Path(os.devnull))


async def test_redeem_approve_fulfil_reject_and_the_notifications(database, clock):
    service = shop(database, clock)
    ana = await add_member(database, "Ana")
    boss = await add_member(database, "Boss")
    helper = await add_member(database, "Helper", groups=("Shop-Admins",))
    async with database.write() as session:
        session.add(PlatformAccount(member_id=boss, platform="slack", user_id="UBOSS"))
        session.add(PlatformAccount(member_id=ana, platform="slack", user_id="UANA"))
        session.add(PlatformAccount(member_id=ana, platform="telegram", user_id="77"))
    await service.load(parse_shop(ITEMS))
    await service.grant(ana, 200, reason="Welcome bonus")

    coffee = await service.redeem(ana, "coffee", "oat milk please")
    assert (coffee.state, coffee.cost, coffee.note, coffee.item_icon) == (
        "approved",
        30,
        "oat milk please",
        "☕",
    )
    assert await count(database, Announcement) == 0  # no approval: nobody to ask

    day_off = await service.redeem(ana, 2)
    assert day_off.state == "requested"
    assert await service.balance(ana) == Balance(earned=200, spent=130, spendable=70)
    async with database.read() as session:
        notice = await session.scalar(select(Announcement))
        targets = sorted(
            (d.channel, d.target) for d in (await session.execute(select(Delivery))).scalars()
        )
    assert notice.kind == "redemption_requested"
    assert notice.payload["redemption"]["id"] == day_off.id
    assert notice.payload["redemption"]["member_name"] == "Ana"
    assert {i["member_id"] for i in notice.payload["items"]} == {boss, helper}
    assert "Ana asks to redeem Day off for 100 points" in notice.payload["items"][0]["text"]
    # Boss's Slack DM and the Slack channel; Telegram is not running; Helper has no chat and no
    # SMTP is set, so nothing for them.
    assert targets == [("slack", "C0SHOP"), ("slack", f"member:{boss}")]

    approved = await service.approve(day_off.id, by="boss@example.com")
    assert (approved.state, approved.decided_by) == ("approved", "boss@example.com")
    with pytest.raises(NotAllowed, match=r"already approved by boss@example\.com at 2026-11-18"):
        await service.approve(day_off.id, by="helper@example.com")
    fulfilled = await service.fulfil(day_off.id, by="helper@example.com")
    assert (fulfilled.state, fulfilled.fulfilled_by) == ("fulfilled", "helper@example.com")
    with pytest.raises(NotAllowed, match=r"already fulfilled by helper@example\.com"):
        await service.fulfil(day_off.id, by="boss@example.com")
    with pytest.raises(NotAllowed, match="already fulfilled"):
        await service.reject(day_off.id, by="boss@example.com", reason="oops")

    async with database.read() as session:
        decided = (
            (
                await session.execute(
                    select(Announcement)
                    .where(Announcement.kind == "redemption_decided")
                    .order_by(Announcement.id)
                )
            )
            .scalars()
            .all()
        )
        member_targets = sorted(
            (d.channel, d.target)
            for d in (
                await session.execute(
                    select(Delivery).where(Delivery.announcement_id == decided[0].id)
                )
            ).scalars()
        )
    assert [d.payload["redemption"]["state"] for d in decided] == ["approved", "fulfilled"]
    assert "approved by boss@example.com" in decided[0].payload["items"][0]["text"]
    assert member_targets == [("slack", f"member:{ana}")]

    # A rejection refunds the balance and gives the unit back; the member is told why.
    ticket = await service.redeem(ana, "Ticket")
    assert (await service.items())[2][1] == 0
    with pytest.raises(NotAvailable, match="Ticket is sold out"):
        await service.redeem(ana, 3)
    rejected = await service.reject(ticket.id, by="boss@example.com", reason="Wrong city")
    assert (rejected.state, rejected.reason) == ("rejected", "Wrong city")
    assert (await service.items())[2][1] == 1
    assert (await service.balance(ana)).spendable == 70
    async with database.read() as session:
        last = await session.scalar(select(Announcement).order_by(Announcement.id.desc()))
    assert "rejected by boss@example.com: Wrong city" in last.payload["items"][0]["text"]
    assert "10 points are back" in last.payload["items"][0]["text"]
    # The plain text a console or an email shows (the generic announcement cards).
    notice = await load_announcement(database, last.id)
    assert to_text(personal(notice, notice.items[0])).splitlines() == [
        "🛍️ Ana, news about your redemption",
        f"Redemption {ticket.id} of Ticket: rejected",
        "Your redemption of Ticket was rejected by boss@example.com: Wrong city. "
        "The 10 points are back in your balance.",
    ]

    # Refusals write nothing: not allowed, unknown, too expensive.
    before = await count(database, Redemption)
    with pytest.raises(NotAllowed, match="Lunch is not available to you"):
        await service.redeem(ana, "Lunch")
    with pytest.raises(UnknownItem, match='no item "Caviar"'):
        await service.redeem(ana, "Caviar")
    with pytest.raises(NotAvailable, match="Day off costs 100 points; you have 70 points to spend"):
        await service.redeem(ana, "Day off")
    assert await count(database, Redemption) == before

    # Offers say why not; a member cancels a request of their own, refunded.
    offers = {o.item.name: o for o in await service.offers(ana)}
    assert offers["Coffee"].allowed and offers["Coffee"].affordable
    assert offers["Day off"].reason == "Day off costs 100 points; you have 70 points to spend."
    assert offers["Lunch"].allowed is False
    await service.grant(ana, 30, reason="Top-up")
    pending = await service.redeem(ana, "Day off", "Friday")
    assert (await service.balance(ana)).spendable == 0
    cancelled = await service.cancel(pending.id, member_id=ana)
    assert cancelled.state == "cancelled" and (await service.balance(ana)).spendable == 100
    assert [r.id for r in await service.list(state="cancelled")] == [pending.id]
    assert len(await service.list(member_id=ana)) == 4


async def test_stock_of_one_sells_once_to_twenty_concurrent_redeemers(database, clock):
    service = shop(database, clock)
    await service.load(parse_shop(ITEMS))
    members = [await add_member(database, f"Buyer {i}") for i in range(20)]
    for member in members:
        await service.grant(member, 50, reason="seed")

    results = await asyncio.gather(
        *(service.redeem(member, "Ticket") for member in members), return_exceptions=True
    )

    sold = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(sold) == 1 and all(isinstance(r, NotAvailable) for r in refused)
    assert all("sold out" in str(r) for r in refused)
    assert (await service.items())[2][1] == 0
    assert await count(database, Redemption) == 1
    balances = [(await service.balance(m)).spent for m in members]
    assert sorted(balances) == [0] * 19 + [10]


async def test_no_overdraft_when_one_member_redeems_concurrently(database, clock):
    service = shop(database, clock)
    await service.load(parse_shop(ITEMS))
    ana = await add_member(database, "Ana")
    await service.grant(ana, 100, reason="seed")

    results = await asyncio.gather(
        *(service.redeem(ana, "Coffee") for _ in range(10)), return_exceptions=True
    )

    assert sum(not isinstance(r, BaseException) for r in results) == 3  # 3 x 30 of 100
    assert all(isinstance(r, NotAvailable) for r in results if isinstance(r, BaseException))
    assert await service.balance(ana) == Balance(earned=100, spent=90, spendable=10)


async def test_per_member_limit_per_week_and_a_correction_cannot_take_spent_points(database, clock):
    service = shop(database, clock)
    await service.load(parse_shop(ITEMS))
    ana = await add_member(database, "Ana", timezone="Pacific/Auckland")
    await service.grant(ana, 100, reason="seed")
    await service.redeem(ana, "Hoodie")
    await service.redeem(ana, "Hoodie")
    with pytest.raises(NotAvailable, match="redeemed Hoodie 2 times this week; the limit is 2"):
        await service.redeem(ana, "Hoodie")
    offer = next(o for o in await service.offers(ana) if o.item.name == "Hoodie")
    assert (offer.limit_left, offer.allowed) == (0, False)
    # Monday 00:30 in Auckland is still Sunday in UTC: a new week for Ana.
    clock.set(datetime(2026, 11, 22, 11, 30, tzinfo=UTC))
    assert (await service.redeem(ana, "Hoodie")).state == "approved"

    assert (await service.balance(ana)).spendable == 85
    with pytest.raises(NotAvailable, match="Ana has 85 points to spend; taking 86 points"):
        await service.grant(ana, -86, reason="Typo")
    grant = await service.grant(ana, -85, reason="Typo in the seed")
    assert grant.balance.spendable == 0


async def test_reload_keeps_what_is_left_and_withdraws_items_no_longer_in_the_file(
    database, clock, tmp_path
):
    service = shop(database, clock)
    await service.load(parse_shop(ITEMS))
    ana = await add_member(database, "Ana")
    await service.grant(ana, 100, reason="seed")
    await service.redeem(ana, "Ticket")
    changed = [dict(item) for item in ITEMS[:3]]
    changed[2]["stock"] = 5
    report = await service.load(parse_shop(changed))
    assert (report.changed, report.withdrawn) == ([3], [4, 5])
    assert [(i.item_id, left) for i, left in await service.items()] == [
        (1, None),
        (2, None),
        (3, 4),
    ]
    with pytest.raises(UnknownItem):
        await service.redeem(ana, "Hoodie")
    restricted = [*changed, ITEMS[4]]
    assert (await service.load(parse_shop(restricted))).changed == [5]  # back in the file
    again = await service.load(parse_shop(restricted))
    assert (again.changed, again.unchanged) == ([], [1, 2, 3, 5])
    path = tmp_path / "shop.json"
    path.write_text(json.dumps({"items": changed}), encoding="utf-8")
    assert [i.item_id for i in load_shop_file(path)] == [1, 2, 3]


async def test_rewards_shop_setting_is_loaded_at_start_up(database, clock, tmp_path):
    """What the server's start-up runs (`load_configured`): the file is loaded, a missing one
    skipped, an invalid one stops the start with its problems."""
    assert await ShopService(database, SETTINGS, clock).load_configured() is None
    missing = SETTINGS.model_copy(update={"shop_file": str(tmp_path / "none.json")})
    assert await ShopService(database, missing, clock).load_configured() is None
    configured = SETTINGS.model_copy(update={"shop_file": str(EXAMPLE)})
    report = await ShopService(database, configured, clock).load_configured()
    assert report is not None and report.added == [1, 2, 3, 4, 5]
    broken = tmp_path / "broken.json"
    broken.write_text('[{"item_id": 1, "name": "Coffee"}]', encoding="utf-8")
    invalid = SETTINGS.model_copy(update={"shop_file": str(broken)})
    with pytest.raises(ShopFileError, match="item 1: cost: required"):
        await ShopService(database, invalid, clock).load_configured()


async def test_two_admins_approving_at_once_make_one_approval_and_one_notice(database, clock):
    service = shop(database, clock)
    await service.load(parse_shop(ITEMS))
    ana = await add_member(database, "Ana")
    await service.grant(ana, 130, reason="seed")
    asked = await service.redeem(ana, "Day off")

    results = await asyncio.gather(
        *(service.approve(asked.id, by=f"admin{i}@example.com") for i in range(5)),
        service.reject(asked.id, by="late@example.com", reason="no"),
        return_exceptions=True,
    )

    done = [r for r in results if not isinstance(r, BaseException)]
    assert len(done) == 1 and all(isinstance(r, NotAllowed) for r in results if r not in done)
    winner = done[0]
    for refused in (r for r in results if r not in done):
        assert f"already {winner.state} by {winner.decided_by}" in str(refused)
    assert await count(database, Announcement, Announcement.kind == "redemption_decided") == 1
    assert (await service.balance(ana)).spent == (100 if winner.state == "approved" else 0)
    # An item that needs no approval is approved on request; an admin may still reject it.
    coffee = await service.redeem(ana, "Coffee")
    assert coffee.state == "approved" and coffee.decided_by is None
    assert (await service.reject(coffee.id, by="b@example.com", reason="x")).state == "rejected"

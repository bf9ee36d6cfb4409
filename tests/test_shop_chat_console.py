"""The shop in the terminal, end to end on SQLite and PostgreSQL: `rewards chat` shows the shop and
a pending redemption, `rewards redemptions approve 1` completes it, and the notifier tells the
member (their direct chat on the platform they use) and redraws the admins' card without its
buttons; the member's next /shop shows the outcome."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bots.cli import cli
from bots.gateway import PostedMessage
from bots.notifier import Notifier
from cards.model import Card
from cards.render.telegram import to_telegram
from rewards.core import Core
from rewards.settings import Settings
from rewards.store.db import Database
from tests.conftest import _Backends

PEOPLE = """email,display_name,job_code,department,telegram_user_id
ana@example.com,Ana Lopez,EMPLOYEE,Engineering,501
li@example.com,Li Wei,MANAGER,Engineering,502
"""
SHOP = {
    "items": [
        {"item_id": 1, "name": "Coffee", "cost": 50, "approval": True, "icon": "☕"},
        {"item_id": 2, "name": "Hoodie", "cost": 300, "stock": 10},
    ]
}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path, _backends: _Backends) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
    return asyncio.run(_backends.create_pg_database("shop_console"))


class DirectChats:
    """A Telegram gateway that records the direct messages the notifier sends."""

    platform = "telegram"

    def __init__(self) -> None:
        self.sent: list[tuple[int, Card]] = []

    async def direct(self, member_id: int, card: Card) -> PostedMessage:
        self.sent.append((member_id, card))
        return PostedMessage("telegram", str(member_id), str(len(self.sent)))

    async def post(self, chat_id: str, card: Card, *, tenant: str = "") -> PostedMessage:
        raise AssertionError("no channel is configured")

    async def update(self, message: PostedMessage, card: Card) -> None:
        raise AssertionError("nothing to redraw")


async def deliver(url: str, settings: Settings) -> tuple[DirectChats, int]:
    db = Database(url)
    try:
        chats = DirectChats()
        notifier = Notifier(Core(settings=settings, db=db), lambda: {"telegram": chats})
        report = await notifier.deliver_due()
        assert report.failed == 0 and report.skipped == 0, report
        return chats, report.sent
    finally:
        await db.dispose()


def test_console_shop_redeem_approve_and_the_member_told(tmp_path: Path, url: str) -> None:
    shop_file = tmp_path / "shop.json"
    shop_file.write_text(json.dumps(SHOP), encoding="utf-8")
    people = tmp_path / "people.csv"
    people.write_text(PEOPLE)
    env = {
        "DATABASE_URL": url,
        "REWARDS_ENV_FILE": os.devnull,
        "TIMEZONE": "UTC",
        "REWARDS_ADMINS": "li@example.com",
        "REWARDS_SHOP": str(shop_file),
        "TELEGRAM_BOT_TOKEN": "123456:test-token",
        "REWARDS_CATALOG": "",  # no login badges: the balances below are the grant's
    }
    runner = CliRunner()
    for args in (
        ["members", "import", str(people)],
        ["points", "grant", "ana@example.com", "120", "--reason", "Welcome to the shop"],
    ):
        result = runner.invoke(cli, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output

    script = "/shop\n/redeem 1 coffee please\n"
    result = runner.invoke(cli, ["chat", "--as", "ana@example.com"], input=script, env=env)
    assert result.exit_code == 0, result.output
    shop, redeemed = result.output.split("> /redeem")
    assert "🛍️ Rewards shop" in shop and "Spendable: 120 points" in shop
    assert "☕ Coffee (#1)" in shop and "needs approval" in shop
    assert "Save up for" in shop and "Hoodie (#2)" in shop and "180 points to go" in shop
    assert "1) Redeem Coffee" in shop
    assert "⏳ Coffee is waiting for approval" in redeemed
    assert "Note:       coffee please" in redeemed and "Redemption: #1" in redeemed
    assert "You have 70 points left to spend." in redeemed
    assert "Traceback" not in result.output

    approved = runner.invoke(cli, ["redemptions", "approve", "1"], env=env)
    assert approved.exit_code == 0, approved.output

    settings = Settings(
        database_url=url, admins=("li@example.com",), telegram_bot_token="123456:test-token"
    )
    chats, sent = asyncio.run(deliver(url, settings))
    assert sent == 2  # the request to Li (the admin), the outcome to Ana
    cards = {card.screen: (member, card) for member, card in chats.sent}
    member, told = cards["redemption_decided_approved"]
    assert told.title == "✅ Coffee was approved"
    text = to_telegram(told).text
    assert "Good news, Ana!" in text and "coffee please" in text
    # The admin's card, delivered after the decision, shows it rather than dead buttons.
    admin, request = cards["redemption_request_decided"]
    assert admin != member and request.actions == ()
    assert asyncio.run(deliver(url, settings))[1] == 0  # each is sent once

    result = runner.invoke(cli, ["chat", "--as", "ana@example.com"], input="/shop\n", env=env)
    assert "Your recent redemptions" in result.output
    assert "Coffee (redemption #1)  approved" in result.output

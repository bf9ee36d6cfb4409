"""The shop in chat through the dialog engine, on SQLite and PostgreSQL: /shop shows what a member
can redeem and save up for, Redeem buttons confirm first and a double click spends once,
/redeem takes a number or a name and a note, the admins' Approve / Reject buttons work for admins
only and decide once (a second click or a second admin is told who decided), a rejection asks
for its reason and refunds, and /me shows what was spent."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlmodel import col

from dialogs.engine import STALE, DialogEngine
from dialogs.events import Action
from dialogs.replies import Say, Show, Update
from dialogs.shop import approval_card, split_item
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.economy.shop.file import parse_shop
from rewards.economy.shop.model import Offer, ShopItem
from rewards.store.db import Database
from rewards.store.models import Announcement
from tests.factories import add_member
from tests.support.conversation import ScriptedConversation, make_core

ITEMS = [
    {"item_id": 1, "name": "Coffee", "cost": 30, "icon": "☕", "per_member_limit": 3},
    {"item_id": 2, "name": "Day off", "cost": 100, "approval": True},
    {"item_id": 3, "name": "Lunch", "cost": 5, "available_to": [{"job_code": ["MANAGER"]}]},
    {"item_id": 4, "name": "Ticket", "cost": 500, "description": "A conference ticket"},
]


async def _setup(
    database: Database, clock: FixedClock
) -> tuple[Core, DialogEngine, dict[str, int]]:
    core = make_core(database, clock, admins=("bo.boss@example.com", "shop-admins"))
    people = {
        "ana": await add_member(database, "Ana Lopez"),
        "li": await add_member(database, "Li Wei"),
        "boss": await add_member(database, "Bo Boss", job_code="MANAGER"),
        "cy": await add_member(database, "Cy Admin", groups=("Shop-Admins",)),
    }
    await core.shop.load(parse_shop(ITEMS))
    await core.shop.grant(people["ana"], 150, reason="Welcome to the shop")
    return core, DialogEngine(core), people


async def _decided_notices(database: Database) -> int:
    query = select(func.count()).select_from(Announcement)
    query = query.where(col(Announcement.kind) == "redemption_decided")
    async with database.read() as session:
        return int(await session.scalar(query) or 0)


def _said(replies: list[object]) -> str:
    return " ".join(r.text for r in replies if isinstance(r, Say))


async def test_shop_redeem_buttons_and_typed(database: Database, clock: FixedClock) -> None:
    core, engine, people = await _setup(database, clock)
    ana = ScriptedConversation(engine, people["ana"], whole_forms=True)

    await ana.say("/shop")
    assert ana.screens == ["shop"]
    text = ana.text
    assert "Spendable: 150 points" in text and "Earned:    150 points" in text
    assert "You can redeem" in text and "Coffee (#1)" in text and "Day off (#2)" in text
    assert "Save up for" in text and "Ticket (#4)" in text and "350 points to go" in text
    assert "Lunch" not in text and "1 more item is sold out, at your limit or not open" in text
    titles = [a.title for a in ana.card.actions]
    assert titles == ["Redeem Coffee", "Redeem Day off"]

    # A Redeem button asks first; its confirmation spends once, however often it is clicked.
    await ana.click(ana.button("Redeem Coffee"))
    assert ana.screens == ["redeem_confirm"]
    assert "Spendable after: 120 points" in ana.text
    confirm = ana.button("Redeem")
    first, second = await asyncio.gather(
        engine.handle(ana.turn, Action(confirm)), engine.handle(ana.turn, Action(confirm))
    )
    receipts = [r for r in (*first, *second) if isinstance(r, Update)]
    assert [r.card.title for r in receipts] == ["✅ You redeemed Coffee"]
    assert STALE in _said(first) + _said(second)
    await ana.click(confirm)
    assert ana.text == STALE
    assert (await core.shop.balance(people["ana"])).spent == 30

    # Typed: by name with a note (the longest name that fits), by number, and refusals.
    await ana.say("/redeem day off for the 24th")
    assert ana.card.title == "⏳ Day off is waiting for approval"
    assert "Note:       for the 24th" in ana.text and "20 points left to spend" in ana.text
    withdraw = ana.button("Withdraw")
    await ana.say("/redeem 4")
    assert ana.screens == ["notice"] and "Ticket costs 500 points" in ana.text, ana.text
    await ana.say("/redeem Lunch")
    assert "Lunch is not available to you." in ana.text
    await ana.say("/redeem 99")
    assert ana.screens == ["notice"] and "99" in ana.text
    await ana.say("/redeem")
    assert ana.screens == ["shop"] and "Day off (redemption #2)  waiting for approval" in ana.text
    assert (await core.shop.balance(people["ana"])).spendable == 20

    # While it waits, the request can be withdrawn from its receipt, once.
    await ana.click(withdraw)
    assert ana.card.title == "↩️ You withdrew Day off"
    assert "You withdrew Day off: 100 points are back, 120 to spend." in ana.text
    await ana.click(withdraw)
    assert "cancelled" in ana.text and ana.cards == [], ana.text
    assert (await core.shop.balance(people["ana"])).spendable == 120

    await ana.say("/me")
    assert "Points:         150" in ana.text
    assert "Spent:          30" in ana.text and "Spendable:      120" in ana.text
    li = ScriptedConversation(engine, people["li"], whole_forms=True, chat="dm-li")
    await li.click(withdraw)  # not theirs: nothing happens
    assert "You have no redemption 2." in li.text


async def test_approval_buttons_admins_only_once(database: Database, clock: FixedClock) -> None:
    core, engine, people = await _setup(database, clock)
    await core.shop.grant(people["ana"], 400, reason="Year-end bonus")
    view = await core.shop.redeem(people["ana"], 2, "for the 24th")
    card = approval_card(view)
    approve, reject = (a.token for a in card.actions)
    assert [a.title for a in card.actions] == ["Approve", "Reject"]
    assert approve and reject

    li = ScriptedConversation(engine, people["li"], whole_forms=True, chat="dm-li")
    await li.click(approve)
    assert li.text == "Only an admin can approve or reject redemptions."
    await li.click(reject)
    assert (await core.shop.get(view.id)).state == "requested"

    # Two admins press Approve at once, each in their own chat: one decision, the other told.
    boss = ScriptedConversation(engine, people["boss"], whole_forms=True, chat="dm-boss")
    cy = ScriptedConversation(engine, people["cy"], whole_forms=False, chat="dm-cy")
    answers = await asyncio.gather(
        engine.handle(boss.turn, Action(approve)), engine.handle(cy.turn, Action(approve))
    )
    said = [_said(a) for a in answers]
    assert sum("You approved Ana Lopez's Day off" in s for s in said) == 1
    assert sum("already approved by" in s for s in said) == 1, said
    for replies in answers:  # each clicked card is redrawn with the decision, no buttons
        [redrawn] = [r.card for r in replies if isinstance(r, Update)]
        assert redrawn.actions == () and "Approved by" in str(redrawn.body)
    assert (await core.shop.get(view.id)).state == "approved"
    assert await _decided_notices(database) == 1
    await cy.click(reject)  # Reject on a decided card: told, nothing asked
    assert "was already decided: Approved by" in cy.text
    assert cy.form_card is None

    # Reject asks why (a form, or field by field), refuses a blank reason, then refunds.
    again = await core.shop.redeem(people["ana"], "Day off")
    card = approval_card(again)
    reject = card.actions[1].token
    assert reject
    await boss.click(reject)
    assert boss.screens == ["redemption_reject"]
    await boss.fill({"reason": "  "})
    assert "Please say why you reject it" in boss.text
    await boss.fill({"reason": "Already off that week"})
    assert "You rejected Ana Lopez's Day off; 100 points went back" in boss.text
    assert "Reason: Already off that week" in boss.text
    await cy.click(reject)
    assert cy.form_card is None and "was already decided: Rejected by Bo Boss" in cy.text
    assert (await core.shop.balance(people["ana"])).spendable == 450
    assert await _decided_notices(database) == 2

    # Field by field (Telegram, the console): the reason is typed.
    third = await core.shop.redeem(people["ana"], "Day off")
    await cy.click(approval_card(third).actions[1].token or "")
    assert "Reason for the rejection" in cy.text
    await cy.say("Budget is closed")
    assert (await core.shop.get(third.id)).reason == "Budget is closed"

    # Typed by an admin; refused to anyone else.
    fourth = await core.shop.redeem(people["ana"], "Coffee")
    assert fourth.state == "approved"
    await li.say(f"/shop approve {fourth.id}")
    assert "Only an admin can approve or reject redemptions." in li.text
    await boss.say("/shop pending")
    assert "Redemptions waiting for approval" in boss.text and "None." in boss.text
    await boss.say("/shop reject 1")
    assert "Please give a reason, e.g. /shop reject 1 out of stock." in boss.text
    await boss.say(f"/shop approve {view.id}")
    assert "already approved by Bo Boss" in boss.text or "already approved by Cy Admin" in (
        boss.text
    ), boss.text
    assert [r for r in boss.replies if isinstance(r, Show)]


def test_redeem_arguments_name_the_item_then_the_note() -> None:
    def offer(item_id: int, name: str) -> Offer:
        item = ShopItem(item_id, name, "", 1, None, None, None, False, None)
        return Offer(item, None, None, True, True, None)

    offers = [offer(1, "Coffee"), offer(2, "2026 calendar"), offer(3, "Extra day off")]
    cases = {
        "1 coffee please": ("1", "coffee please"),
        "#3": ("3", None),
        "2026 calendar for my desk": ("2026 calendar", "for my desk"),
        "extra day off for the 24th": ("extra day off", "for the 24th"),
        "“Extra day off” after Xmas": ("Extra day off", "after Xmas"),
        "mug please": ("mug", "please"),  # unknown: the service says so, by the first word
    }
    assert {args: split_item(args, offers) for args in cases} == cases

"""Deterministic sample cards: one per screen and form variant.

They pin the renderers' output in golden files (`tests/golden/cards/`) and feed the card gallery
(`tools/`), which renders `to_adaptive(card)` of each sample in a real Adaptive Cards renderer.
Everything is fixed (datetimes, ids, names) so the output is byte-for-byte stable; the names and
texts are realistic on purpose (accents, emoji, a long message) so reviewers see real layouts.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from cards import screens
from cards import shop as shop_screens
from cards.actions import encode
from cards.model import Card, Tone
from rewards.catalog.model import RewardCore
from rewards.economy.shop.model import Balance, Offer, RedemptionView, ShopItem
from rewards.services.awards import AwardView
from rewards.services.kudos import KudosView, TagView
from rewards.services.leaderboards import (
    Leaderboard,
    LeaderboardFilter,
    LeaderboardRow,
    Metric,
    Period,
    TagTrend,
)
from rewards.services.ledger import LedgerLine, MemberSummary

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)

TAGS: tuple[TagView, ...] = (
    TagView("teamwork", "Teamwork", "Worked together to get it done", True),
    TagView("ownership", "Ownership", "Took responsibility from start to finish", True),
    TagView("innovation", "Innovation", "A new idea that made a difference", True),
    TagView("customer-first", "Customer-First", "Went the extra mile for a customer", True),
    TagView("helpfulness", "Helpfulness", "Helped someone out", True),
    TagView("release-hero", "release-hero", None, False),
)
TRENDS: tuple[TagTrend, ...] = (
    TagTrend("helpfulness", "Helpfulness", 14),
    TagTrend("teamwork", "Teamwork", 23),
)

REWARDS: tuple[RewardCore, ...] = (
    RewardCore(
        reward_id=101,
        reward="Team Player",
        description="Always there for the team",
        points=50,
        reward_category="Recognition",
        icon="https://example.com/badges/team-player.png",
        message="Thank you for making the team stronger!",
    ),
    RewardCore(
        reward_id=102,
        reward="Bug Hunter",
        description="Found and fixed a nasty bug",
        points=30,
        reward_category="Engineering",
    ),
    RewardCore(reward_id=103, reward="Above & Beyond", points=100, reward_category="Recognition"),
)

KUDOS = KudosView(
    id=4711,
    giver_id=1,
    giver_name="Ana Lima",
    receivers=((2, "Li Wei"), (3, "Björn Ødegård")),
    message="Thanks for staying late to get the release out — the customer demo went perfectly!",
    tags=("teamwork", "release-hero"),
    points_each=10,
    visibility="public",
    created_at=NOW,
)

AWARD = AwardView(
    id=900,
    reward_id=101,
    reward_name="Team Player",
    member_id=2,
    member_name="Li Wei",
    giver_id=1,
    giver_name="Ana Lima",
    points=50,
    message="For pairing with every new joiner this month.",
    source="chat",
    awarded_at=NOW,
)

BOARD = Leaderboard(
    metric=Metric.POINTS,
    period=Period.MONTH,
    since=datetime(2026, 11, 1, tzinfo=UTC),
    filters=LeaderboardFilter(),
    rows=(
        LeaderboardRow(1, 2, "Li Wei", "Engineering", 180),
        LeaderboardRow(2, 3, "Björn Ødegård", "Support", 150),
        LeaderboardRow(3, 1, "Ana Lima", "Engineering", 120),
        LeaderboardRow(4, 5, "Chidi Okafor", None, 60),
        LeaderboardRow(5, 6, "María José García-Fernández", "Sales", 40),
    ),
)

COMMANDS: tuple[tuple[str, str], ...] = (
    ("/kudos @someone message #tag", "Thank one or more people, with tags."),
    ("/badge", "Give a badge to someone."),
    ("/leaderboard [week|month|quarter|year|all] [points|badges|kudos]", "See who is on top."),
    ("/me", "Your points, badges and recent kudos."),
    ("/help", "What I can do."),
    ("/cancel", "Stop what we were doing."),
)


SHOP_ITEMS: tuple[ShopItem, ...] = (
    ShopItem(
        1, "Coffee voucher", "A coffee of your choice at the café", 50, None, 2, "week", False, "☕"
    ),
    ShopItem(
        2,
        "Company hoodie",
        "Navy, with the team logo — pick your size in the note",
        100,
        40,
        1,
        None,
        True,
        "🧥",
    ),
    ShopItem(
        3, "Extra day off", "One more day of holiday this year", 500, None, 1, "year", True, "🌴"
    ),
    ShopItem(4, "Conference ticket", "Managers only", 800, 2, None, None, True, None),
)
SHOP_OFFERS: tuple[Offer, ...] = (
    Offer(SHOP_ITEMS[0], None, 1, True, True, None),
    Offer(SHOP_ITEMS[1], 12, 1, True, True, None),
    Offer(SHOP_ITEMS[2], None, 1, False, True, "You need 380 more points."),
    Offer(SHOP_ITEMS[3], 2, None, False, False, "Conference ticket is not open to you."),
)
SHOP_BALANCE = Balance(earned=230, spent=110, spendable=120)
REDEMPTION = RedemptionView(
    id=17,
    item_id=2,
    item_name="Company hoodie",
    item_icon="🧥",
    member_id=2,
    member_name="Li Wei",
    cost=100,
    note="Size M, please",
    state="requested",
    requested_at=NOW,
    decided_by=None,
    decided_at=None,
    reason=None,
    fulfilled_by=None,
    fulfilled_at=None,
    approval=True,
)
DECIDED = datetime(2026, 11, 21, 9, 15, tzinfo=UTC)


def shop_samples() -> dict[str, Card]:
    """The shop's screens: the shop, a confirmation, receipts, the admins' card, outcomes."""
    redeem = {o.item.item_id: encode("redeem", "buy", str(o.item.item_id)) for o in SHOP_OFFERS}
    approved = replace(REDEMPTION, state="approved", decided_by="Ada Admin", decided_at=DECIDED)
    rejected = replace(
        REDEMPTION,
        state="rejected",
        decided_by="Ada Admin",
        decided_at=DECIDED,
        reason="Out of size M until January, sorry!",
    )
    fulfilled = replace(approved, state="fulfilled", fulfilled_by="Ada Admin", fulfilled_at=DECIDED)
    coffee = replace(
        REDEMPTION,
        id=18,
        item_id=1,
        item_name="Coffee voucher",
        item_icon="☕",
        cost=50,
        note=None,
        state="approved",
        approval=False,
    )
    return {
        "shop": shop_screens.shop(
            SHOP_BALANCE,
            SHOP_OFFERS,
            redeem=redeem,
            recent=(
                REDEMPTION,
                replace(
                    coffee, id=16, state="fulfilled", fulfilled_by="Ada Admin", fulfilled_at=DECIDED
                ),
            ),
        ),
        "shop_empty": shop_screens.shop(Balance(0, 0, 0), (), redeem={}),
        "redeem_confirm": shop_screens.redeem_confirm(
            SHOP_OFFERS[1],
            SHOP_BALANCE,
            confirm=encode("redeem", "submit", "a1b2c3"),
            cancel=encode("redeem", "cancel", "a1b2c3"),
        ),
        "redemption_requested": shop_screens.redemption_made(
            REDEMPTION, 20, withdraw=encode("redeem", "undo", "17")
        ),
        "redemption_approved": shop_screens.redemption_made(coffee, 70),
        "redemption_request": shop_screens.redemption_request(
            REDEMPTION,
            approve=encode("approval", "ok", "17"),
            reject=encode("approval", "no", "17"),
        ),
        "redemption_request_decided": shop_screens.redemption_request(rejected),
        "redemption_reject": shop_screens.reject_form(
            REDEMPTION,
            submit=encode("approval", "submit", "d4e5f6"),
            cancel=encode("approval", "cancel", "d4e5f6"),
        ),
        "redemption_decided_approved": shop_screens.redemption_decided(approved),
        "redemption_decided_rejected": shop_screens.redemption_decided(rejected),
        "redemption_decided_fulfilled": shop_screens.redemption_decided(fulfilled),
    }


def sample_cards() -> dict[str, Card]:
    """Sample name -> card. Names are the screen names, plus a suffix for variants."""
    kudos_submit, kudos_cancel = encode("kudos", "send"), encode("kudos", "cancel")
    badge_submit, badge_cancel = encode("badge", "pick"), encode("badge", "cancel")
    empty_board = Leaderboard(
        metric=Metric.KUDOS_RECEIVED,
        period=Period.WEEK,
        since=datetime(2026, 11, 16, tzinfo=UTC),
        filters=LeaderboardFilter(department="Engineering", tag="teamwork"),
        rows=(),
    )
    return {
        "kudos_posted": screens.kudos_posted(KUDOS),
        "kudos_form": screens.kudos_form(
            [*TAGS, *TRENDS], submit=kudos_submit, cancel=kudos_cancel
        ),
        "kudos_form_prefilled": screens.kudos_form(
            [*TAGS, *TRENDS],
            submit=kudos_submit,
            cancel=kudos_cancel,
            values={"recipients": "@li.wei", "message": "Great demo!", "tags": ["teamwork"]},
        ),
        "badge_picker": screens.badge_picker(REWARDS, submit=badge_submit, cancel=badge_cancel),
        "badge_picker_empty": screens.badge_picker((), submit=badge_submit, cancel=badge_cancel),
        "badge_confirm": screens.badge_confirm(
            REWARDS[0],
            "Li Wei",
            "For pairing with every new joiner this month.",
            confirm=encode("badge", "confirm", "101"),
            cancel=badge_cancel,
        ),
        "badge_awarded": screens.badge_awarded(AWARD, REWARDS[0]),
        "leaderboard": screens.leaderboard(
            BOARD,
            full=encode("lb", "full", "month.points"),
            give_kudos=encode("kudos", "start"),
        ),
        "leaderboard_empty": screens.leaderboard(empty_board, give_kudos=encode("kudos", "start")),
        "my_rewards": screens.my_rewards(
            MemberSummary(2, "Li Wei", 230, 3, 12, 8),
            rank=1,
            recent_awards=(AWARD,),
            recent_kudos=(
                LedgerLine(31, "kudos", 10, NOW, "Kudos from Ana Lima", None, 4711),
                LedgerLine(
                    30,
                    "kudos",
                    10,
                    datetime(2026, 11, 12, 9, 0, tzinfo=UTC),
                    "Kudos from Chidi Okafor",
                    None,
                    4650,
                ),
            ),
            balance=Balance(earned=230, spent=50, spendable=180),
        ),
        "my_rewards_new": screens.my_rewards(
            MemberSummary(7, "Sam New", 0, 0, 0, 0), rank=None, recent_awards=(), recent_kudos=()
        ),
        "help": screens.help_card(COMMANDS),
        "notice": screens.notice("I couldn't find anyone called @lii. Try their email address?"),
        "notice_info": screens.notice(
            "Your kudos to Li Wei were sent.", tone=Tone.GOOD, title="Done"
        ),
        **shop_samples(),
    }

"""The announcement queue (claims, back-off, failures, retry) and the announcement cards.

The queue tests run on SQLite and PostgreSQL; the race between two claimers needs real
concurrent writers and runs on PostgreSQL with many claimers at once (on SQLite writers are
serialised, which the plain claim tests already cover).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cards import announcements as cards
from cards.model import Image, ItemList
from cards.render.adaptive import to_adaptive
from cards.render.blockkit import to_blocks
from cards.render.telegram import to_telegram
from cards.render.text import to_text
from rewards.catalog.announce import AnnounceSpec
from rewards.errors import NotAvailable, NotFound
from rewards.services import announcements as queue
from rewards.services.announcements import AnnouncedItem, AnnouncementView, announce
from rewards.services.members import link_account
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Delivery
from tests.factories import add_member
from tests.test_cards_golden import golden_mismatches

GOLDEN = Path(__file__).parent / "golden" / "announcements"


def settings_for(database: Database, **values: object) -> Settings:
    base: dict[str, object] = {
        "database_url": database.url,
        "catalog_files": (),
        "announce_teams": "Engineering",
        "delivery_max_attempts": 3,
        "delivery_backoff_seconds": 30,
    }
    base.update(values)
    return Settings(**base)  # type: ignore[arg-type]


async def three_winners(database: Database) -> list[AnnouncedItem]:
    items = []
    for name in ("Ana Lopez", "Li Wei", "Bo Smith"):
        member = await add_member(database, name)
        items.append(AnnouncedItem(member, name, f"{name} won the Holiday Raffle", 50))
    return items


async def statuses(database: Database) -> dict[int, tuple[str, int]]:
    async with database.read() as session:
        rows = (await session.execute(select(Delivery))).scalars()
        return {row.id or 0: (row.status, row.attempts) for row in rows}


# --- the queue -----------------------------------------------------------------------------------


async def test_claimed_deliveries_are_not_claimed_again_until_the_lease_ends(database, clock):
    settings = settings_for(database)
    items = await three_winners(database)
    await announce(
        database,
        settings,
        key="raffle-1",
        kind="lottery",
        title="Holiday Raffle",
        items=items,
        now=clock.now(),
    )
    [claim] = await queue.claim_due(database, clock.now(), channels=["teams"])
    assert (claim.channel, claim.target, claim.attempts) == ("teams", "Engineering", 1)
    assert [i.name for i in claim.announcement.items] == ["Ana Lopez", "Li Wei", "Bo Smith"]
    assert await queue.claim_due(database, clock.now(), channels=["teams"]) == []

    clock.advance(queue.LEASE + timedelta(seconds=1))  # the claimer died without an answer
    [again] = await queue.claim_due(database, clock.now(), channels=["teams"])
    assert again.id == claim.id and again.attempts == 2
    # The first claimer's late answer no longer counts; the second one's does.
    assert await queue.mark_sent(database, claim, clock.now(), "late") is False
    assert await queue.mark_sent(database, again, clock.now(), "19:x:1") is True
    assert (
        await queue.claim_due(database, clock.now() + timedelta(days=1), channels=["teams"]) == []
    )
    [view] = await queue.list_deliveries(database, status="sent")
    assert view.message_ref == "19:x:1" and view.title == "Holiday Raffle"


async def test_failures_back_off_exponentially_then_fail_with_the_error(database, clock):
    settings = settings_for(database, delivery_max_attempts=4, delivery_backoff_seconds=30)
    items = await three_winners(database)
    await announce(
        database,
        settings,
        key="raffle-2",
        kind="lottery",
        title="Raffle",
        items=items[:1],
        now=clock.now(),
    )
    waits = []
    for attempt in range(1, 5):
        [claim] = await queue.claim_due(database, clock.now(), channels=["teams"])
        assert claim.attempts == attempt
        status = await queue.mark_failed_attempt(
            database, settings, claim, clock.now(), f"ConnectionError: refused ({attempt})"
        )
        if status == queue.FAILED:
            break
        [view] = await queue.list_deliveries(database)
        waits.append(view.next_attempt_at - clock.now())
        # Not due a second before the back-off ends.
        clock.advance(waits[-1] - timedelta(seconds=1))
        assert await queue.claim_due(database, clock.now(), channels=["teams"]) == []
        clock.advance(timedelta(seconds=1))
    assert waits == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
    [failed] = await queue.list_failures(database)
    assert failed.status == "failed" and failed.attempts == 4
    assert failed.last_error == "ConnectionError: refused (4)"
    assert (
        await queue.claim_due(database, clock.now() + timedelta(days=9), channels=["teams"]) == []
    )


def test_backoff_is_capped():
    settings = Settings(delivery_backoff_seconds=30)
    assert queue.backoff(settings, 1) == timedelta(seconds=30)
    assert queue.backoff(settings, 3) == timedelta(seconds=120)
    assert queue.backoff(settings, 12) == queue.MAX_BACKOFF
    assert queue.backoff(settings, 500) == queue.MAX_BACKOFF


async def test_retry_requeues_a_failed_delivery_but_never_a_sent_one(database, clock):
    settings = settings_for(database, delivery_max_attempts=1)
    items = await three_winners(database)
    await announce(
        database,
        settings,
        key="raffle-3",
        kind="lottery",
        title="Raffle",
        items=items[:1],
        now=clock.now(),
    )
    [claim] = await queue.claim_due(database, clock.now(), channels=["teams"])
    assert (
        await queue.mark_failed_attempt(database, settings, claim, clock.now(), "down") == "failed"
    )

    view = await queue.retry_delivery(database, claim.id, clock.now())
    assert (view.status, view.attempts) == ("pending", 0)
    [again] = await queue.claim_due(database, clock.now(), channels=["teams"])
    await queue.mark_sent(database, again, clock.now(), "ref")
    with pytest.raises(NotAvailable, match="already sent"):
        await queue.retry_delivery(database, claim.id, clock.now())
    with pytest.raises(NotFound):
        await queue.retry_delivery(database, 999, clock.now())


async def test_skipped_deliveries_are_listed_with_the_reason(database, clock):
    settings = settings_for(database, extra={"SLACK_BOT_TOKEN": "xoxb-1"})
    items = await three_winners(database)
    await link_account(database, items[0].member_id, "slack", "U0ANA0001", tenant="T1")
    await announce(
        database,
        settings,
        key="raffle-4",
        kind="lottery",
        title="Raffle",
        items=items,
        now=clock.now(),
        spec=AnnounceSpec(teams=False),
    )
    [claim] = await queue.claim_due(database, clock.now(), channels=["slack"], limit=1)
    claims = await queue.claim_due(database, clock.now(), channels=["slack"])
    direct = next(c for c in [claim, *claims] if c.member_id is not None)
    assert direct.target == f"member:{items[0].member_id}"
    await queue.mark_skipped(database, direct, clock.now(), "Ana has no direct chat yet.")
    [skipped] = await queue.list_failures(database)
    assert skipped.status == "skipped" and skipped.last_error == "Ana has no direct chat yet."


@pytest.mark.postgresql_only
async def test_racing_claimers_never_share_a_delivery(database, clock):
    settings = settings_for(database)
    members = [await add_member(database, f"Person {n}") for n in range(40)]
    for n, member in enumerate(members):
        await announce(
            database,
            settings,
            key=f"birthday-{n}",
            kind="birthday",
            title="Birthdays",
            items=[AnnouncedItem(member, f"Person {n}", "Happy birthday")],
            now=clock.now(),
        )
    claimers = [Database(database.url, pool_size=2) for _ in range(6)]
    try:
        rounds = await asyncio.gather(
            *(queue.claim_due(db, clock.now(), channels=["teams"], limit=15) for db in claimers)
        )
    finally:
        for db in claimers:
            await db.dispose()
    claimed = [c.id for batch in rounds for c in batch]
    assert len(claimed) == len(set(claimed)) == 40
    assert all(attempts == 1 for _, attempts in (await statuses(database)).values())


# --- the cards -----------------------------------------------------------------------------------

VIEW = AnnouncementView(
    id=7,
    key="lottery:raffle:2026-11",
    kind="lottery",
    title="Holiday Raffle winners",
    items=(
        AnnouncedItem(1, "Ana Lima", "A weekend at the lake", 100),
        AnnouncedItem(2, "Li Wei", "Two cinema tickets", 50),
        AnnouncedItem(3, "Björn Ødegård", "A <b>book</b> voucher & cake", 0),
    ),
    created_at=datetime(2026, 11, 20, tzinfo=UTC),
    reward_id=501,
    reward_name="Holiday Raffle",
    icon="https://example.com/badges/raffle.png",
)
BIRTHDAY = AnnouncementView(
    id=8,
    key="birthday:2026-11-20",
    kind="birthday",
    title="Birthdays today",
    items=(AnnouncedItem(1, "Ana Lima", "Ana Lima", 10),),
    created_at=VIEW.created_at,
    icon="🎂",  # not a web image: not shown
)
SAMPLES = {
    "announcement_lottery": cards.announcement(VIEW),
    "announcement_lottery_personal": cards.personal(VIEW, VIEW.items[2]),
    "announcement_birthday": cards.announcement(BIRTHDAY),
    "announcement_birthday_personal": cards.personal(BIRTHDAY, BIRTHDAY.items[0]),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_golden(name):
    mismatched = golden_mismatches(GOLDEN, name, SAMPLES[name])
    assert not mismatched, f"changed: {mismatched}; review, then regenerate with UPDATE_GOLDEN=1"


def test_one_folded_card_names_everyone_with_their_points():
    card = cards.announcement(VIEW)
    assert card.title == "🎉 Holiday Raffle winners"
    assert card.summary == "Holiday Raffle winners: Ana Lima, Li Wei and Björn Ødegård"
    image, rows = card.body
    assert isinstance(image, Image) and image.url == VIEW.icon
    assert isinstance(rows, ItemList)
    assert [(r.text, r.value) for r in rows.rows] == [
        ("Ana Lima", "+100 points"),
        ("Li Wei", "+50 points"),
        ("Björn Ødegård", ""),
    ]
    text = to_text(card)
    assert "Ana Lima" in text and "A weekend at the lake" in text
    # User text is escaped for each platform, never interpreted.
    assert "&lt;b&gt;book&lt;/b&gt; voucher &amp; cake" in to_telegram(card).text
    assert "&lt;b&gt;book&lt;/b&gt; voucher &amp; cake" in str(to_blocks(card))
    assert to_adaptive(card)["type"] == "AdaptiveCard"


def test_the_personal_card_greets_the_recipient():
    card = cards.personal(BIRTHDAY, BIRTHDAY.items[0])
    assert card.title == "🎂 Happy birthday, Ana!"
    text = to_text(card)
    assert "Birthdays today" in text and "+10 points" in text
    assert "🎂" not in str([b for b in card.body if isinstance(b, Image)])  # emoji icon dropped


def test_a_long_list_is_cut_with_a_count():
    items = tuple(AnnouncedItem(n, f"Person {n}", "Happy birthday") for n in range(60))
    card = cards.announcement(
        AnnouncementView(9, "k", "birthday", "Birthdays", items, VIEW.created_at)
    )
    assert "…and 10 more people." in to_text(card)
    assert card.summary == "Birthdays: Person 0, Person 1, Person 2 and 57 more"

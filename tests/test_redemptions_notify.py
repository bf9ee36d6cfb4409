"""Redemption notifications through the notifier and the platforms' fake servers: a request
reaches the admin's direct chat and REDEMPTIONS_CHANNEL, the outcome reaches the member, each
once; on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from rewards.clock import FixedClock
from rewards.economy.shop.file import parse_shop
from rewards.economy.shop.service import ShopService
from rewards.store.db import Database
from tests.test_notifier import LI_CHAT, SLACK_CHANNEL, world


async def test_a_request_reaches_the_admins_and_the_outcome_the_member(
    database: Database, clock: FixedClock
) -> None:
    async with world(database, clock) as w:
        settings = w.settings.model_copy(
            update={
                "admins": ("ana.lopez@example.com",),
                "redemptions_channel": (f"slack:{SLACK_CHANNEL}",),
            }
        )
        shop = ShopService(database, settings, clock)
        await shop.load(
            parse_shop([{"item_id": 1, "name": "Day off", "cost": 10, "approval": True}])
        )
        li = w.members["Li Wei"]
        await shop.grant(li, 10, reason="seed")
        asked = await shop.redeem(li, "Day off", "Friday")

        assert (await w.notifier.deliver_due()).sent == 2
        posts = w.slack.of("chat.postMessage")
        assert sorted(p["channel"] == SLACK_CHANNEL for p in posts) == [False, True]
        for post in posts:
            text = json.dumps(post["blocks"], ensure_ascii=False)
            assert "Li Wei would like Day off" in text and "Friday" in text  # the approval card
            assert "rw1|approval|ok|" in text  # with its Approve button
        assert not w.telegram_sent() and not w.inbox.messages  # Li is not an admin

        await shop.approve(asked.id, by="ana.lopez@example.com")
        assert (await w.notifier.deliver_due()).sent == 1
        [told] = w.telegram_sent()
        assert str(told["chat_id"]) == str(LI_CHAT)
        assert "Day off was approved" in told["text"]
        assert "Approved by ana.lopez@example.com" in told["text"]
        assert (await w.notifier.deliver_due()).sent == 0  # each notice once
        assert len(w.slack.of("chat.postMessage")) == 2

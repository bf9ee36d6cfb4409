"""`/integrity` on each platform, through the real app and the fake servers. The report shows
open campaigns' votes, so it only goes where the admin alone sees it: Slack's ephemeral answer, or
a direct chat on Teams and Telegram (typed in a shared channel there, the admin is asked to send
it in a direct chat, and nothing of the report is posted). A member is refused in a sentence."""

from __future__ import annotations

import html
import json
from datetime import timedelta

import pytest

from rewards.clock import FixedClock
from rewards.store.db import Database
from tests.test_nominations_platforms import (
    SlackDriver,
    TeamsDriver,
    TelegramDriver,
    World,
    driver_for,
    number_of,
    world,
)
from tests.test_teams import payload

ASK_DIRECT = "send /integrity to me in a direct message"


async def direct(driver: TeamsDriver | TelegramDriver, who: str, text: str) -> str:
    """`text` typed by `who` in their direct chat with the bot; what the bot sent back."""
    w: World = driver.w
    if isinstance(driver, TeamsDriver):
        activity = payload("message_personal", w.connector)
        activity.update(
            id=f"1763480{number_of(who):06d}",
            text=text,
            **{"from": {"id": f"29:{who}", "name": who, "aadObjectId": f"aad-{number_of(who)}"}},
        )
        start = len(w.connector.sent)
        response = await w.client.post("/api/messages", json=activity)
        assert response.status == 200, await response.text()
        return "\n".join(
            s.text + json.dumps(s.cards, ensure_ascii=False) for s in w.connector.sent[start:]
        )
    user = driver._user(who)
    update = {
        "update_id": next(driver.update_ids),
        "message": {
            "message_id": 77,
            "from": user,
            "chat": {"id": user["id"], "type": "private", "first_name": user["first_name"]},
            "date": 1795100460,
            "text": text,
            "entities": [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}],
        },
    }
    start = len(w.telegram.calls)
    await driver._deliver(update)
    calls = w.telegram.calls[start:]
    return html.unescape("\n".join(json.dumps(c.params, ensure_ascii=False) for c in calls))


@pytest.mark.parametrize("platform", ["teams", "slack", "telegram"])
async def test_integrity_for_the_admin_alone_and_a_refusal_for_a_member(
    database: Database, clock: FixedClock, platform: str
) -> None:
    async with world(database, clock) as w:
        ana, li = w.members["Ana Lopez"], w.members["Li Wei"]
        for n in range(6):
            await w.core.kudos.give(ana, [li], f"thanks {n}")
            await w.core.kudos.give(li, [ana], f"thanks back {n}")
        clock.advance(timedelta(minutes=1))
        driver = driver_for(platform, w)

        in_channel = await driver.command("Ada Admin", "/integrity")
        if isinstance(driver, SlackDriver):  # an ephemeral answer: the admin's alone
            said = in_channel
            assert not any("Integrity report" in str(p) for p in w.slack.public())
        else:
            assert ASK_DIRECT in in_channel, in_channel
            assert "Integrity report" not in in_channel and "Li Wei" not in in_channel
            said = await direct(driver, "Ada Admin", "/integrity")
        assert "Integrity report" in said, said
        assert "Ana Lopez ⇄ Li Wei" in said and "12 gifts" in said

        refused = await driver.command("Bo Smith", "/integrity")
        assert "Only an admin can see the integrity report." in refused, refused
        assert "Integrity report" not in refused and "Li Wei" not in refused

"""`/export` and `/me data` on each platform, through the real app and the fake servers: the file
lands in the person's direct chat (a Slack upload in their DM, a Telegram document in their
private chat, a Teams card whose download link serves the file), an admin's export holds the
header and the rows, a member who is not an admin is refused and receives nothing, and a Teams
link that was altered, has expired or outlived its admin's rights serves nothing."""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from bots.files import read_whole
from rewards.clock import FixedClock
from rewards.errors import NotAvailable
from rewards.exports.files import OutgoingFile
from rewards.exports.kinds import KINDS
from rewards.store.db import Database
from tests.test_nominations_platforms import (
    PEOPLE,
    SlackDriver,
    TelegramDriver,
    World,
    number_of,
    world,
)
from tests.test_teams import TENANT, payload

PLATFORMS = ["slack", "telegram", "teams"]
_telegram: dict[int, TelegramDriver] = {}


async def teams_personal(w: World, who: str, text: str) -> None:
    """`text` typed by `who` in their personal chat with the bot on Teams."""
    activity = copy.deepcopy(payload("message_personal", w.connector))
    number = number_of(who)
    activity.update(
        id=f"1763480{number:03d}{len(w.connector.sent):03d}",
        text=text,
        **{"from": {"id": f"29:{who}", "name": who, "aadObjectId": f"aad-{number}"}},
        conversation={"conversationType": "personal", "tenantId": TENANT, "id": f"a:{number}"},
    )
    response = await w.client.post("/api/messages", json=activity)
    assert response.status == 200, await response.text()


async def command(w: World, platform: str, who: str, text: str) -> str:
    """Type `text` as `who` (Slack: the slash command; Telegram: in the group; Teams: in the
    personal chat); what the bot answered, as text."""
    if platform == "slack":
        return await SlackDriver(w).command(who, text)
    if platform == "telegram":  # one driver per world: it numbers the updates
        driver = _telegram.setdefault(id(w), TelegramDriver(w))
        return await driver.command(who, text)
    start = len(w.connector.sent)
    await teams_personal(w, who, text)
    return "\n".join(s.text + json.dumps(s.cards) for s in w.connector.sent[start:])


def teams_links(w: World, who: str) -> list[str]:
    found = []
    for sent in w.connector.posted():
        if sent.conversation == f"a:{number_of(who)}":
            for card in sent.cards:
                found.extend(a["url"] for a in card.get("actions", []) if a.get("url"))
    return found


async def received(w: World, platform: str, who: str) -> list[tuple[str, bytes]]:
    """The files (name, bytes) `who` received in their direct chat."""
    if platform == "slack":
        dm = f"D0PERSON{number_of(who)}"
        return [(f["title"], f["content"]) for f in w.slack.files() if f["channel"] == dm]
    if platform == "telegram":
        return [
            (f["document"]["filename"], f["content"])
            for f in w.telegram.files
            if str(f["chat_id"]) == str(500 + number_of(who))
        ]
    files = []
    for url in teams_links(w, who):
        answer = await w.client.get(urlsplit(url).path)
        assert answer.status == 200, await answer.text()
        name = answer.headers["Content-Disposition"].split('filename="')[1].rstrip('"')
        files.append((name, await answer.read()))
    return files


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_exports_and_my_data_arrive_in_the_direct_chat(
    database: Database, clock: FixedClock, platform: str
) -> None:
    async with world(database, clock) as w:
        ada, li = w.members["Ada Admin"], w.members["Li Wei"]
        await w.core.kudos.give(ada, [li], "thanks for the release notes")
        if platform == "teams":  # the bot meets each of them in their personal chat first
            await teams_personal(w, "Ada Admin", "/help")
            await teams_personal(w, "Li Wei", "/help")

        refused = await command(w, platform, "Li Wei", "/export kudos")
        assert "Exports are for admins" in refused
        assert await received(w, platform, "Li Wei") == []

        said = await command(w, platform, "Ada Admin", "/export kudos 2026-11-01 2026-11-30")
        assert "I sent kudos-2026-11-01_2026-11-30.csv to our direct chat" in said
        [(name, content)] = await received(w, platform, "Ada Admin")
        assert name == "kudos-2026-11-01_2026-11-30.csv"
        rows = list(csv.reader(io.StringIO(content.decode())))
        assert tuple(rows[0]) == KINDS["kudos"].columns
        message = rows[0].index("message")
        assert [(r[3], r[7], r[message]) for r in rows[1:]] == [
            ("Ada Admin", "Li Wei", "thanks for the release notes")
        ]

        bad = await command(w, platform, "Ada Admin", "/export kudos yesterday")
        assert "I don't understand 'yesterday'" in bad

        said = await command(w, platform, "Li Wei", "/me data")
        assert "to our direct chat" in said
        [(name, content)] = await received(w, platform, "Li Wei")
        assert name.startswith("my-rewards-data-") and name.endswith(".json")
        document: dict[str, Any] = json.loads(content)
        assert document["profile"]["email"] == "li.wei@example.com"
        assert [k["giver_name"] for k in document["kudos_received"]] == ["Ada Admin"]
        assert {a["platform"] for a in document["accounts"]} == {"teams", "slack", "telegram"}
        others = {f"{p.lower().replace(' ', '.')}@example.com" for p in PEOPLE} - {
            "li.wei@example.com"
        }
        assert not [email for email in others if email in content.decode()]  # nobody else's


async def test_teams_links_are_signed_expiring_and_for_admins_only(
    database: Database, clock: FixedClock
) -> None:
    async with world(database, clock) as w:
        await teams_personal(w, "Ada Admin", "/export members")
        [url] = teams_links(w, "Ada Admin")
        path = urlsplit(url).path
        head, _, mac = path.rpartition(".")
        altered = f"{head[:-2]}{'A' if head[-2] != 'A' else 'B'}{head[-1]}.{mac}"
        tampered = await w.client.get(altered)
        assert tampered.status == 403 and "not valid or has expired" in await tampered.text()

        ok = await w.client.get(path)
        assert ok.status == 200 and (await ok.text()).startswith("member_id,email,")

        clock.advance(timedelta(minutes=16))
        expired = await w.client.get(path)
        assert expired.status == 403

        clock.advance(timedelta(minutes=-16))
        w.core.settings = w.core.settings.model_copy(update={"admins": ()})
        demoted = await w.client.get(path)
        assert demoted.status == 403 and "Exports are for admins" in await demoted.text()


async def test_a_chat_file_stops_at_the_limit_with_a_sentence() -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"x" * 1024

    file = OutgoingFile("ledger-all.csv", "text/csv", "", {}, pieces)
    assert len(await read_whole(file, limit=4096)) == 3072
    with pytest.raises(NotAvailable, match="too big for a chat: use `rewards export`"):
        await read_whole(file, limit=2048)

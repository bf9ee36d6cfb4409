"""`/integrity` in chat (admins only; anyone else is refused and nothing is read) and `rewards
integrity --from --to` on the command line, on SQLite and PostgreSQL, with kudos given through
the real kudos service."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner, Result

from bots.commands.integrity import integrity
from dialogs.engine import DialogEngine
from rewards.clock import FixedClock, SystemClock
from rewards.core import Core
from rewards.services.members import find_by_email
from rewards.settings import Settings
from rewards.store.db import Database
from tests.factories import add_member
from tests.support.conversation import ScriptedConversation, make_core
from tests.test_jobs_cli import cli_url  # noqa: F401  (the fixture: a seeded database)

ADMIN = "ada.admin@example.com"


async def _give_back_and_forth(core: Core, a: int, b: int, times: int) -> None:
    for n in range(times):
        await core.kudos.give(a, [b], f"thanks {n}")
        await core.kudos.give(b, [a], f"thanks back {n}")


async def test_admins_see_the_report_and_others_are_refused(
    database: Database, clock: FixedClock
) -> None:
    ada = await add_member(database, "Ada Admin")
    ana = await add_member(database, "Ana Lopez")
    li = await add_member(database, "Li Wei")
    bo = await add_member(database, "Bo Smith")
    core = make_core(database, clock, admins=(ADMIN,))
    engine = DialogEngine(core)
    admin = ScriptedConversation(engine, ada, whole_forms=True)
    member = ScriptedConversation(engine, bo, whole_forms=True)

    await admin.say("/integrity")
    assert admin.screens == ["integrity_report"]
    assert "Nothing stands out" in admin.text and "For admins only" in admin.text

    await _give_back_and_forth(core, ana, li, 6)
    await core.kudos.give(bo, [ana], "one from outside")
    clock.advance(timedelta(minutes=1))
    await admin.say("/integrity 30")
    assert admin.card.summary == "1 thing stands out"
    text = admin.text
    assert "Ana Lopez ⇄ Li Wei" in text and "12 gifts" in text
    # Ana got 35 points: 30 from Li (86%); Li got all 30 of his from Ana.
    assert "Ana Lopez: 86% of received points from the ring (30 of 35)" in text
    assert "Li Wei: 100% of received points from the ring (30 of 30)" in text

    # Anyone else: a refusal, no report.
    await member.say("/integrity")
    assert member.screens == ["notice"]
    assert "Only an admin can see the integrity report." in member.text
    assert "Ana Lopez" not in member.text

    await admin.say("/integrity banana")
    assert "Say it as /integrity or /integrity DAYS" in admin.text
    await admin.say("/integrity 0")
    assert "Say it as /integrity" in admin.text


async def test_the_api_report_needs_the_admin_scope(database: Database, clock: FixedClock) -> None:
    from tests.support.api import api_client

    ana = await add_member(database, "Ana Lopez")
    li = await add_member(database, "Li Wei")
    core = make_core(database, clock)
    await _give_back_and_forth(core, ana, li, 5)
    url = "/rewards/api/v1/integrity?from=2026-11-01&to=2026-11-18"
    async with api_client(database, clock) as api:
        refused = await api.client.get(url, headers=api.auth("write"))
        assert refused.status == 403
        answer = await api.client.get(url, headers=api.auth("admin"))
        assert answer.status == 200, await answer.text()
        body = await answer.json()
        assert body["clean"] is False and body["bursts"] == [] and body["campaigns"] == []
        [ring] = body["rings"]
        assert ring["gifts"] == 10
        assert [(m["name"], m["received_share"]) for m in ring["members"]] == [
            ("Ana Lopez", 1.0),
            ("Li Wei", 1.0),
        ]
        bad = await api.client.get(
            "/rewards/api/v1/integrity?from=yesterday", headers=api.auth("admin")
        )
        assert bad.status == 422 and "`from` must be a day" in (await bad.json())["detail"]
        backwards = await api.client.get(
            "/rewards/api/v1/integrity?from=2026-11-18&to=2026-11-01", headers=api.auth("admin")
        )
        assert backwards.status == 422


def _run(url: str, *args: str) -> Result:
    env = {"DATABASE_URL": url, "REWARDS_ENV_FILE": os.devnull}
    return CliRunner().invoke(integrity, list(args), env=env)


def test_the_cli_report_and_its_window(cli_url: str) -> None:  # noqa: F811
    clean = _run(cli_url)
    assert clean.exit_code == 0, clean.output
    assert "Nothing stands out" in clean.output

    async def plant() -> None:
        db = Database(cli_url)
        try:
            core = Core(settings=Settings(), db=db, clock=SystemClock())
            one = await find_by_email(db, "member.0@example.com")
            two = await find_by_email(db, "member.1@example.com")
            assert one is not None and two is not None
            await _give_back_and_forth(core, one.id, two.id, 5)
        finally:
            await db.dispose()

    asyncio.run(plant())
    today = datetime.now(UTC).date()
    found = _run(cli_url, "--from", str(today - timedelta(days=7)), "--to", str(today))
    assert found.exit_code == 1, found.output
    assert "Member 0 ⇄ Member 1" in found.output and "10 gifts" in found.output

    # A window before the kudos: nothing.
    before = _run(
        cli_url, "--from", str(today - timedelta(days=60)), "--to", str(today - timedelta(days=2))
    )
    assert before.exit_code == 0 and "Nothing stands out" in before.output

    backwards = _run(cli_url, "--from", str(today), "--to", str(today - timedelta(days=3)))
    assert backwards.exit_code == 2 and "--from must come before --to" in backwards.output
    assert "Traceback" not in backwards.output


def test_a_full_report_card_renders_validly_everywhere() -> None:
    """The largest card: ten rings of four long names, ten bursts, two campaigns with bursts."""
    from cards.integrity import integrity_card
    from cards.render.adaptive import to_adaptive
    from cards.render.blockkit import to_blocks
    from cards.render.telegram import to_telegram
    from cards.render.text import to_text
    from rewards.integrity import (
        CampaignTimeline,
        GiverBurst,
        IntegrityReport,
        Ring,
        RingMember,
        Thresholds,
        VoteBucket,
    )
    from tests.test_cards_adaptive import errors
    from tests.test_cards_blockkit import check_blocks, check_limits

    name = "Person with a rather long display name, from a department far away"
    start = datetime(2026, 11, 1, tzinfo=UTC)
    ring = Ring(tuple(RingMember(m, f"{name} {m}", 400, 390, 70, 0.97) for m in range(4)))
    report = IntegrityReport(
        since=start - timedelta(days=90),
        until=start,
        rings=(ring,) * 12,
        bursts=tuple(GiverBurst(m, f"{name} {m}", start.date(), 300, 1.5) for m in range(12)),
        campaigns=tuple(
            CampaignTimeline(
                c,
                "Star of the Quarter, the big one",
                "voting",
                tuple(
                    VoteBucket(start + timedelta(hours=h), 50, 50, h % 7 == 0, 3.0, name, 45)
                    for h in range(72)
                ),
            )
            for c in (1, 2)
        ),
        thresholds=Thresholds(),
    )
    card = integrity_card(report)
    for execute in (True, False):
        assert errors(to_adaptive(card, execute=execute)) == []
    blocks = to_blocks(card)
    check_blocks(blocks)
    check_limits(blocks)
    assert to_telegram(card)
    text = to_text(card)
    assert "burst 1 Nov 00:00–01:00 UTC" in text and "45 for Person" in text

"""Announcements delivered end to end: the real app with the Teams, Slack and Telegram adapters
talking to the fake platform servers in `tests/support`, and a real SMTP server (aiosmtpd).

The notifier is driven pass by pass (`deliver_due()`) with a fixed clock, so back-off is checked
by moving the clock rather than by waiting; one test runs the real background loop and `wake()`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner
from sqlalchemy import select

from bots import notifier as notifier_setup
from bots import slack, teams, telegram
from bots.cli import cli
from bots.notifier import NOTIFIER, Notifier, Report, app_gateways
from bots.notifier.email import Mailer
from bots.server import create_app
from rewards.catalog.announce import AnnounceSpec
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.services import announcements as queue
from rewards.services.announcements import AnnouncedItem, announce, list_deliveries
from rewards.services.channels import remember_channel
from rewards.services.members import find_by_account, link_account
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Award, Delivery, LedgerEntry
from tests.factories import add_member, add_reward
from tests.support.slack_api import FakeSlackApi
from tests.support.teams_connector import FakeConnector, current_sdk
from tests.support.telegram_api import TOKEN, FakeBotAPI
from tests.test_email import Inbox, parts, smtp_server
from tests.test_teams import PERSONAL, SAM_AAD, TEAM, TENANT, payload, profiles

SLACK_CHANNEL = "C0TEAM001"
ANA_SLACK = "U0ANA0001"
GROUP = "-1001234567890"
LI_CHAT = 222222222


@dataclass
class World:
    client: TestClient  # type: ignore[type-arg]
    core: Core
    clock: FixedClock
    connector: FakeConnector
    slack: FakeSlackApi
    telegram: FakeBotAPI
    inbox: Inbox
    members: dict[str, int]

    @property
    def notifier(self) -> Notifier:
        return self.client.app[NOTIFIER]

    @property
    def settings(self) -> Settings:
        return self.core.settings

    def telegram_sent(self) -> list[dict[str, Any]]:
        return self.telegram.params("sendMessage")

    async def raffle(self, key: str = "lottery:raffle:2026-11", **spec: Any) -> int:
        items = [
            AnnouncedItem(self.members[name], name, f"{name} wins a prize", points)
            for name, points in (("Sam Sender", 100), ("Ana Lopez", 50), ("Li Wei", 25))
        ]
        found = await announce(
            self.core.db,
            self.settings,
            key=key,
            kind="lottery",
            title="Holiday Raffle winners",
            items=items,
            now=self.clock.now(),
            reward_id=501,
            spec=AnnounceSpec(**{"email": True, **spec}),
            payload={"icon": "https://example.com/raffle.png"},
        )
        assert found is not None
        return found


@asynccontextmanager
async def world(database: Database, clock: FixedClock, **values: Any) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        connector = await stack.enter_async_context(FakeConnector())
        profiles(connector)
        slack_api = await stack.enter_async_context(FakeSlackApi())
        telegram_api = await FakeBotAPI().start()
        stack.push_async_callback(telegram_api.close)
        inbox, smtp_port = await stack.enter_async_context(smtp_server())
        settings = Settings(
            database_url=database.url,
            catalog_files=(),
            reward_scheduler=False,
            teams_sdk=current_sdk(),
            telegram_bot_token=TOKEN,
            telegram_chat_id=GROUP,
            announce_teams="Engineering",  # the stored Teams channel, by name
            announce_slack=SLACK_CHANNEL,
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            smtp_from="rewards@corp.test",
            delivery_max_attempts=values.pop("max_attempts", 3),
            delivery_backoff_seconds=30,
            extra={
                "SLACK_BOT_TOKEN": "xoxb-0000000000-test-token",
                "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
                "SLACK_API_URL": slack_api.api_url,
                "TELEGRAM_API_URL": telegram_api.url,
                "TELEGRAM_WEBHOOK_SECRET": "s3cret",
                "TELEGRAM_WEBHOOK_URL": "https://rewards.example.com/telegram/webhook",
            },
        )
        core = Core(settings=settings, db=database, clock=clock)
        app = create_app(settings, core, platforms=False)
        teams.setup(app, settings)
        assert slack.setup(app, settings) and telegram.setup(app, settings)
        notifier_setup.setup(app, settings, run=values.pop("run", False), interval=3600)
        client = await stack.enter_async_context(TestClient(TestServer(app, host="127.0.0.1")))

        # Teams: the bot is added to the Engineering team and Sam installs it personally.
        for name in ("conversation_update_team", "installation_update_personal"):
            response = await client.post("/api/messages", json=payload(name, connector))
            assert response.status == 200, await response.text()
        sam = await find_by_account(database, "teams", SAM_AAD, TENANT)
        assert sam is not None
        # Slack: Ana has an account. Telegram: Li has a private chat with the bot.
        ana = await add_member(database, "Ana Lopez")
        await link_account(database, ana, "slack", ANA_SLACK, tenant="T0001")
        li = await add_member(database, "Li Wei")
        await link_account(database, li, "telegram", str(LI_CHAT))
        await remember_channel(
            database, "telegram", str(LI_CHAT), {"chat_id": LI_CHAT}, kind="personal", member_id=li
        )
        await add_reward(database, reward_id=501, reward="Holiday Raffle", points=0)
        connector.clear()
        telegram_api.clear()
        yield World(
            client,
            core,
            clock,
            connector,
            slack_api,
            telegram_api,
            inbox,
            {"Sam Sender": sam.id, "Ana Lopez": ana, "Li Wei": li},
        )


async def delivery_rows(database: Database) -> list[Delivery]:
    async with database.read() as session:
        return list((await session.execute(select(Delivery).order_by(Delivery.id))).scalars())


async def award_rows(database: Database) -> list[tuple[Any, ...]]:
    async with database.read() as session:
        awards = (await session.execute(select(Award).order_by(Award.id))).scalars()
        ledger = (await session.execute(select(LedgerEntry))).scalars()
        return [(a.id, a.member_id, a.points, a.revoked_at) for a in awards] + [
            (e.id, e.member_id, e.points) for e in ledger
        ]


async def give_awards(w: World) -> None:
    """The awards the announcement is about, written before it (as the lottery does)."""
    async with w.core.db.write() as session:
        for n, member in enumerate(w.members.values()):
            session.add(
                Award(
                    reward_id=501,
                    member_id=member,
                    points=10,
                    source="lottery",
                    award_key=f"raffle-{n}",
                    awarded_at=w.clock.now(),
                )
            )


# --- delivered everywhere ------------------------------------------------------------------------


async def test_a_folded_lottery_announcement_reaches_every_platform_and_inbox(database, clock):
    async with world(database, clock) as w:
        await w.raffle()
        report = await w.notifier.deliver_due()
        assert (report.sent, report.failed, report.retried, report.skipped) == (9, 0, 0, 0)

        # Teams: one Adaptive Card in the stored channel, one DM in Sam's personal chat.
        channel_post, direct = sorted(w.connector.posted(), key=lambda s: s.conversation != TEAM)
        assert channel_post.conversation == TEAM
        [card] = channel_post.cards
        text = json.dumps(card, ensure_ascii=False)
        assert card["type"] == "AdaptiveCard" and "🎉 Holiday Raffle winners" in text
        for name, points in (("Sam Sender", 100), ("Ana Lopez", 50), ("Li Wei", 25)):
            assert name in text and f"+{points} points" in text
        assert "https://example.com/raffle.png" in text
        assert direct.conversation == PERSONAL
        assert "Congratulations, Sam!" in json.dumps(direct.cards[0], ensure_ascii=False)

        # Slack: one chat.postMessage with blocks in the channel, one in Ana's DM.
        posts = w.slack.of("chat.postMessage")
        assert [p["channel"] for p in posts].count(SLACK_CHANNEL) == 1 and len(posts) == 2
        [in_channel] = [p for p in posts if p["channel"] == SLACK_CHANNEL]
        blocks = json.dumps(in_channel["blocks"], ensure_ascii=False)
        assert all(name in blocks for name in ("Sam Sender", "Ana Lopez", "Li Wei"))
        [dm] = [p for p in posts if p["channel"] != SLACK_CHANNEL]
        assert w.slack.of("conversations.open")[0]["users"] == ANA_SLACK
        assert "Congratulations, Ana!" in json.dumps(dm["blocks"], ensure_ascii=False)

        # Telegram: sendMessage to TELEGRAM_CHAT_ID and to Li's private chat.
        sent = w.telegram_sent()
        assert sorted(str(s["chat_id"]) for s in sent) == sorted([GROUP, str(LI_CHAT)])
        [group] = [s for s in sent if str(s["chat_id"]) == GROUP]
        assert group["parse_mode"] == "HTML" and "<b>Li Wei</b> · +25 points" in group["text"]

        # Email: a text + HTML message for each recipient.
        assert sorted(m["To"] for m in w.inbox.messages) == [
            "ana.lopez@example.com",
            "li.wei@example.com",
            "sam.sender@example.com",
        ]
        body = parts(w.inbox.to("li.wei@example.com"))
        assert "Congratulations, Li!" in body["text/plain"] and "+25 points" in body["text/html"]

        rows = await delivery_rows(database)
        assert {r.status for r in rows} == {"sent"} and all(r.message_ref for r in rows)

        # Nothing is sent twice: later passes and a repeated announcement find nothing to do.
        clock.advance(timedelta(hours=2))
        assert (await w.notifier.deliver_due()).handled == 0
        assert (
            await announce(
                database,
                w.settings,
                key="lottery:raffle:2026-11",
                kind="lottery",
                title="x",
                items=[AnnouncedItem(w.members["Li Wei"], "Li Wei", "x")],
                now=clock.now(),
            )
            is None
        )
        assert len(w.connector.posted()) == 2 and len(w.telegram_sent()) == 2
        assert len(w.inbox.messages) == 3


async def test_a_member_the_bot_never_met_is_skipped_with_the_reason(database, clock):
    async with world(database, clock) as w:
        bo = await add_member(database, "Bo Smith")
        await link_account(database, bo, "telegram", "@bo_smith")  # imported, never wrote to us
        await announce(
            database,
            w.settings,
            key="birthday:bo",
            kind="birthday",
            title="Birthdays today",
            items=[AnnouncedItem(bo, "Bo Smith", "Bo Smith")],
            now=clock.now(),
            spec=AnnounceSpec(teams=False, slack=False),
        )
        report = await w.notifier.deliver_due()
        assert (report.sent, report.skipped) == (1, 1)
        [group] = w.telegram_sent()
        assert str(group["chat_id"]) == GROUP and "Bo Smith" in group["text"]
        [skipped] = await list_deliveries(database, status="skipped")
        assert skipped.target == f"member:{bo}"
        assert skipped.last_error == "Bo Smith has no direct chat with the bot on Telegram yet."


# --- platforms that are down ---------------------------------------------------------------------


async def test_platforms_that_are_down_are_retried_with_back_off_then_fail(database, clock):
    async with world(database, clock, max_attempts=3) as w:
        await give_awards(w)
        awards_before = await award_rows(database)
        await w.raffle(email=False)  # announcements are only about the platforms here
        await w.connector.server.close()  # Teams: connection refused
        await w.slack.server.close()  # Slack: connection refused
        w.telegram.failures["sendMessage"] = (500, "Internal Server Error")  # Telegram: 500

        first = await w.notifier.deliver_due()
        assert (first.retried, first.sent, first.failed) == (6, 0, 0)
        # Not due again before the back-off: 30 s after attempt 1, then 60 s after attempt 2.
        clock.advance(timedelta(seconds=29))
        assert (await w.notifier.deliver_due()).handled == 0
        clock.advance(timedelta(seconds=1))
        assert (await w.notifier.deliver_due()).retried == 6
        clock.advance(timedelta(seconds=59))
        assert (await w.notifier.deliver_due()).handled == 0
        clock.advance(timedelta(seconds=1))
        last = await w.notifier.deliver_due()
        assert (last.failed, last.retried) == (6, 0)

        rows = await delivery_rows(database)
        assert len(rows) == 6 and {(r.status, r.attempts) for r in rows} == {("failed", 3)}
        errors = {r.channel: r.last_error or "" for r in rows}
        assert "Internal Server Error" in errors["telegram"]
        assert "connect" in errors["slack"].lower() and "connect" in errors["teams"].lower()
        assert len(w.telegram_sent()) == 2 * 3  # two deliveries, three attempts each, no more
        clock.advance(timedelta(days=1))
        assert (await w.notifier.deliver_due()).handled == 0
        assert await award_rows(database) == awards_before  # the awards are untouched

        # An operator sees the failures and re-queues one after the outage.
        w.telegram.failures.clear()
        runner = CliRunner()
        env = {"DATABASE_URL": database.url}
        listed = await asyncio.to_thread(
            runner.invoke, cli, ["deliveries", "list", "--failed"], env=env
        )
        assert listed.exit_code == 1 and "Internal Server Error" in listed.output
        [group] = [r for r in rows if r.channel == "telegram" and r.target == GROUP]
        retried = await asyncio.to_thread(
            runner.invoke, cli, ["deliveries", "retry", str(group.id)], env=env
        )
        assert retried.exit_code == 0, retried.output
        w.telegram.clear()
        [queued] = await list_deliveries(database, status="pending")
        assert (queued.id, queued.attempts) == (group.id, 0)
        clock.set(max(clock.now(), queued.next_attempt_at))  # the CLI queued it at the real time
        report = await w.notifier.deliver_due()
        assert report.sent == 1 and [str(s["chat_id"]) for s in w.telegram_sent()] == [GROUP]
        again = await asyncio.to_thread(
            runner.invoke, cli, ["deliveries", "retry", str(group.id)], env=env
        )
        assert again.exit_code == 1 and "already sent" in again.output


async def test_a_platform_that_recovers_gets_each_message_once(database, clock):
    async with world(database, clock) as w:
        await w.raffle(teams=False, slack=False, email=False)
        w.telegram.failures["sendMessage"] = (502, "Bad Gateway")
        assert (await w.notifier.deliver_due()).retried == 2
        w.telegram.failures.clear()
        clock.advance(timedelta(seconds=30))
        assert (await w.notifier.deliver_due()).sent == 2
        for _ in range(3):
            clock.advance(timedelta(hours=1))
            await w.notifier.deliver_due()
        delivered = [s for s in w.telegram.calls if s.method == "sendMessage"]
        assert len(delivered) == 4  # two failed attempts, then one successful send each
        rows = [r for r in await delivery_rows(database) if r.channel == "telegram"]
        assert len(rows) == 2 and {(r.status, r.attempts) for r in rows} == {("sent", 2)}


async def test_an_unmounted_platform_fails_at_once_with_the_reason(database, clock):
    async with world(database, clock) as w:
        await w.raffle(teams=False, email=False)
        only_telegram = Notifier(
            w.core, lambda: {"telegram": app_gateways(w.client.app)["telegram"]}
        )
        report = await only_telegram.deliver_due()
        # Telegram sent its two; Slack (channel + Ana's DM) and Teams (Sam's DM) are not run here.
        assert (report.sent, report.failed, report.retried) == (2, 3, 0)
        failed = await list_deliveries(database, failed=True)
        reasons = {(f.channel, f.last_error) for f in failed}
        assert reasons == {
            (
                "slack",
                "Slack is not connected on this server (set SLACK_BOT_TOKEN and "
                "SLACK_SIGNING_SECRET).",
            ),
            ("teams", "Microsoft Teams is not mounted on this server."),
        }
        assert all(f.attempts == 1 for f in failed)
        assert not w.slack.of("chat.postMessage")


# --- several notifiers, and the loop -------------------------------------------------------------


async def test_racing_notifiers_send_each_delivery_once(database, clock):
    async with world(database, clock) as w:
        for n in range(8):
            await w.raffle(key=f"raffle-{n}", teams=False, slack=False, email=False)
        gateways = app_gateways(w.client.app)
        engines = [Database(database.url) for _ in range(3)]
        try:
            notifiers = [
                Notifier(Core(w.settings, db, clock), lambda: gateways, Mailer(w.settings))
                for db in engines
            ]
            for _ in range(3):
                await asyncio.gather(*(n.deliver_due() for n in notifiers))
        finally:
            for db in engines:
                await db.dispose()
        sent = [(str(s["chat_id"]), s["text"]) for s in w.telegram_sent()]
        assert len(sent) == 16  # 8 announcements x (group + Li's DM)
        rows = await delivery_rows(database)
        assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}


async def test_a_claim_taken_over_after_its_lease_ran_out_is_not_sent_again(database, clock):
    # A hung Slack: a claim waits behind its batch's slow sends past its lease, another notifier
    # claims and sends it; when the first one finally gets to it, the re-check stops the send.
    async with world(database, clock) as w:
        await w.raffle(teams=False, telegram=False, email=False, direct=False)
        gateways = app_gateways(w.client.app)
        [stale] = await queue.claim_due(database, clock.now(), channels=["slack"])
        clock.advance(queue.LEASE + timedelta(seconds=1))
        taken = Notifier(w.core, lambda: gateways, Mailer(w.settings))
        assert (await taken.deliver_due()).sent == 1
        late = Report()
        await w.notifier._deliver(w.core, gateways, stale, late)
        assert len(w.slack.of("chat.postMessage")) == 1
        [row] = await delivery_rows(database)
        assert (row.status, row.attempts) == ("sent", 2)
        assert late.superseded == 1 and late.sent == 0


async def test_a_hung_platform_is_cut_at_the_send_timeout_well_inside_the_lease(database, clock):
    async with world(database, clock) as w:
        await w.raffle(teams=False, telegram=False, email=False, direct=False)
        w.slack.post_delay = 3.0
        gateways = app_gateways(w.client.app)
        hurried = Notifier(w.core, lambda: gateways, Mailer(w.settings), send_timeout=0.3)
        assert hurried.lease > timedelta(seconds=hurried.send_timeout)
        started = asyncio.get_running_loop().time()
        report = await hurried.deliver_due()
        assert asyncio.get_running_loop().time() - started < 2.0
        assert report.retried == 1 and "TimeoutError" in report.errors[0]
        [row] = await delivery_rows(database)
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.next_attempt_at > clock.now()  # backed off, not re-sent at once
        # The default lease outlasts the default send timeout by the margin, and a lease that does
        # not is refused rather than risking a second post.
        assert queue.SEND_TIMEOUT + timedelta(seconds=30) <= queue.LEASE
        with pytest.raises(ValueError):
            Notifier(w.core, lambda: gateways, send_timeout=60, lease=timedelta(seconds=60))


async def test_the_loop_delivers_at_once_when_woken(database, clock):
    async with world(database, clock, run=True) as w:
        assert w.notifier.running
        await asyncio.sleep(0.1)  # the first pass ran and found nothing
        await w.raffle(teams=False, slack=False, email=False)
        w.notifier.wake()  # the next tick is an hour away: only the wake-up sends now
        await w.telegram.wait_for("sendMessage", 2)
    assert not w.notifier.running  # stopped with the app


@pytest.mark.parametrize("argv", [["deliveries", "list"], ["deliveries", "list", "--failed"]])
def test_cli_lists_nothing_on_an_empty_queue(tmp_path, argv):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    result = CliRunner().invoke(cli, argv, env=env)
    assert result.exit_code == 0, result.output
    assert "No" in result.output


def test_cli_retry_of_an_unknown_delivery(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    result = CliRunner().invoke(cli, ["deliveries", "retry", "42"], env=env)
    assert result.exit_code == 2 and "no delivery 42" in result.output

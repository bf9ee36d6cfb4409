"""Announcements exactly once across a crash: a real sweep and notifier
(`tests.support.announce_process`) in a subprocess on PostgreSQL, posting to the fake Slack, is
SIGKILLed at each step (after the awards, after the claim, during the send) through the test-only
``REWARDS_FAULT_KILL_AT`` hook (`rewards.faults`), then started again: every announcement reaches
the channel exactly once, and none is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from rewards.faults import ENV
from rewards.store.db import Database
from rewards.store.migrate import upgrade_async
from rewards.store.models import Announcement, AnnouncePending, Award, Delivery
from tests.conftest import _Backends
from tests.factories import add_member, add_reward
from tests.support.announce_process import CHANNEL
from tests.support.slack_api import FakeSlackApi

pytestmark = pytest.mark.postgresql_only

ROOT = Path(__file__).resolve().parent.parent
LOTTERIES = {701: "Spring Raffle", 702: "Summer Raffle"}


async def _run(url: str, slack: FakeSlackApi, kill_at: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if kill_at:
        env[ENV] = kill_at
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.announce_process",
        url,
        slack.api_url,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    if process.returncode not in (0, -signal.SIGKILL):
        pytest.fail(f"the process failed ({process.returncode}):\n{output.decode()}")
    return process.returncode


@pytest.mark.parametrize("kill_at", ["after_awards", "after_claim", "during_send"])
async def test_killing_the_process_at_each_step_loses_and_duplicates_no_announcement(
    _backends: _Backends, kill_at: str
) -> None:
    url = await _backends.create_pg_database("announce_crash")
    await upgrade_async(url)
    db = Database(url)
    try:
        for i in range(6):
            await add_member(db, f"Member {i}")
        for reward_id, name in LOTTERIES.items():
            await add_reward(
                db,
                reward_id=reward_id,
                reward=name,
                reward_type="Achievement Badge",
                multiple=True,
                rules=[["RandomUsers", {"count": 2}]],
            )
        async with FakeSlackApi() as slack:
            assert await _run(url, slack, kill_at) == -signal.SIGKILL  # died at the point
            assert await _run(url, slack, None) == 0  # the restart finishes the work
            posts = [p["text"] for p in slack.of("chat.postMessage")]
            channels = {p["channel"] for p in slack.of("chat.postMessage")}
        async with db.read() as session:
            announcements = list((await session.scalars(select(Announcement))).all())
            deliveries = list((await session.scalars(select(Delivery))).all())
            pending = (await session.scalars(select(AnnouncePending))).all()
            awards = (await session.scalars(select(Award))).all()
    finally:
        await db.dispose()

    # Every raffle drew and awarded its two winners once, and was announced once...
    assert len(awards) == 4 and not pending
    assert sorted(a.title for a in announcements) == sorted(LOTTERIES.values())
    assert all(len(a.payload["items"]) == 2 for a in announcements)
    # ...and each announcement reached the channel exactly once.
    assert channels == {CHANNEL}
    for name in LOTTERIES.values():
        assert sum(name in text for text in posts) == 1, (name, posts)
    assert len(posts) == 2
    assert {(d.channel, d.status) for d in deliveries} == {("slack", "sent")}

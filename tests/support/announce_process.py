"""One real sweep and notifier in a process of its own, for the crash tests of the announcements
(tests/test_announce_crash.py): ``python -m tests.support.announce_process DATABASE_URL SLACK_URL``.

It sweeps the rule rewards (awards, then announcements), then runs notifier passes, posting to
the fake Slack at SLACK_URL, until no delivery is pending (at most 20 s). The send timeout is 1 s
and the lease 2 s, so a restart takes over a dead process's claims quickly. With the test-only
``REWARDS_FAULT_KILL_AT`` set (see `rewards.faults`), the process SIGKILLs itself at that point.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import timedelta

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select

from bots.notifier import Notifier
from bots.slack import SlackGateway
from rewards.core import Core
from rewards.rules.evaluate import sweep
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Delivery

CHANNEL = "C0CRASH01"
TOKEN = "xoxb-0000000000-test-token"


async def main(url: str, slack_url: str) -> int:
    settings = Settings(
        database_url=url,
        catalog_files=(),
        reward_scheduler=False,
        announce_teams="",
        announce_slack=CHANNEL,
        extra={"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": slack_url},
    )
    db = Database(url)
    core = Core(settings=settings, db=db)
    try:
        await sweep(core, now=core.clock.now())
        slack = SlackGateway(core, AsyncWebClient(token=TOKEN, base_url=slack_url))
        notifier = Notifier(
            core, lambda: {"slack": slack}, None, send_timeout=1.0, lease=timedelta(seconds=2)
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            await notifier.deliver_due()
            async with db.read() as session:
                pending = await session.scalar(
                    select(func.count()).where(Delivery.status == "pending")  # type: ignore[arg-type]
                )
            if not pending:
                return 0
            await asyncio.sleep(0.2)
        return 1
    finally:
        await db.dispose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))

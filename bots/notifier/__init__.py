"""Announcement delivery in the server process: `setup(app, settings)` starts a `Notifier`.

What is delivered, where, and how failures are retried is described in `bots.notifier.notifier`;
the queue itself (claims, back-off, failures) lives in `rewards.services.announcements`, and the
email format in `bots.notifier.email`.

`setup` stores the notifier as ``app[NOTIFIER]``; its step in the runtime's lifecycle comes after
the platforms' (so the gateways exist when it starts) and stops before theirs. Whoever writes
an announcement in this process calls ``app[NOTIFIER].wake()`` to have it sent at once rather
than at the next tick (every `POLL_SECONDS`). Other processes writing announcements need not
do anything: the next tick of any server's notifier picks them up.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator

from aiohttp import web

from bots.gateway import ChannelGateway
from bots.lifecycle import lifecycle
from bots.notifier.email import Mailer
from bots.notifier.notifier import POLL_SECONDS, Gateways, Notifier, Report, capture_teams_errors
from rewards.settings import Settings

__all__ = ["NOTIFIER", "POLL_SECONDS", "Mailer", "Notifier", "Report", "app_gateways", "setup"]

log = logging.getLogger("bots.notifier")

NOTIFIER = web.AppKey("notifier", Notifier)


def app_gateways(app: web.Application) -> Gateways:
    """The gateways of the platforms mounted on `app` (None while one is still starting)."""
    from bots.server import CORE  # here: bots.server imports this package

    found: dict[str, ChannelGateway | None] = {}
    # A platform package that was never imported cannot have been mounted on `app`; looking in
    # sys.modules keeps an unused platform's SDK out of the process (see mount_platforms).
    if "bots.teams" in sys.modules:
        from bots.teams import ADAPTER, GATEWAY, LAZY

        teams = None
        if ADAPTER in app or LAZY in app:
            # Mounted lazily (`rewards serve`): None until the SDK is loaded, shortly after start.
            teams = app[LAZY].gateway if LAZY in app else app.get(GATEWAY)
            if teams is not None:
                capture_teams_errors(teams.adapter)
            found["teams"] = teams
    if "bots.slack" in sys.modules:
        from bots.slack import SLACK, SlackGateway

        if SLACK in app:
            found["slack"] = SlackGateway(app[CORE], app[SLACK].client) if CORE in app else None
    if "bots.telegram" in sys.modules:
        from bots.telegram import TELEGRAM

        if TELEGRAM in app:
            found["telegram"] = app[TELEGRAM].gateway
    return found


def setup(
    app: web.Application,
    settings: Settings,
    *,
    interval: float = POLL_SECONDS,
    run: bool = True,
) -> Notifier:
    """Create the notifier for `app` and tie it to the app's life; `run=False` builds it without
    the background loop (tests drive `deliver_due()` themselves with a fixed clock)."""
    from bots.server import CORE

    notifier = Notifier(
        lambda: app[CORE],
        lambda: app_gateways(app),
        Mailer.from_settings(settings),
        interval=interval,
    )
    app[NOTIFIER] = notifier

    async def running(app: web.Application) -> AsyncIterator[None]:
        if run:
            notifier.start()
            log.info(
                "notifier started: every %.0fs, platforms %s, email %s",
                interval,
                ", ".join(sorted(app_gateways(app))) or "none",
                "on" if notifier.mailer else "off",
            )
        yield
        await notifier.stop()

    lifecycle(app).append(running)
    return notifier

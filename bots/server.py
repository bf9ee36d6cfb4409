"""The aiohttp application: one server for the health check, and (in later steps) the platform
webhooks, the REST API and the scheduler.

Start-up order matters: migrate the schema, seed the predefined kudos tags, then load the
catalogue files, so the first request already sees every reward. A catalogue error stops the
start with the list of problems rather than serving a half-loaded catalogue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from sqlalchemy import func, select, text

from bots.scheduler import RewardScheduler
from rewards.catalog.loader import load_file
from rewards.core import Core
from rewards.services.catalog import load_catalog
from rewards.services.kudos import ensure_predefined_tags
from rewards.settings import Settings
from rewards.store.migrate import upgrade_async
from rewards.store.models import Reward

log = logging.getLogger("rewards.server")

CORE = web.AppKey("core", Core)
SCHEDULER = web.AppKey("scheduler", RewardScheduler)


async def load_catalog_files(core: Core) -> None:
    for name in core.settings.catalog_files:
        path = Path(name)
        if not await asyncio.to_thread(path.is_file):
            log.warning("catalogue file %s not found; skipped", path)
            continue
        definitions = await asyncio.to_thread(load_file, path)
        report = await load_catalog(core.db, definitions, clock=core.clock)
        log.info(
            "catalogue %s: %d added, %d changed, %d unchanged",
            path,
            len(report.added),
            len(report.changed),
            len(report.unchanged),
        )


async def healthz(request: web.Request) -> web.Response:
    core = request.app[CORE]
    try:
        async with core.db.read() as session:
            await session.execute(text("SELECT 1"))
            rewards = await session.scalar(select(func.count()).select_from(Reward))
    except Exception:  # the health check reports, it never raises
        log.exception("health check: database unavailable")
        return web.json_response({"status": "unavailable", "database": "down"}, status=503)
    return web.json_response({"status": "ok", "database": "ok", "rewards": int(rewards or 0)})


async def scheduling(app: web.Application) -> AsyncIterator[None]:
    """Run the scheduler while the server runs (after the catalogue is loaded, stopped before the
    database closes: cleanup contexts unwind in reverse)."""
    scheduler = RewardScheduler(app[CORE])
    await scheduler.start()
    app[SCHEDULER] = scheduler
    yield
    await scheduler.stop()


def create_app(
    settings: Settings, core: Core | None = None, *, platforms: bool = True
) -> web.Application:
    """Build the application; `core` may be passed in by tests (for a pinned clock), and
    `platforms=False` leaves the chat platforms for a test to mount itself."""
    app = web.Application(client_max_size=1024 * 1024)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await upgrade_async(settings.database_url)
        app[CORE] = core or Core.open(settings)
        await ensure_predefined_tags(app[CORE].db, app[CORE].clock)
        await load_catalog_files(app[CORE])
        yield
        await app[CORE].close()

    app.cleanup_ctx.append(lifecycle)
    if settings.reward_scheduler:
        app.cleanup_ctx.append(scheduling)
    app.router.add_get("/healthz", healthz)
    from bots import api  # imported here: its routes use CORE from this module

    api.setup(app)
    if platforms:
        mount_platforms(app, settings)
    return app


def mount_platforms(app: web.Application, settings: Settings) -> list[str]:
    """Mount each chat platform whose settings are present (Teams always: without an app id it
    serves only loopback clients, for the Bot Framework Emulator)."""
    from bots import notifier, slack, teams, telegram

    mounted = ["teams"]
    teams.setup(app, settings)
    if slack.setup(app, settings):
        mounted.append("slack")
    if telegram.setup(app, settings):
        mounted.append("telegram")
    notifier.setup(app, settings)  # delivers announcements through the platforms above
    log.info("platforms mounted: %s", ", ".join(mounted))
    return mounted

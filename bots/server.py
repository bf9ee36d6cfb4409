"""The aiohttp application: the health check, the platform webhooks, the REST API, and the
runtime steps behind them (database and catalogue, scheduler, event manager, notifier).

`mount` adds all of it to any aiohttp application: `create_app` (the `rewards serve` server) and
`rewards.engine.RewardsEngine` (an application embedding the engine) are its two callers.

Start-up order matters: migrate the schema, seed the predefined kudos tags, then load the
catalogue files, so the first request already sees every reward. A catalogue error stops the
start with the list of problems rather than serving a half-loaded catalogue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy import func, select, text

from bots import observability, site
from bots.lifecycle import Lifecycle, lifecycle
from bots.platforms import OK, platform_status
from bots.platforms import STATUS as PLATFORM_STATUS
from bots.scheduler import RewardScheduler
from rewards.core import Core
from rewards.leaderboards.rebuild import ensure_built
from rewards.services.catalog import LoadReport, load_catalog
from rewards.services.kudos import ensure_predefined_tags
from rewards.settings import Settings
from rewards.storages import JsonStorage, RewardStorage
from rewards.store.migrate import prepare_schema
from rewards.store.models import Reward

if TYPE_CHECKING:
    from bots.broker import EventManager

log = logging.getLogger("rewards.server")

CORE = web.AppKey("core", Core)
SCHEDULER = web.AppKey("scheduler", RewardScheduler)
EVENT_MANAGER: web.AppKey[EventManager] = web.AppKey("event_manager")


async def load_storage(core: Core, storage: RewardStorage) -> LoadReport:
    """Read a catalogue source and upsert it (all or nothing), logging what changed."""
    definitions = await storage.load_rewards()
    report = await load_catalog(core.db, definitions, clock=core.clock)
    log.info(
        "catalogue %s: %d added, %d changed, %d unchanged",
        storage.name,
        len(report.added),
        len(report.changed),
        len(report.unchanged),
    )
    return report


async def load_catalog_files(core: Core) -> None:
    for name in core.settings.catalog_files:
        path = Path(name)
        if not await asyncio.to_thread(path.is_file):
            log.warning("catalogue file %s not found; skipped", path)
            continue
        await load_storage(core, JsonStorage(json_file=path))


async def healthz(request: web.Request) -> web.Response:
    core = request.app[CORE]
    try:
        async with core.db.read() as session:
            await session.execute(text("SELECT 1"))
            rewards = await session.scalar(select(func.count()).select_from(Reward))
    except Exception:  # the health check reports, it never raises
        log.exception("health check: database unavailable")
        return web.json_response({"status": "unavailable", "database": "down"}, status=503)
    body: dict[str, object] = {"status": "ok", "database": "ok", "rewards": int(rewards or 0)}
    body["event_manager"] = core.settings.event_manager.status()
    manager = request.app.get(EVENT_MANAGER)
    if manager is not None:
        body["broker"] = manager.status()
    platforms = request.app.get(PLATFORM_STATUS)
    if platforms is not None:  # "ok", "starting" or "failed: ..." each (bots.platforms)
        body["platforms"] = platforms.as_dict()
    return web.json_response(body)


async def scheduling(app: web.Application) -> AsyncIterator[None]:
    """Run the scheduler while the server runs (after the catalogue is loaded, stopped before the
    database closes: the lifecycle unwinds in reverse)."""
    scheduler = RewardScheduler(app[CORE])
    await scheduler.start()
    app[SCHEDULER] = scheduler
    yield
    await scheduler.stop()


async def event_manager(app: web.Application) -> AsyncIterator[None]:
    """Run the RabbitMQ relay and consumer while the server runs (only mounted when the event
    manager is on; an unreachable broker is retried in the background, never fatal)."""
    from bots.broker import EventManager  # here: it is the one module that imports aio_pika

    manager = EventManager(app[CORE], app[CORE].settings)
    await manager.start()
    app[EVENT_MANAGER] = manager
    yield
    await manager.stop()


def mount(
    app: web.Application,
    settings: Settings,
    core: Core | None = None,
    *,
    platforms: bool = True,
    catalog_files: bool = True,
    catalog: Callable[[Core], Awaitable[None]] | None = None,
) -> Lifecycle:
    """Add the rewards runtime to `app`: `/healthz`, the operations endpoints (`/metrics`,
    `/livez`, `/readyz`: `bots.observability`), the REST API, the platform endpoints and the
    start/stop steps (database and catalogue, scheduler, event manager, platforms, notifier).

    Returns the lifecycle; whoever owns `app` starts and stops it (`create_app` through a cleanup
    context, `rewards.engine` through the host's startup and shutdown hooks). The settings'
    catalogue files are loaded unless `catalog_files=False`; `catalog` is awaited after them
    (the engine's storages).
    """
    runtime = lifecycle(app)

    async def core_step(app: web.Application) -> AsyncIterator[None]:
        schema = await prepare_schema(settings.database_url)
        log.info("database schema: %s", schema)
        app[CORE] = core or Core.open(settings)
        await ensure_predefined_tags(app[CORE].db, app[CORE].clock)
        if await ensure_built(app[CORE].db, settings.timezone):
            log.info("leaderboard counters rebuilt for %s", settings.timezone)
        if catalog_files:
            await load_catalog_files(app[CORE])
            await app[CORE].shop.load_configured()  # REWARDS_SHOP
        if catalog is not None:
            await catalog(app[CORE])
        log.info("event manager %s", settings.event_manager.status())
        # Event hooks: drained after each commit that staged them, and polled for rows a
        # crashed process left (`rewards.hooks`); `close` stops the runner and drains the rest.
        app[CORE].hooks.start()
        yield
        await app[CORE].close()

    runtime.append(core_step)
    # Right after the core: the scheduler, the platforms and the notifier report to the metrics.
    observability.setup(app, runtime, lambda app: app.get(CORE))
    if settings.reward_scheduler:
        runtime.append(scheduling)
    if settings.event_manager.active:
        runtime.append(event_manager)
    app.router.add_get("/healthz", healthz)
    from bots import api, files  # imported here: their routes use CORE from this module

    api.setup(app)
    files.setup(app)  # the signed download links, and `core.files` bound to the platforms
    if platforms:
        mount_platforms(app, settings)
    return runtime


def create_app(
    settings: Settings, core: Core | None = None, *, platforms: bool = True
) -> web.Application:
    """Build the application of `rewards serve`; `core` may be passed in by tests (for a pinned
    clock), and `platforms=False` leaves the chat platforms for a test to mount itself."""
    app = web.Application(client_max_size=1024 * 1024)
    app.cleanup_ctx.append(mount(app, settings, core, platforms=platforms).context)
    site.setup(app, settings)  # the manifest's /, /privacy and /terms (not when embedded)
    return app


def slack_configured(settings: Settings) -> bool:
    """Slack is on when both its bot token and signing secret are set (see `bots.slack.setup`)."""
    return bool(
        settings.extra.get("SLACK_BOT_TOKEN") and settings.extra.get("SLACK_SIGNING_SECRET")
    )


def telegram_configured(settings: Settings) -> bool:
    """Telegram is on when a bot token is set (see `bots.telegram.setup`)."""
    token = (settings.extra.get("TELEGRAM_BOT_TOKEN") or "").strip()
    return bool(token or settings.telegram_bot_token.strip())


def mount_platforms(app: web.Application, settings: Settings) -> list[str]:
    """Mount each chat platform whose settings are present (Teams always: without an app id it
    serves only loopback clients, for the Bot Framework Emulator).

    A platform's package (and its SDK: slack_bolt, python-telegram-bot) is imported only when its
    settings switch it on: each SDK costs a few hundred milliseconds of start-up.
    """
    from bots import notifier, teams

    status = platform_status(app)
    mounted = ["teams"]
    teams.setup_lazy(app, settings)  # the Bot Framework SDK is imported after the start
    status.set("teams", OK)
    if slack_configured(settings):
        from bots import slack

        if slack.setup(app, settings):
            mounted.append("slack")
            status.set("slack", OK)  # its token is checked (auth.test) on the first request
    if telegram_configured(settings):
        from bots import telegram

        if telegram.setup(app, settings):  # starts in the background, reports its own status
            mounted.append("telegram")
    else:
        log.info("Telegram is off: TELEGRAM_BOT_TOKEN is not set")
    notifier.setup(app, settings)  # delivers announcements through the platforms above
    log.info("platforms mounted: %s", ", ".join(mounted))
    return mounted

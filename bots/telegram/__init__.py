"""Telegram on the shared aiohttp server: `setup(app, settings)` mounts it.

Settings (all in `settings.extra`, see docs/connect-telegram.md):

- `TELEGRAM_BOT_TOKEN`: without it Telegram stays off (`setup` returns False).
- `TELEGRAM_WEBHOOK_SECRET`: required for `POST /telegram/webhook`; every request must carry it in
  `X-Telegram-Bot-Api-Secret-Token` (403 otherwise, before anything is read or written). Without
  a secret the webhook is not mounted at all.
- `TELEGRAM_WEBHOOK_URL`: the public URL of that route. With it (and a secret) the bot calls
  `setWebhook` on start; without it the bot long-polls `getUpdates` in a background task.
- `TELEGRAM_API_URL`: the Bot API server (default `https://api.telegram.org`); point it at a
  self-hosted `telegram-bot-api` server or, in tests, at a fake.

The start (getMe, setMyCommands, setWebhook) runs in a task of its own (`bots.platforms.supervise`;
the server's start waits for its first attempt, briefly): a rejected token or an unreachable Bot
API is reported by `/healthz` and retried with back-off while the rest of the server serves; the
webhook answers 503 until the bot is ready. PTB's `AIORateLimiter` keeps Telegram's flood limits
and retries a call answered 429 after its `retry_after`.

Who may take part (`settings.telegram_allowed_chats`, from `TELEGRAM_CHAT_ID` and
`TELEGRAM_ALLOWED_CHATS`, and `settings.membership`) is decided in `bots.telegram.bot`: imported
or linked people, and members of those chats (`bots.telegram.membership`); nobody else.

python-telegram-bot's `Application` is built with `.updater(None)`: its own web server and polling
loop would each want to own the event loop, so we feed it updates ourselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from telegram import BotCommand
from telegram.error import InvalidToken
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder

from bots.gate import read_json, refusal
from bots.platforms import FIRST_RETRY, supervise
from bots.telegram.bot import ALLOWED_UPDATES, TelegramBot
from bots.telegram.gateway import TelegramGateway
from bots.telegram.shape import update_problem
from dialogs.commands import COMMANDS
from rewards.core import Core
from rewards.inputs import WEBHOOK_JSON, InputRefused, clean_strings, is_token
from rewards.settings import Settings

__all__ = [
    "DEFAULT_API_URL",
    "SECRET_HEADER",
    "TELEGRAM",
    "WEBHOOK_PATH",
    "TelegramBot",
    "TelegramGateway",
    "TelegramRuntime",
    "setup",
]

log = logging.getLogger("bots.telegram")

DEFAULT_API_URL = "https://api.telegram.org"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
POLL_TIMEOUT = 30  # seconds Telegram holds a getUpdates call open
POLL_BACKOFF = 5.0  # seconds to wait after a failed getUpdates
RATE_LIMIT_RETRIES = 3  # a call Telegram answers 429 is retried this often after retry_after


@dataclass
class TelegramRuntime:
    """Telegram's part of the app state; `bot` and `gateway` exist once the server has started."""

    settings: Settings
    application: Application  # type: ignore[type-arg]
    secret: str
    webhook_url: str
    poll_timeout: int = POLL_TIMEOUT
    start_retry: float = FIRST_RETRY  # seconds after a failed start; doubles (bots.platforms)
    bot: TelegramBot | None = None
    gateway: TelegramGateway | None = None
    poller: asyncio.Task[None] | None = field(default=None, repr=False)


TELEGRAM = web.AppKey("telegram", TelegramRuntime)


def _setting(settings: Settings, name: str) -> str:
    return (settings.extra.get(name) or "").strip()


def setup(app: web.Application, settings: Settings) -> bool:
    """Mount Telegram on `app` (built by `bots.server.create_app`); False when it is not configured.

    Call it before the app starts: the start-up hook it adds runs after the one creating `Core`.
    """
    token = _setting(settings, "TELEGRAM_BOT_TOKEN") or settings.telegram_bot_token.strip()
    if not token:
        log.info("Telegram is off: TELEGRAM_BOT_TOKEN is not set")
        return False
    api = (_setting(settings, "TELEGRAM_API_URL") or DEFAULT_API_URL).rstrip("/")
    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .updater(None)
        # Telegram's flood limits (30 messages a second, 20 a minute per group) are kept, and a
        # 429 is waited out (its retry_after) and retried instead of losing the reply.
        .rate_limiter(AIORateLimiter(max_retries=RATE_LIMIT_RETRIES))
        .build()
    )
    secret = _setting(settings, "TELEGRAM_WEBHOOK_SECRET")
    webhook_url = _setting(settings, "TELEGRAM_WEBHOOK_URL")
    runtime = TelegramRuntime(settings, application, secret, webhook_url)
    app[TELEGRAM] = runtime
    if secret:
        app.router.add_post(WEBHOOK_PATH, webhook)
    else:
        log.warning(
            "Telegram webhook not mounted: TELEGRAM_WEBHOOK_SECRET is not set, and a webhook "
            "without a secret would accept updates from anyone; using long polling instead"
        )
    supervise(
        app,
        "telegram",
        _starter(app, runtime),
        lambda: _stop(runtime),
        reason=lambda error: failure_reason(error, token),
        first_retry=lambda: runtime.start_retry,
    )
    return True


def _starter(app: web.Application, runtime: TelegramRuntime) -> Callable[[], Awaitable[None]]:
    async def start() -> None:
        from bots.server import CORE  # here, so bots.server may import this package at its top

        try:
            await _start(runtime, app[CORE])
        except BaseException:
            await _stop(runtime)  # the next attempt starts from scratch
            raise

    return start


async def _start(runtime: TelegramRuntime, core: Core) -> None:
    application = runtime.application
    await application.initialize()  # getMe: a wrong token fails here (and is retried)
    await application.start()
    bot = TelegramBot(core, application.bot)
    await _set_commands(runtime)
    if runtime.webhook_url and runtime.secret:
        await application.bot.set_webhook(
            runtime.webhook_url,
            secret_token=runtime.secret,
            allowed_updates=list(ALLOWED_UPDATES),
        )
    else:
        if runtime.webhook_url:
            log.warning("TELEGRAM_WEBHOOK_URL ignored without TELEGRAM_WEBHOOK_SECRET")
        runtime.poller = asyncio.create_task(_poll(runtime, bot), name="telegram-polling")
    runtime.gateway = TelegramGateway(core, application.bot)
    runtime.bot = bot  # the webhook answers 503 until here
    log.info("Telegram bot @%s ready", bot.username)


async def _stop(runtime: TelegramRuntime) -> None:
    """Undo whatever part of `_start` ran (all of it, some of it, or none)."""
    if runtime.poller is not None:
        runtime.poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runtime.poller
        runtime.poller = None
    runtime.bot = runtime.gateway = None
    application = runtime.application
    if application.running:
        await application.stop()
    await application.shutdown()
    await application.bot.shutdown()  # the HTTP clients a failed getMe left open (else a no-op)


def failure_reason(error: BaseException, token: str) -> str:
    """A start failure in one line for the log and `/healthz`, without the bot token (PTB puts
    it in its InvalidToken message, and `/healthz` needs no key)."""
    if isinstance(error, InvalidToken):
        return "the Bot API rejected TELEGRAM_BOT_TOKEN"
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if token:
        text = text.replace(token, "***")
    return " ".join(text.split())[:200]


async def _set_commands(runtime: TelegramRuntime) -> None:
    commands = [BotCommand(c.name, c.description) for c in COMMANDS]
    try:
        await runtime.application.bot.set_my_commands(commands)
    except Exception:  # the menu is a convenience; the bot works without it
        log.warning("setMyCommands failed", exc_info=True)


async def _poll(runtime: TelegramRuntime, bot: TelegramBot) -> None:
    """Long-poll getUpdates until cancelled; each update goes through `handle_update`."""
    api = runtime.application.bot
    await api.delete_webhook()  # getUpdates is refused while a webhook is set
    offset: int | None = None
    while True:
        try:
            updates = await api.get_updates(
                offset=offset, timeout=runtime.poll_timeout, allowed_updates=list(ALLOWED_UPDATES)
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("getUpdates failed; retrying in %.0fs", POLL_BACKOFF, exc_info=True)
            await asyncio.sleep(POLL_BACKOFF)
            continue
        for update in updates:
            offset = update.update_id + 1
            await bot.handle_update(update)


async def webhook(request: web.Request) -> web.Response:
    """`POST /telegram/webhook`: check the secret, then handle the update before answering."""
    runtime = request.app[TELEGRAM]
    given = request.headers.get(SECRET_HEADER, "")
    if not is_token(given) or not hmac.compare_digest(given.encode(), runtime.secret.encode()):
        return web.Response(status=403, text="forbidden")
    if runtime.bot is None:
        return web.Response(status=503, text="starting")
    try:  # the input gate: size, nesting depth, valid JSON (`rewards.inputs`)
        data = await read_json(request, WEBHOOK_JSON, "The update")
    except InputRefused as refused:
        return refusal(request, refused, "telegram")
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        return web.Response(status=400, text="not a Telegram update")
    if (problem := update_problem(data)) is not None:  # a shape PTB would half-read
        log.warning("telegram: refused update %s: %s", data["update_id"], problem)
        return web.Response(status=400, text="not a Telegram update")
    # Control characters in every string (names, text, captions) are replaced before PTB reads
    # the update (entity offsets stay right), so none reaches a member's name or a message.
    await runtime.bot.handle_json(clean_strings(data))
    return web.json_response({"ok": True})

"""Files in the chat: delivering an export or a member's data into a direct chat, per platform.

- Slack uploads the file (`files.getUploadURLExternal`, the upload, `files.completeUploadExternal`:
  slack_sdk's `files_upload_v2`) into the member's DM;
- Telegram sends it with `sendDocument` into the member's private chat;
- Teams cannot take an upload from a bot in a chat, so it gets a card with a download button: a
  short-lived signed link (`rewards.exports.links`) to `GET /rewards/files/{token}`, served here,
  which produces the file again from the link's recipe while streaming it.

`setup(app)` adds that route and binds `core.files` (`rewards.exports.files.FileDelivery`) to the
platforms mounted on `app`, so dialogs reach a platform's sender without knowing the platform.
Chat files are capped at `CHAT_FILE_LIMIT` bytes (Telegram's own limit for bots): bigger exports
are for `rewards export` and the API, which stream without a limit.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bots.lifecycle import lifecycle
from rewards.errors import NotAvailable
from rewards.exports.files import FileSender, OutgoingFile

log = logging.getLogger("bots.files")

CHAT_FILE_LIMIT = 50 * 1024 * 1024
DOWNLOAD_PATH = "/rewards/files/{token}"


async def read_whole(file: OutgoingFile, limit: int = CHAT_FILE_LIMIT) -> bytes:
    """The file's bytes, refused past `limit` with a sentence saying where to get it instead."""
    pieces, size = [], 0
    async for piece in file.open():
        size += len(piece)
        if size > limit:
            raise NotAvailable(
                f"{file.name} is over {limit // (1024 * 1024)} MB, too big for a chat: use "
                "`rewards export` or the API's /exports download, or a shorter period."
            )
        pieces.append(piece)
    return b"".join(pieces)


def sender_for(app: web.Application, platform: str) -> FileSender | None:
    """The file sender of `platform` on `app`; None when it is not mounted (or not started)."""
    from bots.notifier import app_gateways  # here: bots.notifier imports bots.server

    gateway = app_gateways(app).get(platform)
    if gateway is None:
        return None
    if platform == "slack":
        from bots.files.slack import SlackFiles

        return SlackFiles(gateway.core, gateway.client)  # type: ignore[attr-defined]
    if platform == "telegram":
        from bots.files.telegram import TelegramFiles

        return TelegramFiles(gateway.core, gateway.bot)  # type: ignore[attr-defined]
    if platform == "teams":
        from bots.files.teams import TeamsFiles

        return TeamsFiles(gateway)
    return None


def setup(app: web.Application) -> None:
    from bots.files.download import download
    from bots.server import CORE

    app.router.add_get(DOWNLOAD_PATH, download)

    async def bind(app: web.Application) -> AsyncIterator[None]:
        app[CORE].files.bind(lambda platform: sender_for(app, platform))
        yield

    lifecycle(app).append(bind)

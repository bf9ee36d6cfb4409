"""Slack: a file into the member's DM with `files_upload_v2` (getUploadURLExternal, the upload,
completeUploadExternal with the DM as `channel_id`)."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bots.files import read_whole
from rewards.core import Core
from rewards.exports.files import OutgoingFile
from rewards.services.members import get_member

PLATFORM = "slack"


class SlackFiles:
    def __init__(self, core: Core, client: AsyncWebClient) -> None:
        self.core = core
        self.client = client

    async def send_file(self, member_id: int, file: OutgoingFile) -> bool:
        account = (await get_member(self.core.db, member_id)).account(PLATFORM)
        if account is None:
            return False
        opened = await self.client.conversations_open(users=account.user_id)
        channel = (opened.get("channel") or {}).get("id")
        if not channel:
            return False
        content = await read_whole(file)
        await self.client.files_upload_v2(
            channel=str(channel),
            content=content,
            filename=file.name,
            title=file.name,
            initial_comment=file.caption,
        )
        return True

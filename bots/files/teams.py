"""Teams: a card with a download button in the member's personal chat; the button opens a
short-lived signed link served by the bot (`bots.files.download`)."""

from __future__ import annotations

from bots.teams.gateway import TeamsGateway
from cards.files import download_link
from rewards.exports.files import OutgoingFile
from rewards.exports.links import LIFETIME, sign
from rewards.settings import Settings


def base_url(settings: Settings) -> str:
    """Where people reach the bot: PUBLIC_URL, else the address it listens on."""
    return settings.public_url.rstrip("/") or f"http://{settings.host}:{settings.port}"


class TeamsFiles:
    def __init__(self, gateway: TeamsGateway) -> None:
        self.gateway = gateway

    async def send_file(self, member_id: int, file: OutgoingFile) -> bool:
        core = self.gateway.core
        token = sign(core.settings.link_secret, dict(file.recipe), member_id, core.clock.now())
        url = f"{base_url(core.settings)}/rewards/files/{token}"
        card = download_link(file.name, file.caption, url, int(LIFETIME.total_seconds() // 60))
        return await self.gateway.direct(member_id, card) is not None

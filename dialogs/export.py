"""`/export KIND [FROM] [TO] [csv|jsonl]` for admins, and the `/me data` delivery.

Both hand a file to the person in their direct chat with the bot, through the platform's file
sender (`core.files`, bound by the server: an upload on Slack and Telegram, a download link on
Teams). Admins are `REWARDS_ADMINS`; anyone else is refused before anything is read, and a
refusal writes nothing. The turn answers where the command was typed with one sentence saying
where the file went (never the file itself: an export is not for the channel).
"""

from __future__ import annotations

import re

from dialogs.base import Context, Dialog, Finish, Step
from dialogs.replies import Say
from rewards.errors import InvalidInput, NotAllowed
from rewards.exports.files import OutgoingFile, data_file, export_file
from rewards.exports.formats import FORMATS
from rewards.exports.kinds import KINDS
from rewards.services._subjects import load_person
from rewards.services.admins import is_admin

USAGE = (
    f"Usage: /export {'|'.join(KINDS)} [FROM] [TO] [csv|jsonl], with dates as YYYY-MM-DD, "
    "e.g. /export kudos 2026-01-01 2026-03-31."
)
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_export_args(args: str) -> dict[str, str | None]:
    """`KIND [FROM] [TO] [FORMAT]`, the dates and the format in any order after the kind."""
    words = args.split()
    if not words:
        raise InvalidInput(USAGE)
    days = [w for w in words[1:] if _DAY.fullmatch(w)]
    formats = [w.casefold() for w in words[1:] if w.casefold() in FORMATS]
    other = [w for w in words[1:] if w not in days and w.casefold() not in FORMATS]
    if other or len(days) > 2 or len(formats) > 1:
        raise InvalidInput(f"I don't understand {' '.join(other or words[1:])!r}. {USAGE}")
    return {
        "what": "export",
        "kind": words[0].casefold(),
        "from": days[0] if days else None,
        "to": days[1] if len(days) > 1 else None,
        "format": formats[0] if formats else "csv",
    }


async def deliver(ctx: Context, file: OutgoingFile) -> Step:
    """Send `file` to the person's direct chat on this platform and say so."""
    sender = ctx.core.files.sender(ctx.turn.key.platform)
    if sender is None:
        return Finish(
            (
                Say(
                    "I can't send files here: ask me on Teams, Slack or Telegram, or run "
                    "`rewards export KIND` or `rewards members data EMAIL` on the server."
                ),
            )
        )
    if not await sender.send_file(ctx.member_id, file):
        return Finish(
            (Say("I couldn't reach our direct chat: open a chat with me first, then ask again."),)
        )
    return Finish((Say(f"I sent {file.name} to our direct chat."),))


class ExportDialog(Dialog):
    name = "export"

    async def start(self, ctx: Context, args: str) -> Step:
        async with ctx.core.db.read() as session:
            person = await load_person(session, ctx.member_id)
        if not is_admin(ctx.core.settings, person.subject):
            raise NotAllowed("Exports are for admins (REWARDS_ADMINS).")
        recipe = parse_export_args(args) | {"by": ctx.member_id}
        return await deliver(ctx, export_file(ctx.core.db, ctx.core.settings, recipe))


async def send_my_data(ctx: Context) -> Step:
    """`/me data`: everything stored about the person, as a JSON file in their direct chat."""
    return await deliver(ctx, data_file(ctx.core.db, ctx.member_id, ctx.now))

"""`/integrity [DAYS]`: the integrity report for admins (reciprocity rings, giving bursts, the
open campaigns' vote timelines), over the last DAYS days (90 by default).

Anyone else is refused before anything is read: the report shows the votes of campaigns that
are still open, which members only see at the close. For the same reason it is only shown where
the admin alone sees it (a direct chat, Slack's ephemeral answers); in a shared channel the admin
is asked to send it in a direct chat. It is read-only and finishes in one turn."""

from __future__ import annotations

from cards.integrity import integrity_card
from dialogs.base import Context, Dialog, Finish, Step
from dialogs.replies import Say, Show
from rewards.errors import InvalidInput, NotAllowed
from rewards.integrity import build_report, window_of
from rewards.services._subjects import load_people
from rewards.services.admins import is_admin

MAX_DAYS = 366
USAGE = f"Say it as /integrity or /integrity DAYS (1 to {MAX_DAYS}; 90 by default)."


class IntegrityDialog(Dialog):
    name = "integrity"

    async def start(self, ctx: Context, args: str) -> Step:
        async with ctx.core.db.read() as session:
            people = await load_people(session, [ctx.member_id])
        me = people.get(ctx.member_id)
        if me is None or not is_admin(ctx.core.settings, me.subject):
            raise NotAllowed("Only an admin can see the integrity report.")
        if not ctx.turn.private:
            return Finish(
                (
                    Say(
                        "The integrity report shows the votes of open campaigns, so I only "
                        "show it where only you can see it: send /integrity to me in a direct "
                        "message."
                    ),
                )
            )
        words = args.split()
        if len(words) > 1 or (words and not words[0].isdigit()):
            raise InvalidInput(USAGE)
        days = int(words[0]) if words else 90
        if not 1 <= days <= MAX_DAYS:
            raise InvalidInput(USAGE)
        since, until = window_of(None, None, ctx.now, days=days)
        report = await build_report(ctx.core.db, since, until)
        return Finish((Show(integrity_card(report)),))

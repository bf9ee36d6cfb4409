"""`/kudos`: one-shot (`/kudos @ana @li great demo #teamwork`) or guided by the kudos form."""

from __future__ import annotations

import re
from typing import Any

from cards.model import Card
from cards.screens import kudos_form, kudos_posted
from dialogs.base import Ask, Context, Dialog, Finish, Step, StepTokens
from dialogs.forms import as_list, people_refs, split_mentions
from dialogs.replies import Audience, Show
from rewards.errors import InvalidInput
from rewards.services.kudos import TagView, list_tags
from rewards.services.leaderboards import TagTrend
from rewards.services.mentions import resolve_mention

TAG = re.compile(r"(?<!\S)#([\w-]+)")
USAGE = "Say who they are for, e.g. /kudos @ana.lopez thanks for the great demo #teamwork"


def parse_kudos_line(text: str) -> tuple[list[str], str, list[str]]:
    """(mentions, message, tags) of a one-shot line; the message is what is left, tidied."""
    mentions = split_mentions(text)
    tags = TAG.findall(text)
    rest = TAG.sub(" ", text)
    for mention in mentions:
        rest = rest.replace(mention, " ", 1)
    return mentions, " ".join(rest.split()), tags


class KudosDialog(Dialog):
    name = "kudos"

    async def start(self, ctx: Context, args: str) -> Step:
        if not args:
            return Ask("form")
        mentions, message, tags = parse_kudos_line(args)
        if not mentions:
            raise InvalidInput(f"Who are the kudos for? {USAGE}")
        return await self._give(ctx, mentions, message, tags)

    async def action(self, ctx: Context, verb: str, ref: str) -> Step | None:
        # "Give kudos" buttons on other cards (the leaderboard) open the form.
        return Ask("form") if verb == "start" else None

    async def card(
        self, ctx: Context, step: str, values: dict[str, Any], tokens: StepTokens
    ) -> Card:
        settings = ctx.core.settings
        trends = await ctx.core.leaderboards.tag_trends(limit=5, now=ctx.now)
        predefined = [t for t in await list_tags(ctx.core.db) if t.predefined]
        if settings.kudos_tags == "closed":  # trending custom tags are not offered
            names = {t.name for t in predefined}
            trends = [t for t in trends if t.tag in names]
        left = await ctx.core.kudos.allowance_left(ctx.member_id, ctx.now)
        tags: list[TagView | TagTrend] = [*trends, *predefined]
        return kudos_form(
            tags,
            submit=tokens.submit,
            cancel=tokens.cancel,
            values=values or None,
            allowance=left.describe(ctx.now) if left else None,
            tag_required=settings.kudos_require_tag,
            custom_tags=settings.kudos_tags == "open",
        )

    async def submit(self, ctx: Context, step: str, values: dict[str, Any]) -> Step:
        refs = people_refs(values.get("recipients"))
        if not refs:
            raise InvalidInput("Who are the kudos for? Name at least one person.")
        message = str(values.get("message") or "")
        return await self._give(ctx, refs, message, as_list(values.get("tags")))

    async def _give(self, ctx: Context, refs: list[str], message: str, tags: list[str]) -> Finish:
        receivers: list[int] = []
        for ref in refs:
            receivers.append((await resolve_mention(ctx.core.db, ref)).id)
        kudos = await ctx.core.kudos.give(ctx.member_id, receivers, message, tags)
        return Finish((Show(kudos_posted(kudos), Audience.EVERYONE),))

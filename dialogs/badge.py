"""`/badge`: pick a badge you may give, the recipient and a message; confirm; award.

Only badges the giver may give right now are offered (`AwardService.givable`); the recipient's
side (awardee rules, duplicates, availability) is left to `AwardService.award`, the one pipeline,
whose refusal sentences reach the person unchanged.
"""

from __future__ import annotations

from typing import Any

from cards.model import Card
from cards.screens import badge_awarded, badge_confirm, badge_picker
from dialogs.base import Ask, Context, Dialog, Finish, Step, StepTokens
from dialogs.forms import people_refs
from dialogs.replies import Audience, Show, Update
from rewards.catalog.model import RewardCore
from rewards.errors import InvalidInput, NotAvailable, SelfAward
from rewards.services.awards import AwardSource
from rewards.services.mentions import resolve_mention

PICK = "pick"
CONFIRM = "confirm"


class BadgeDialog(Dialog):
    name = "badge"

    async def _givable(self, ctx: Context) -> list[RewardCore]:
        return await ctx.core.awards.givable(ctx.member_id, ctx.now)

    async def _reward(self, ctx: Context, badge: object) -> RewardCore:
        for reward in await self._givable(ctx):
            if str(reward.reward_id) == str(badge):
                return reward
        raise NotAvailable("That badge is not one you can give right now; pick one from the list.")

    async def start(self, ctx: Context, args: str) -> Step:
        givable = await self._givable(ctx)
        if not givable:
            return Finish((Show(badge_picker([], submit="", cancel="")),))
        return Ask(PICK)

    async def card(
        self, ctx: Context, step: str, values: dict[str, Any], tokens: StepTokens
    ) -> Card:
        if step == CONFIRM:
            return badge_confirm(
                await self._reward(ctx, values["badge"]),
                str(values["recipient_name"]),
                values.get("message") or None,
                confirm=tokens.submit,
                cancel=tokens.cancel,
            )
        return badge_picker(
            await self._givable(ctx),
            submit=tokens.submit,
            cancel=tokens.cancel,
            values=values or None,
        )

    async def submit(self, ctx: Context, step: str, values: dict[str, Any]) -> Step:
        if step == CONFIRM:
            reward = await self._reward(ctx, values["badge"])
            award = await ctx.core.awards.award(
                reward.reward_id,
                int(values["recipient_id"]),
                by=ctx.member_id,
                message=values.get("message") or None,
                source=AwardSource.DIALOG,
            )
            return Finish((Update(badge_awarded(award, reward), Audience.EVERYONE),))
        if not values.get("badge"):
            raise InvalidInput("Pick a badge from the list.")
        reward = await self._reward(ctx, values["badge"])
        refs = people_refs(values.get("recipient"))
        if len(refs) != 1:
            # Quotes the field's label, so a modal shows it under that field.
            raise InvalidInput("Who gets it? Pick or name exactly one person.")
        recipient = await resolve_mention(ctx.core.db, refs[0])
        if recipient.id == ctx.member_id:
            raise SelfAward(f"You can't give {reward.reward} to yourself.")
        message = str(values.get("message") or "").strip() or None
        return Ask(
            CONFIRM,
            {
                "badge": str(reward.reward_id),
                "recipient": recipient.email,
                "recipient_id": recipient.id,
                "recipient_name": recipient.display_name,
                "message": message,
            },
        )

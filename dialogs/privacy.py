"""`/me settings` (a member's privacy choices) and `/forget me` (erase my personal data).

`/me settings` is a step of `/me` (`dialogs.info.MeDialog` hands its `settings` step here): a
form of three choices whose submit records them in one update. `/forget me` asks once, with a
Confirm/Cancel card; the confirmation is claimed with the conversation's nonce like every step,
so a double click erases once and the second click is told the card is out of date.
"""

from __future__ import annotations

from typing import Any

from cards.model import Card
from cards.privacy import forget_confirm, forgotten, privacy_saved, privacy_settings
from dialogs.base import Ask, Context, Dialog, Finish, Step, StepTokens
from dialogs.replies import Show
from rewards.errors import InvalidInput
from rewards.privacy import erasure, preferences

SETTINGS = "settings"
CONFIRM = "confirm"


async def settings_card(ctx: Context, tokens: StepTokens) -> Card:
    current = await preferences.get_preferences(ctx.core.db, ctx.core.settings, ctx.member_id)
    return privacy_settings(current, submit=tokens.submit, cancel=tokens.cancel)


async def settings_submit(ctx: Context, values: dict[str, Any]) -> Step:
    def chosen(name: str) -> str | None:
        value = values.get(name)
        return str(value) if value not in (None, "") else None

    saved = await preferences.set_preferences(
        ctx.core.db,
        ctx.core.settings,
        ctx.member_id,
        leaderboard=chosen("leaderboard"),
        celebrations=chosen("celebrations"),
        language=chosen("language"),
        clock=ctx.core.clock,
    )
    return Finish((Show(privacy_saved(saved)),))


class ForgetDialog(Dialog):
    name = "forget"

    async def start(self, ctx: Context, args: str) -> Step:
        if args.strip().casefold() != "me":
            raise InvalidInput(
                "Type /forget me to erase your personal data (you will be asked to confirm)."
            )
        return Ask(CONFIRM)

    async def card(
        self, ctx: Context, step: str, values: dict[str, Any], tokens: StepTokens
    ) -> Card:
        return forget_confirm(confirm=tokens.submit, cancel=tokens.cancel)

    async def submit(self, ctx: Context, step: str, values: dict[str, Any]) -> Step:
        await erasure.forget_member(ctx.core.db, ctx.member_id, now=ctx.now)
        return Finish((Show(forgotten()),))

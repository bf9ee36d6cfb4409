"""The shop in chat: `/shop`, `/redeem`, and the admins' Approve / Reject buttons.

- `/shop` shows the member's spendable balance, what they can redeem now (a Redeem button each),
  what they could save up for, how many more items are closed to them, and the state of their
  latest redemptions (so an approval can be followed where no direct message reaches them).
- `/redeem ITEM [note]` (ITEM: the item's number or name) redeems at once: typed, it is its own
  confirmation. A Redeem button asks first ("Redeem Coffee for 50 points?"), so one stray click
  spends nothing; the confirmation's button is a step token, so a second click is stale.
- An item that needs approval reaches the admins as a card with Approve / Reject (posted by the
  notifier, see `approval_card`). Its buttons carry only the redemption's id: they work from a
  direct message or a channel, for whoever presses them, and the dialog checks that the presser
  is an admin (`REWARDS_ADMINS`). Reject asks for a reason (a form; field by field where forms
  are not shown whole). The service decides once: a second click or a second admin is told who
  decided and when, and the card is redrawn with that decision.
- `/shop pending`, `/shop approve ID` and `/shop reject ID REASON` do the same by typing (the
  console, or an admin who prefers it).

Every rule (balance, stock, limits, who may buy what, states) is the shop service's; its
refusal sentences reach the person unchanged.
"""

from __future__ import annotations

import re
from typing import Any

from cards.actions import encode
from cards.model import Card
from cards.shop import (
    decision_line,
    redeem_confirm,
    redemption_decided,
    redemption_made,
    redemption_request,
    redemptions_list,
    reject_form,
    shop,
)
from dialogs.base import Ask, Context, Dialog, Finish, Step, StepTokens
from dialogs.nominations import Private
from dialogs.replies import Audience, Say, Show, Update
from rewards.economy.shop.model import Offer, RedemptionView
from rewards.errors import InvalidInput, NotAllowed, NotAvailable, NotFound, RewardsError
from rewards.services._subjects import load_people
from rewards.services.admins import is_admin

REDEEM_USAGE = "Type /redeem ITEM [note], with the item's number or name from /shop."
ADMIN_USAGE = "Use /shop pending, /shop approve ID or /shop reject ID REASON."
ONLY_ADMINS = "Only an admin can approve or reject redemptions."
BUY = "buy"
WITHDRAW = "undo"
CONFIRM = "confirm"
APPROVE = "ok"
REJECT = "no"
REASON = "reason"
RECENT = 3  # the member's latest redemptions shown under the shop
_ID = re.compile(r"^#?(\d+)$")


def redeem_token(item_id: int) -> str:
    return encode("redeem", BUY, str(item_id))


def withdraw_token(redemption_id: int) -> str:
    return encode("redeem", WITHDRAW, str(redemption_id))


def approve_token(redemption_id: int) -> str:
    return encode("approval", APPROVE, str(redemption_id))


def reject_token(redemption_id: int) -> str:
    return encode("approval", REJECT, str(redemption_id))


def approval_card(view: RedemptionView) -> Card:
    """The admins' card of a redemption as it is now: Approve / Reject while it waits, the
    decision once made (the notifier posts this; a click redraws it)."""
    if view.state != "requested":
        return redemption_request(view)
    return redemption_request(view, approve=approve_token(view.id), reject=reject_token(view.id))


async def shop_card(ctx: Context) -> Card:
    """The shop for the member of the turn, with their latest redemptions and their states."""
    service = ctx.core.shop
    balance = await service.balance(ctx.member_id)
    offers = await service.offers(ctx.member_id)
    recent = await service.list(member_id=ctx.member_id, limit=RECENT)
    tokens = {o.item.item_id: redeem_token(o.item.item_id) for o in offers}
    return shop(balance, offers, redeem=tokens, recent=recent)


def split_item(args: str, offers: list[Offer]) -> tuple[str, str | None]:
    """(item reference, note) of `/redeem` arguments: a number, a quoted name, or the longest
    leading run of words that names an item ("Coffee mug for my desk" -> "Coffee mug")."""
    text = args.strip()
    if text.startswith(('"', "“")):
        closing = '"' if text[0] == '"' else "”"
        name, _, rest = text[1:].partition(closing)
        return name.strip(), rest.strip() or None
    words = text.split()
    names = {o.item.name.casefold() for o in offers}
    for n in range(len(words), 0, -1):  # names first: "2026 calendar" is a name, not item 2026
        candidate = " ".join(words[:n])
        if candidate.casefold() in names:
            return candidate, " ".join(words[n:]) or None
    return words[0].lstrip("#") if _ID.match(words[0]) else words[0], " ".join(words[1:]) or None


class ShopDialog(Dialog):
    """`/shop`, and the admins' typed `/shop pending|approve|reject`."""

    name = "shop"

    async def start(self, ctx: Context, args: str) -> Step:
        verb, _, rest = args.strip().partition(" ")
        verb = verb.casefold()
        if verb == "":
            return Finish((Show(await shop_card(ctx)),))
        if verb not in ("pending", "approve", "reject"):
            raise InvalidInput(
                f"I don't know /shop {verb}. Type /shop to see the shop. {ADMIN_USAGE}"
            )
        admin = await admin_name(ctx)
        if admin is None:
            raise NotAllowed(ONLY_ADMINS)
        if verb == "pending":
            views = await ctx.core.shop.list(state="requested", limit=20)
            return Finish(
                (
                    Show(redemptions_list(views, title="Redemptions waiting for approval")),
                    *(Show(approval_card(v)) for v in views[:5]),
                )
            )
        number, _, reason = rest.strip().partition(" ")
        match = _ID.match(number)
        if match is None:
            raise InvalidInput(f"Which redemption? {ADMIN_USAGE}")
        redemption_id = int(match.group(1))
        if verb == "approve":
            view = await ctx.core.shop.approve(redemption_id, by=admin)
        else:
            if not reason.strip():
                raise InvalidInput(
                    f"Please give a reason, e.g. /shop reject {redemption_id} out of stock."
                )
            view = await ctx.core.shop.reject(redemption_id, by=admin, reason=reason.strip())
        return Finish((Show(approval_card(view)), Say(decided_sentence(view))))


class RedeemDialog(Dialog):
    """`/redeem ITEM [note]`, and the shop card's Redeem buttons (with a confirmation)."""

    name = "redeem"

    async def start(self, ctx: Context, args: str) -> Step:
        if not args.strip():
            return Finish((Show(await shop_card(ctx)),))
        offers = await ctx.core.shop.offers(ctx.member_id)
        ref, note = split_item(args, offers)
        if not ref:
            raise InvalidInput(REDEEM_USAGE)
        return await self._redeem(ctx, ref, note, update=False)

    async def _redeem(
        self, ctx: Context, ref: str | int, note: str | None, *, update: bool
    ) -> Finish:
        view = await ctx.core.shop.redeem(ctx.member_id, ref, note)
        balance = await ctx.core.shop.balance(ctx.member_id)
        card = redemption_made(view, balance.spendable, withdraw=withdraw_token(view.id))
        return Finish((Update(card) if update else Show(card),))

    async def _withdraw(self, ctx: Context, redemption_id: int) -> Finish:
        """The member takes back a request still waiting for approval: the points come back.
        Once an admin decided (or on a second click) they are told the state instead."""
        try:
            view = await ctx.core.shop.cancel(redemption_id, member_id=ctx.member_id)
        except NotAllowed as refusal:
            return Finish((Private(str(refusal)),))
        balance = await ctx.core.shop.balance(ctx.member_id)
        said = (
            f"You withdrew {view.item_name}: {view.cost} points are back, "
            f"{balance.spendable} to spend."
        )
        return Finish((Update(redemption_decided(view)), Private(said)))

    async def _offer(self, ctx: Context, item: object) -> tuple[Offer, Any]:
        offers = await ctx.core.shop.offers(ctx.member_id)
        for offer in offers:
            if str(offer.item.item_id) == str(item):
                if not offer.allowed:
                    raise NotAvailable(offer.reason or f"You can't redeem {offer.item.name} now.")
                return offer, await ctx.core.shop.balance(ctx.member_id)
        raise NotFound("That item is no longer in the shop. Type /shop to see what is.")

    async def action(self, ctx: Context, verb: str, ref: str) -> Step | None:
        if verb == WITHDRAW and ref.isdigit():
            return await self._withdraw(ctx, int(ref))
        if verb != BUY or not ref.isdigit():
            return None
        await self._offer(ctx, ref)  # refuses at once what cannot be bought
        return Ask(CONFIRM, {"item": ref})

    async def card(
        self, ctx: Context, step: str, values: dict[str, Any], tokens: StepTokens
    ) -> Card:
        offer, balance = await self._offer(ctx, values.get("item"))
        return redeem_confirm(offer, balance, confirm=tokens.submit, cancel=tokens.cancel)

    async def submit(self, ctx: Context, step: str, values: dict[str, Any]) -> Step:
        item = str(values.get("item") or "")
        if not item.isdigit():
            raise InvalidInput(REDEEM_USAGE)
        return await self._redeem(ctx, int(item), None, update=True)


async def admin_name(ctx: Context) -> str | None:
    """The presser's display name when they are an admin (`REWARDS_ADMINS`), else None."""
    async with ctx.core.db.read() as session:
        people = await load_people(session, [ctx.member_id])
    person = people.get(ctx.member_id)
    if person is None or not is_admin(ctx.core.settings, person.subject):
        return None
    return person.display_name or person.subject.email


def decided_sentence(view: RedemptionView) -> str:
    """What the admin who decided is told."""
    if view.state == "rejected":
        return (
            f"You rejected {view.member_name}'s {view.item_name}; {view.cost} points went back "
            "to them and they are told why."
        )
    return f"You {view.state} {view.member_name}'s {view.item_name}; they are told."


class ApprovalDialog(Dialog):
    """The Approve / Reject buttons of the admins' card (no command of its own)."""

    name = "approval"

    async def action(self, ctx: Context, verb: str, ref: str) -> Step | None:
        if verb not in (APPROVE, REJECT) or not ref.isdigit():
            return None
        admin = await admin_name(ctx)
        if admin is None:
            return Finish((Private(ONLY_ADMINS),))
        redemption_id = int(ref)
        if verb == REJECT:
            view = await ctx.core.shop.get(redemption_id)
            if view.state != "requested":
                return self._already(view)
            return Ask(REASON, {"redemption": redemption_id})
        try:
            view = await ctx.core.shop.approve(redemption_id, by=admin)
        except NotAllowed as refusal:
            return await self._refused(ctx, redemption_id, refusal)
        return Finish(
            (Update(approval_card(view), Audience.VIEWERS), Private(decided_sentence(view)))
        )

    def _already(self, view: RedemptionView) -> Finish:
        said = f"{view.member_name}'s {view.item_name} was already decided: {decision_line(view)}"
        return Finish((Update(approval_card(view), Audience.VIEWERS), Private(said)))

    async def _refused(self, ctx: Context, redemption_id: int, refusal: RewardsError) -> Finish:
        """Another click or admin was first: say so, and redraw the card as it now stands."""
        try:
            view = await ctx.core.shop.get(redemption_id)
        except NotFound:
            return Finish((Private(str(refusal)),))
        if view.state == "requested":  # refused for another reason: the card stays as it is
            return Finish((Private(str(refusal)),))
        return Finish((Update(approval_card(view), Audience.VIEWERS), Private(str(refusal))))

    async def card(
        self, ctx: Context, step: str, values: dict[str, Any], tokens: StepTokens
    ) -> Card:
        view = await ctx.core.shop.get(int(values["redemption"]))
        return reject_form(view, submit=tokens.submit, cancel=tokens.cancel)

    async def submit(self, ctx: Context, step: str, values: dict[str, Any]) -> Step:
        redemption_id = int(values["redemption"])
        admin = await admin_name(ctx)
        if admin is None:
            return Finish((Say(ONLY_ADMINS),))
        reason = " ".join(str(values.get(REASON) or "").split())
        if not reason:
            raise InvalidInput("Please say why you reject it: the member is told.")
        try:
            view = await ctx.core.shop.reject(redemption_id, by=admin, reason=reason)
        except NotAllowed as refusal:
            current = await ctx.core.shop.get(redemption_id)
            if current.state == "requested":
                raise
            return Finish((Update(approval_card(current)), Say(str(refusal))))
        return Finish((Update(approval_card(view)), Say(decided_sentence(view))))


__all__ = [
    "ApprovalDialog",
    "RedeemDialog",
    "ShopDialog",
    "approval_card",
    "approve_token",
    "redeem_token",
    "reject_token",
    "split_item",
    "withdraw_token",
]

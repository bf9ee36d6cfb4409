"""Shop screens: the shop, the confirmation of a redemption, its receipt, the admins' approval
card with Approve / Reject, the rejection reason form, and the outcome the member is told.

The shop lists what a member can redeem now (with a Redeem button each), then what they could
save up for (allowed, but more than their spendable balance), each with its cost, stock and
limit. Items the member may not have at all (not available to them, sold out, their limit
reached) are only counted, so the card never tempts with a button that can only say no.

The approval card is posted proactively (a direct message to each admin and/or the redemptions
channel) and redrawn in place once decided: the decision and who made it replace the buttons.
Screens take their action tokens from the caller (the dialog owns its verbs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cards.model import (
    Action,
    Block,
    Card,
    Fact,
    Facts,
    Field,
    FieldKind,
    Form,
    ItemList,
    Row,
    Text,
    Tone,
)
from cards.screens import _date, _plural
from rewards.economy.shop.model import Balance, Offer, RedemptionView, ShopItem

SHOP_BUTTONS = 5
"""Redeem buttons on the shop card: Teams shows about five actions before hiding the rest in an
overflow menu, and a long row of buttons reads badly everywhere. The rest are typed."""
BUTTON_TITLE_MAX = 30
REASON_MAX = 300
PERIODS = {"day": "a day", "week": "a week", "month": "a month", "year": "a year"}
STATE_TITLES = {
    "requested": "waiting for approval",
    "approved": "approved",
    "fulfilled": "fulfilled",
    "rejected": "rejected",
    "cancelled": "cancelled",
}


def _short(text: str, limit: int = BUTTON_TITLE_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _lead(icon: str | None) -> str:
    """The item's icon when it is a short emoji-like text (not a URL or file name), else 🎁."""
    if icon and len(icon) <= 4 and not icon.isascii():
        return icon
    return "🎁"


def _points(count: int) -> str:
    return _plural(count, "point")


def _limit(item: ShopItem, limit_left: int | None) -> str:
    if item.per_member_limit is None:
        return ""
    period = PERIODS.get(item.limit_period or "", "")
    text = f"{item.per_member_limit} per person" + (f" {period}" if period else "")
    if limit_left is not None and limit_left < item.per_member_limit:
        text += f" ({limit_left} left for you)"
    return text


def _detail(offer: Offer, *, missing: int = 0) -> str:
    item = offer.item
    parts = [item.description.strip()]
    if missing > 0:
        parts.append(f"{_points(missing)} to go")
    if offer.stock_left is not None:
        parts.append(f"{offer.stock_left} left")
    parts.append(_limit(item, offer.limit_left))
    if item.approval:
        parts.append("needs approval")
    return " · ".join(p for p in parts if p)


def _balance_facts(balance: Balance) -> Facts:
    return Facts(
        (
            Fact("Spendable", _points(balance.spendable)),
            Fact("Earned", _points(balance.earned)),
            Fact("Spent", _points(balance.spent)),
        )
    )


def _recent_rows(views: Sequence[RedemptionView]) -> ItemList:
    return ItemList(
        tuple(
            Row(
                _lead(v.item_icon),
                f"{v.item_name} (redemption #{v.id})",
                STATE_TITLES.get(v.state, v.state),
                decision_line(v) if v.state != "requested" else _date(v.requested_at),
            )
            for v in views
        )
    )


def shop(
    balance: Balance,
    offers: Sequence[Offer],
    *,
    redeem: Mapping[int, str],
    recent: Sequence[RedemptionView] = (),
) -> Card:
    """The shop as one member sees it; `redeem` maps item ids to their Redeem button's token;
    `recent` are the member's latest redemptions, so they can follow an approval."""
    ready = [o for o in offers if o.allowed and o.affordable]
    saving = [o for o in offers if o.allowed and not o.affordable]
    hidden = len(offers) - len(ready) - len(saving)
    body: list[Block] = [_balance_facts(balance)]
    if not offers:
        body.append(Text("The shop is empty for now. Check back later!"))
    if ready:
        body.append(Text("You can redeem", heading=True))
        body.append(
            ItemList(
                tuple(
                    Row(
                        _lead(o.item.icon),
                        f"{o.item.name} (#{o.item.item_id})",
                        _points(o.item.cost),
                        _detail(o),
                    )
                    for o in ready
                )
            )
        )
    if saving:
        body.append(Text("Save up for", heading=True))
        body.append(
            ItemList(
                tuple(
                    Row(
                        _lead(o.item.icon),
                        f"{o.item.name} (#{o.item.item_id})",
                        _points(o.item.cost),
                        _detail(o, missing=o.item.cost - balance.spendable),
                    )
                    for o in saving
                )
            )
        )
    if offers and not ready and not saving:
        body.append(Text("Nothing in the shop is open to you right now."))
    if hidden and (ready or saving):
        body.append(
            Text(
                f"{_plural(hidden, 'more item is', 'more items are')} sold out, at your limit "
                "or not open to you.",
                tone=Tone.SUBTLE,
            )
        )
    buttons = [o for o in ready if o.item.item_id in redeem][:SHOP_BUTTONS]
    if ready:
        body.append(Text("Type /redeem ITEM [note] to redeem by number or name.", tone=Tone.SUBTLE))
    if recent:
        body.append(Text("Your recent redemptions", heading=True))
        body.append(_recent_rows(recent))
    return Card(
        screen="shop",
        title="🛍️ Rewards shop",
        summary=f"Rewards shop: you have {_points(balance.spendable)} to spend",
        body=tuple(body),
        actions=tuple(
            Action(_short(f"Redeem {o.item.name}"), token=redeem[o.item.item_id], style="positive")
            for o in buttons
        ),
    )


def redeem_confirm(offer: Offer, balance: Balance, *, confirm: str, cancel: str) -> Card:
    """ "Redeem Coffee for 50 points?" before a Redeem button spends anything."""
    item = offer.item
    after = balance.spendable - item.cost
    body: list[Block] = [
        Text(item.description) if item.description.strip() else Text(item.name),
        Facts(
            (
                Fact("Cost", _points(item.cost)),
                Fact("Spendable after", _points(after)),
                *((Fact("Approval", "an admin approves it first"),) if item.approval else ()),
            )
        ),
        Text(
            f"To add a note for whoever hands it over, type /redeem {item.item_id} your note.",
            tone=Tone.SUBTLE,
        ),
    ]
    return Card(
        screen="redeem_confirm",
        title=f"{_lead(item.icon)} Redeem {item.name} for {_points(item.cost)}?",
        summary=f"Redeem {item.name} for {_points(item.cost)}?",
        body=tuple(body),
        actions=(
            Action("Redeem", token=confirm, style="positive"),
            Action("Cancel", token=cancel),
        ),
    )


def _redemption_facts(view: RedemptionView, *, member: bool) -> Facts:
    facts = [
        Fact("Item", view.item_name),
        Fact("Cost", _points(view.cost)),
        *((Fact("For", view.member_name),) if member else ()),
        *((Fact("Note", view.note),) if view.note else ()),
        Fact("Requested", _date(view.requested_at)),
        Fact("Redemption", f"#{view.id}"),
    ]
    return Facts(tuple(facts))


def redemption_made(
    view: RedemptionView, spendable: int | None = None, *, withdraw: str | None = None
) -> Card:
    """The member's receipt right after redeeming: approved at once, or waiting for an admin
    (with a Withdraw button while it waits, when `withdraw` is given)."""
    waiting = view.state == "requested"
    title = (
        f"⏳ {view.item_name} is waiting for approval"
        if waiting
        else f"✅ You redeemed {view.item_name}"
    )
    body: list[Block] = [_redemption_facts(view, member=False)]
    if waiting:
        body.append(
            Text(
                "An admin will approve or reject it; I'll tell you. If it is rejected, the "
                "points come back.",
            )
        )
    if spendable is not None:
        body.append(Text(f"You have {_points(spendable)} left to spend.", tone=Tone.SUBTLE))
    actions = (Action("Withdraw", token=withdraw),) if waiting and withdraw else ()
    return Card(
        screen=f"redemption_{view.state}",
        title=title,
        summary=f"Redemption #{view.id}: {view.item_name}, {STATE_TITLES.get(view.state, '')}",
        body=tuple(body),
        actions=actions,
    )


def decision_line(view: RedemptionView) -> str:
    """ "Approved by Ada Admin on 3 Dec 2026" (the latest step, for a redrawn approval card)."""
    if view.state == "fulfilled" and view.fulfilled_by:
        when = f" on {_date(view.fulfilled_at)}" if view.fulfilled_at else ""
        return f"Fulfilled by {view.fulfilled_by}{when}."
    state = STATE_TITLES.get(view.state, view.state).capitalize()
    if view.state == "cancelled":
        when = f" on {_date(view.decided_at)}" if view.decided_at else ""
        return f"Withdrawn by {view.member_name}{when}."
    if view.decided_by:
        when = f" on {_date(view.decided_at)}" if view.decided_at else ""
        return f"{state} by {view.decided_by}{when}."
    return f"{state}."


def redemption_request(
    view: RedemptionView, *, approve: str | None = None, reject: str | None = None
) -> Card:
    """The admins' card for a redemption that needs approval. With tokens (and still
    "requested") it carries Approve / Reject; otherwise it shows the decision instead."""
    body: list[Block] = [_redemption_facts(view, member=True)]
    open_ = view.state == "requested"
    if not open_:
        tone = Tone.GOOD if view.state in ("approved", "fulfilled") else Tone.ATTENTION
        body.append(Text(decision_line(view), tone=tone))
        if view.reason:
            body.append(Text(f"Reason: {view.reason}"))
    actions: tuple[Action, ...] = ()
    if open_ and approve and reject:
        actions = (
            Action("Approve", token=approve, style="positive"),
            Action("Reject", token=reject, style="destructive"),
        )
    return Card(
        screen="redemption_request" if open_ else "redemption_request_decided",
        title=f"🛍️ {view.member_name} would like {view.item_name}",
        summary=f"{view.member_name} would like {view.item_name} ({_points(view.cost)}): "
        + ("approve or reject" if open_ else decision_line(view)),
        body=tuple(body),
        actions=actions,
    )


def reject_form(view: RedemptionView, *, submit: str, cancel: str) -> Card:
    """Asks the admin why, before a rejection (the member is told the reason)."""
    return Card(
        screen="redemption_reject",
        title=f"Reject {view.member_name}'s {view.item_name}?",
        summary=f"Why reject redemption #{view.id}?",
        body=(
            Text(
                f"{view.member_name} gets {_points(view.cost)} back and is told your reason.",
            ),
        ),
        form=Form(
            fields=(
                Field(
                    "reason",
                    "Reason for the rejection",
                    FieldKind.MULTILINE,
                    placeholder="e.g. out of stock until January",
                    max_length=REASON_MAX,
                ),
            ),
            submit=Action("Reject", token=submit, style="destructive", submits_form=True),
            cancel=Action("Cancel", token=cancel),
        ),
    )


def redemption_decided(view: RedemptionView) -> Card:
    """What the member is told when an admin approves, rejects or fulfils their redemption."""
    first = view.member_name.split()[0] if view.member_name.strip() else view.member_name
    body: list[Block] = []
    if view.state == "rejected":
        emoji, headline = "↩️", f"{view.item_name} was not approved"
        body.append(Text(f"Sorry, {first}: {decision_line(view)}"))
        if view.reason:
            body.append(Text(f"Reason: {view.reason}"))
        body.append(Text(f"{_points(view.cost)} are back in your balance.", tone=Tone.GOOD))
    elif view.state == "fulfilled":
        emoji, headline = "🎁", f"{view.item_name} is yours"
        body.append(Text(f"Enjoy, {first}! {decision_line(view)}"))
    elif view.state == "cancelled":
        emoji, headline = "↩️", f"You withdrew {view.item_name}"
        body.append(Text(f"{_points(view.cost)} are back in your balance.", tone=Tone.GOOD))
    else:
        emoji, headline = "✅", f"{view.item_name} was approved"
        body.append(Text(f"Good news, {first}! {decision_line(view)}"))
    body.append(_redemption_facts(view, member=False))
    return Card(
        screen=f"redemption_decided_{view.state}",
        title=f"{emoji} {headline}",
        summary=f"{headline}: {decision_line(view)}",
        body=tuple(body),
    )


def redemptions_list(views: Sequence[RedemptionView], *, title: str) -> Card:
    """A short list of redemptions (an admin's pending ones, or a member's own)."""
    rows = tuple(
        Row(
            f"#{v.id}",
            f"{v.item_name} · {v.member_name}",
            _points(v.cost),
            " · ".join(p for p in (STATE_TITLES.get(v.state, v.state), _date(v.requested_at)) if p),
        )
        for v in views
    )
    return Card(
        screen="redemptions",
        title=title,
        summary=f"{title}: {len(views)}",
        body=(ItemList(rows, empty="None."),),
    )

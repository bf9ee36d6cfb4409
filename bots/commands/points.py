"""`rewards points grant|balance`: admin grants and corrections, and a member's balance.

``rewards points grant EMAIL N --reason R`` writes a ledger entry of kind "adjustment" (shown in
the member's history, counted by the leaderboards like any other points). N may be negative to
correct a mistake, but never by more than the member can still spend: points already spent in
the shop are not taken back. Exit codes as `rewards redemptions`: 1 refused, 2 unknown member.
"""

from __future__ import annotations

import click

from bots.commands.redemptions import member_id, run
from rewards.core import Core
from rewards.economy.grants import Grant
from rewards.economy.shop.model import Balance


@click.group()
def points() -> None:
    """Points: grant or correct (ledger adjustments), show a member's balance."""


@points.command("grant", context_settings={"ignore_unknown_options": True})
@click.argument("email")
@click.argument("amount", type=int, metavar="N")
@click.option("--reason", required=True, help="Why (shown in the member's history).")
def grant_command(email: str, amount: int, reason: str) -> None:
    """Give EMAIL N points (negative N: a correction) as a ledger adjustment."""

    async def work(core: Core) -> Grant:
        return await core.shop.grant(await member_id(core, email), amount, reason=reason)

    done = run(work)
    verb = "Granted" if done.points > 0 else "Took back"
    click.echo(
        f"{verb} {abs(done.points)} points {'to' if done.points > 0 else 'from'} "
        f"{done.member_name} (ledger entry {done.entry_id}): {done.reason}"
    )
    click.echo(
        f"Balance: {done.balance.earned} earned, {done.balance.spent} spent, "
        f"{done.balance.spendable} to spend."
    )


@points.command("balance")
@click.argument("email")
def balance_command(email: str) -> None:
    """EMAIL's points: earned, spent in the shop, and spendable."""

    async def work(core: Core) -> Balance:
        return await core.shop.balance(await member_id(core, email))

    shown = run(work)
    click.echo(f"{shown.earned} earned, {shown.spent} spent, {shown.spendable} to spend")

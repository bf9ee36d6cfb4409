"""`rewards redemptions list|approve|reject|fulfil`: redemptions of the rewards shop.

The CLI is an operator's tool with direct database access: a decision is recorded as made by
"the command line" unless ``--as EMAIL`` names an admin (`REWARDS_ADMINS`), as in the chat. The
member is told the outcome by the server's notifier (the notification is recorded with the
decision). Exit codes: 0 done; 1 refused, with the sentence why (already decided, for one); 2 an
unknown redemption or member.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import click

from bots.commands.common import with_database
from rewards.core import Core
from rewards.economy.shop.model import STATES, RedemptionView
from rewards.errors import NotAllowed, NotFound, RewardsError, UnknownMember
from rewards.services._subjects import load_person
from rewards.services.admins import is_admin
from rewards.services.members import find_by_email
from rewards.settings import Settings
from rewards.store.db import Database

T = TypeVar("T")
AS_HELP = "Decide as this admin (by email); without it the decision is the command line's."
COMMAND_LINE = "the command line"


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def run(work: Callable[[Core], Awaitable[T]]) -> T:
    """Run `work` with a core; a refusal prints its sentence and exits 1 (2 when not found)."""

    async def go(db: Database, settings: Settings) -> T:
        return await work(Core(settings=settings, db=db))

    try:
        return with_database(go)
    except NotFound as problem:
        click.echo(f"Error: {problem}", err=True)
        sys.exit(2)
    except RewardsError as problem:
        click.echo(f"Error: {problem}", err=True)
        sys.exit(1)


async def member_id(core: Core, email: str) -> int:
    member = await find_by_email(core.db, email)
    if member is None:
        raise UnknownMember(f"I don't know a member with the email {email}.")
    return member.id


async def _by(core: Core, email: str | None) -> str:
    if email is None:
        return COMMAND_LINE
    found = await member_id(core, email)
    async with core.db.read() as session:
        person = await load_person(session, found)
    if not is_admin(core.settings, person.subject):
        raise NotAllowed(f"{email} is not an admin (REWARDS_ADMINS).")
    return person.subject.email


def line(view: RedemptionView) -> str:
    """One redemption on one line: id, state, member, item, cost, when, who, note/reason."""
    text = (
        f"#{view.id}  {view.state:<9}  {view.member_name}  {view.item_name}  {view.cost} points"
        f"  requested {_when(view.requested_at)}"
    )
    if view.decided_at is not None and view.state != "requested":
        text += f"  {'decided' if view.decided_by else 'at'} {_when(view.decided_at)}"
        if view.decided_by:
            text += f" by {view.decided_by}"
    if view.fulfilled_at is not None:
        text += f"  fulfilled {_when(view.fulfilled_at)} by {view.fulfilled_by}"
    if view.note:
        text += f'  note: "{view.note}"'
    if view.reason:
        text += f'  reason: "{view.reason}"'
    return text


@click.group()
def redemptions() -> None:
    """Redemptions of the rewards shop: list, approve, reject, fulfil."""


@redemptions.command("list")
@click.option("--state", type=click.Choice(STATES), help="Only redemptions in this state.")
@click.option("--member", "email", metavar="EMAIL", help="Only this member's redemptions.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
def list_command(state: str | None, email: str | None, limit: int) -> None:
    """Redemptions, newest first."""

    async def work(core: Core) -> list[RedemptionView]:
        member = await member_id(core, email) if email else None
        return await core.shop.list(state=state, member_id=member, limit=limit)

    views = run(work)
    if not views:
        click.echo("No redemptions" + (f" {state}." if state else "."))
    for view in views:
        click.echo(line(view))


@redemptions.command("approve")
@click.argument("redemption_id", type=int)
@click.option("--as", "as_email", metavar="EMAIL", help=AS_HELP)
def approve_command(redemption_id: int, as_email: str | None) -> None:
    """Approve redemption REDEMPTION_ID (the member is told)."""

    async def work(core: Core) -> RedemptionView:
        return await core.shop.approve(redemption_id, by=await _by(core, as_email))

    click.echo(f"Approved {line(run(work))}")


@redemptions.command("reject")
@click.argument("redemption_id", type=int)
@click.option("--reason", required=True, help="Why (the member is told).")
@click.option("--as", "as_email", metavar="EMAIL", help=AS_HELP)
def reject_command(redemption_id: int, reason: str, as_email: str | None) -> None:
    """Reject redemption REDEMPTION_ID: its points and stock are given back."""

    async def work(core: Core) -> RedemptionView:
        return await core.shop.reject(redemption_id, by=await _by(core, as_email), reason=reason)

    view = run(work)
    click.echo(f"Rejected {line(view)}")
    click.echo(f"{view.cost} points refunded to {view.member_name}.")


@redemptions.command("fulfil")
@click.argument("redemption_id", type=int)
@click.option("--as", "as_email", metavar="EMAIL", help=AS_HELP)
def fulfil_command(redemption_id: int, as_email: str | None) -> None:
    """Mark approved redemption REDEMPTION_ID as fulfilled (handed over; the member is told)."""

    async def work(core: Core) -> RedemptionView:
        return await core.shop.fulfil(redemption_id, by=await _by(core, as_email))

    click.echo(f"Fulfilled {line(run(work))}")

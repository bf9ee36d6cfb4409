"""`rewards deliveries list [--failed]` and `rewards deliveries retry ID`: the announcement queue.

Every announcement is delivered as rows, one per channel post, direct message and email. These
commands show them (status, attempts, the last error) and put a failed or skipped one back in the
queue with a fresh set of attempts, for after a platform outage or a configuration fix. A running
server's notifier picks a retried delivery up at its next tick. A delivery that was sent is never
sent again.

An announcement that had nowhere to go (no channel configured, no recipient reachable in a direct
chat) has no delivery at all; `list` names it after the deliveries, and `list --failed` counts it
as a failure.

Exit codes: 0 done; 1 `list --failed` found failures or announcements that went nowhere (so a
cron job can alert), or a retry was refused; 2 no such delivery.
"""

from __future__ import annotations

import sys

import click

from bots.commands.common import with_database
from rewards.clock import SystemClock
from rewards.errors import NotAvailable, NotFound
from rewards.services.announcements import (
    NOWHERE,
    DeliveryView,
    Undelivered,
    list_deliveries,
    retry_delivery,
    went_nowhere,
)
from rewards.settings import Settings
from rewards.store.db import Database


@click.group()
def deliveries() -> None:
    """Announcement deliveries (channel posts, direct messages, emails)."""


def _when(view: DeliveryView) -> str:
    if view.status == "sent" and view.sent_at is not None:
        return f"sent {view.sent_at:%Y-%m-%d %H:%M}"
    if view.status == "pending":
        return f"next {view.next_attempt_at:%Y-%m-%d %H:%M}"
    return ""


def _line(view: DeliveryView) -> str:
    parts = [
        f"#{view.id}",
        view.status,
        f"{view.channel} {view.target}",
        f"attempts {view.attempts}",
        _when(view),
        f"\u201c{view.title}\u201d" if view.title else "",
    ]
    line = "  ".join(p for p in parts if p)
    if view.last_error and view.status != "sent":
        line += f"\n      {view.last_error}"
    return line


@deliveries.command("list")
@click.option("--failed", is_flag=True, help="Only deliveries that failed or were skipped.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
def list_command(failed: bool, limit: int) -> None:
    """List deliveries, newest first."""

    async def work(
        db: Database, _settings: Settings
    ) -> tuple[list[DeliveryView], list[Undelivered]]:
        return await list_deliveries(db, failed=failed, limit=limit), await went_nowhere(
            db, limit=limit
        )

    rows, nowhere = with_database(work)
    if not rows and not nowhere:
        click.echo("No failed deliveries." if failed else "No deliveries yet.")
        sys.exit(0)
    for view in rows:
        click.echo(_line(view))
    for lost in nowhere:
        click.echo(
            f"announcement #{lost.announcement_id}  not delivered  {lost.created_at:%Y-%m-%d %H:%M}"
            f"  \u201c{lost.title}\u201d\n      {NOWHERE[0].upper()}{NOWHERE[1:]}."
        )
    sys.exit(1 if failed else 0)


@deliveries.command("retry")
@click.argument("delivery_id", type=int)
def retry_command(delivery_id: int) -> None:
    """Queue delivery DELIVERY_ID again (a failed or skipped one gets fresh attempts)."""

    async def work(db: Database, _settings: Settings) -> DeliveryView:
        return await retry_delivery(db, delivery_id, SystemClock().now())

    try:
        view = with_database(work)
    except NotFound as problem:
        click.echo(f"Error: {problem}", err=True)
        sys.exit(2)
    except NotAvailable as problem:
        click.echo(f"Error: {problem}", err=True)
        sys.exit(1)
    click.echo(f"Queued: {_line(view)}")
    click.echo("A running server sends it within a few seconds.")

"""`rewards members forget EMAIL --yes`: the admin's way to erase a member's personal data.

The same erasure as `/forget me` (`rewards.privacy.erasure`): the member becomes an anonymous
placeholder and the ledger keeps every point. Without `--yes` it asks first, since nothing can
undo it. Forgetting someone already forgotten changes nothing and says so (exit 0); an unknown
email exits 1.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from bots.commands.common import with_database
from rewards.errors import RewardsError
from rewards.privacy.erasure import Erasure, forget_by_email
from rewards.settings import Settings
from rewards.store.db import Database


@click.command("forget")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def forget(email: str, yes: bool) -> None:
    """Erase the personal data of the member with EMAIL (name, email, accounts, birthday, text
    they wrote); their points stay in the totals under "Former member"."""
    if not yes and not click.confirm(
        f"Erase every personal detail of {email}? This cannot be undone.", err=True
    ):
        click.echo("Nothing was changed.", err=True)
        sys.exit(1)

    async def work(database: Database, _settings: Settings) -> Erasure:
        return await forget_by_email(database, email, now=datetime.now(UTC))

    try:
        done = with_database(work)
    except RewardsError as problem:
        click.echo(f"Error: {problem}", err=True)
        sys.exit(1)
    if done.already:
        click.echo(f"Member {done.member_id} was already forgotten; nothing changed.")
        return
    click.echo(
        f"Forgot member {done.member_id}: {done.accounts} account(s) removed, "
        f"{done.texts} text(s) they wrote erased, {done.records} other record(s) cleaned."
    )

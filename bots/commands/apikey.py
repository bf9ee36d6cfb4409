"""`rewards apikey create|list|revoke`: keys for the REST API.

`create` prints the key once (only its SHA-256 is stored; a lost key is revoked and replaced).
`list` shows each key's last use and its writes (from the API audit trail): how many in the last
30 days and when the latest was.
Exit codes: 0 done; 1 refused (a name already taken, an unknown key, revoking a key that
was already revoked: nothing changes and the message says when it was revoked).
"""

from __future__ import annotations

import click

from bots.commands.common import with_database
from rewards.services.apikeys import (
    SCOPES,
    USAGE_WINDOW,
    ApiKeyView,
    KeyUsage,
    create_key,
    key_usage,
    list_keys,
    revoke_key,
)
from rewards.settings import Settings
from rewards.store.db import Database


@click.group()
def apikey() -> None:
    """REST API keys (shown once, stored hashed)."""


@apikey.command("create")
@click.option("--name", required=True, help="Who or what uses the key.")
@click.option("--scope", type=click.Choice(SCOPES), required=True, help="read < write < admin.")
def create_command(name: str, scope: str) -> None:
    """Create a key and print it (the only time it is shown)."""

    async def work(db: Database, _settings: Settings) -> tuple[ApiKeyView, str]:
        return await create_key(db, name, scope)

    view, key = with_database(work)
    click.echo(key)
    click.echo(
        f"Created API key #{view.id} {view.name} ({view.scope}). Store it now: "
        "it is not shown again.",
        err=True,
    )


def _writes(usage: KeyUsage | None) -> str:
    days = USAGE_WINDOW.days
    if usage is None or usage.last_write_at is None:
        return "no writes"
    count = f"{usage.writes} write{'s' if usage.writes != 1 else ''} in {days} days"
    return f"{count}, last write {usage.last_write_at:%Y-%m-%d %H:%M}"


def _line(view: ApiKeyView, usage: KeyUsage | None) -> str:
    used = f"last used {view.last_used_at:%Y-%m-%d %H:%M}" if view.last_used_at else "never used"
    state = f"revoked {view.revoked_at:%Y-%m-%d %H:%M}" if view.revoked_at else "active"
    created = f"created {view.created_at:%Y-%m-%d}"
    return f"#{view.id}  {view.name}  {view.scope}  {state}  {created}  {used}  {_writes(usage)}"


@apikey.command("list")
def list_command() -> None:
    """List the keys (never the keys themselves), with their last use and writes (UTC)."""

    async def work(
        db: Database, _settings: Settings
    ) -> tuple[list[ApiKeyView], dict[int, KeyUsage]]:
        return await list_keys(db), await key_usage(db)

    rows, usage = with_database(work)
    if not rows:
        click.echo("No API keys yet.")
    for view in rows:
        click.echo(_line(view, usage.get(view.id)))


@apikey.command("revoke")
@click.argument("ref")
def revoke_command(ref: str) -> None:
    """Revoke the key named REF (or with id REF); it stops working at once."""

    async def work(db: Database, _settings: Settings) -> ApiKeyView:
        return await revoke_key(db, ref)

    view = with_database(work)
    click.echo(f"Revoked API key #{view.id} {view.name}.")

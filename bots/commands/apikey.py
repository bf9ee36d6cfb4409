"""`rewards apikey create|list|revoke`: keys for the REST API.

`create` prints the key once (only its SHA-256 is stored; a lost key is revoked and replaced).
Exit codes: 0 done; 1 refused (a name already taken, an unknown key).
"""

from __future__ import annotations

import click

from bots.commands.common import with_database
from rewards.services.apikeys import SCOPES, ApiKeyView, create_key, list_keys, revoke_key
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


def _line(view: ApiKeyView) -> str:
    used = f"last used {view.last_used_at:%Y-%m-%d %H:%M}" if view.last_used_at else "never used"
    state = f"revoked {view.revoked_at:%Y-%m-%d %H:%M}" if view.revoked_at else "active"
    created = f"created {view.created_at:%Y-%m-%d}"
    return f"#{view.id}  {view.name}  {view.scope}  {state}  {created}  {used}"


@apikey.command("list")
def list_command() -> None:
    """List the keys (never the keys themselves)."""

    async def work(db: Database, _settings: Settings) -> list[ApiKeyView]:
        return await list_keys(db)

    rows = with_database(work)
    if not rows:
        click.echo("No API keys yet.")
    for view in rows:
        click.echo(_line(view))


@apikey.command("revoke")
@click.argument("ref")
def revoke_command(ref: str) -> None:
    """Revoke the key named REF (or with id REF); it stops working at once."""

    async def work(db: Database, _settings: Settings) -> ApiKeyView:
        return await revoke_key(db, ref)

    view = with_database(work)
    click.echo(f"Revoked API key #{view.id} {view.name}.")

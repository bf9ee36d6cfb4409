"""`rewards db ...`: schema migrations."""

from __future__ import annotations

import click

from bots.commands.common import settings
from rewards.store.migrate import upgrade


@click.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (SQLite or PostgreSQL, one history)."""
    config = settings()
    upgrade(config.database_url, revision)
    click.echo(f"Database at {config.redacted_database_url()} is at revision {revision}.")

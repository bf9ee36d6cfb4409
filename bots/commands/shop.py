"""`rewards shop validate|load|list`: the rewards shop file, and what the shop offers.

Both file commands validate the whole file first and print every problem, one per line as
``item_id  field  message``, exiting 1; `load` then writes nothing. Validation needs no
database, so `validate` works in CI. `load` adds and updates items and withdraws those no longer
in the file (their redemptions stay).
"""

from __future__ import annotations

from pathlib import Path

import click

from bots.commands.common import with_database
from rewards.clock import SystemClock
from rewards.core import Core
from rewards.economy.shop.file import ShopFileError, load_shop_file
from rewards.economy.shop.model import ShopItem
from rewards.economy.shop.store import ShopLoadReport
from rewards.settings import Settings
from rewards.store.db import Database

FILE = click.Path(path_type=Path, dir_okay=False)


def _validated(path: Path) -> list[ShopItem] | None:
    try:
        return load_shop_file(path)
    except ShopFileError as error:
        for problem in error.problems:
            click.echo(f"{problem.reward_id}  {problem.field}  {problem.message}")
        count = len(error.problems)
        click.echo(f"{path}: {count} problem{'s' if count != 1 else ''}", err=True)
        return None


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids) if ids else "-"


def _line(item: ShopItem, stock_left: int | None) -> str:
    parts = [f"{item.cost} points"]
    if item.stock is not None:
        parts.append(f"{stock_left} of {item.stock} left")
    if item.per_member_limit is not None:
        parts.append(
            f"{item.per_member_limit} per member"
            + (f" per {item.limit_period}" if item.limit_period else "")
        )
    if item.approval:
        parts.append("needs approval")
    if item.available_to:
        parts.append("restricted")
    return f"{item.item_id:>4}  {item.icon or ' '} {item.name}  ({', '.join(parts)})"


@click.group()
def shop() -> None:
    """The rewards shop: validate and load its file, list its items."""


@shop.command("validate")
@click.argument("file", type=FILE)
def validate(file: Path) -> None:
    """Check FILE and print every problem; exit 1 if there is any."""
    items = _validated(file)
    if items is None:
        raise click.exceptions.Exit(1)
    approval = sum(1 for item in items if item.approval)
    click.echo(f"{file}: {len(items)} items, all valid ({approval} need approval)")


@shop.command("load")
@click.argument("file", type=FILE)
def load(file: Path) -> None:
    """Validate FILE, then add, update and withdraw items so the shop matches it."""
    items = _validated(file)
    if items is None:
        click.echo("Nothing was loaded.", err=True)
        raise click.exceptions.Exit(1)

    async def work(database: Database, settings: Settings) -> ShopLoadReport:
        return await Core(settings=settings, db=database, clock=SystemClock()).shop.load(items)

    report = with_database(work)
    click.echo(f"added ({len(report.added)}): {_ids(report.added)}")
    click.echo(f"changed ({len(report.changed)}): {_ids(report.changed)}")
    click.echo(f"unchanged ({len(report.unchanged)}): {_ids(report.unchanged)}")
    if report.withdrawn:
        click.echo(
            f"withdrawn, not in the file ({len(report.withdrawn)}): {_ids(report.withdrawn)}"
        )


@shop.command("list")
def list_command() -> None:
    """The items on offer, with their cost, stock left, limits and approval."""

    async def work(database: Database, settings: Settings) -> list[tuple[ShopItem, int | None]]:
        return await Core(settings=settings, db=database).shop.items()

    items = with_database(work)
    if not items:
        click.echo("The shop is empty (load a file with `rewards shop load FILE`).")
    for item, left in items:
        click.echo(_line(item, left))

"""`rewards catalog ...`: check a catalogue file, and load it into the database.

Both commands validate the whole file first and print every problem, one per line as
``reward_id  field  message``, exiting 1; `load` then writes nothing. Validation needs no
database, so `validate` works in CI and on a laptop.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from bots.commands.common import with_database
from rewards.catalog.loader import RewardDefinition, load_file, summarize
from rewards.clock import SystemClock
from rewards.errors import CatalogError
from rewards.services.catalog import LoadReport, load_catalog
from rewards.settings import Settings
from rewards.store.db import Database

FILE = click.Path(path_type=Path, dir_okay=False)


def _validated(path: Path) -> list[RewardDefinition] | None:
    try:
        return load_file(path)
    except CatalogError as error:
        for problem in error.problems:
            click.echo(f"{problem.reward_id}  {problem.field}  {problem.message}")
        count = len(error.problems)
        click.echo(f"{path}: {count} problem{'s' if count != 1 else ''}", err=True)
        return None


def _summary(path: Path, definitions: list[RewardDefinition]) -> None:
    click.echo(f"{path}: {len(definitions)} rewards, all valid")
    for kind, count in summarize(definitions).items():
        if count:
            click.echo(f"  {kind:<18} {count}")
    jobs = [d.job for d in definitions if d.job is not None]
    triggers = Counter(job.trigger for job in jobs)
    detail = ", ".join(
        f"{trigger} {triggers[trigger]}"
        for trigger in ("cron", "interval", "date")
        if triggers[trigger]
    )
    click.echo(f"  jobs               {len(jobs)}" + (f" ({detail})" if detail else ""))


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids) if ids else "-"


@click.group()
def catalog() -> None:
    """Reward catalogue files (the seed's rewards.json format)."""


@catalog.command("validate")
@click.argument("file", type=FILE)
def validate(file: Path) -> None:
    """Check FILE and print every problem; exit 1 if there is any."""
    definitions = _validated(file)
    if definitions is None:
        raise click.exceptions.Exit(1)
    _summary(file, definitions)


@catalog.command("load")
@click.argument("file", type=FILE)
def load(file: Path) -> None:
    """Validate FILE, then add or update its rewards (never deleting any)."""
    definitions = _validated(file)
    if definitions is None:
        click.echo("Nothing was loaded.", err=True)
        raise click.exceptions.Exit(1)

    async def work(database: Database, _settings: Settings) -> LoadReport:
        return await load_catalog(database, definitions, clock=SystemClock())

    report = with_database(work)
    click.echo(f"added ({len(report.added)}): {_ids(report.added)}")
    click.echo(f"changed ({len(report.changed)}): {_ids(report.changed)}")
    click.echo(f"unchanged ({len(report.unchanged)}): {_ids(report.unchanged)}")
    if report.not_in_file:
        click.echo(
            f"not in file, left as they are ({len(report.not_in_file)}): {_ids(report.not_in_file)}"
        )
    for label, names in (
        ("categories", report.created_categories),
        ("groups", report.created_groups),
        ("reward types", report.created_types),
    ):
        if names:
            click.echo(f"created {label}: {', '.join(names)}")

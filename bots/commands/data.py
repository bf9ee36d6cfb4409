"""`rewards data import`: load a numeric data set (sales, scores) for BestSeller and functions.

The file is CSV with a header row: `email` or `member_id`, `day` (or `date`, YYYY-MM-DD), and one
or more numeric columns; each numeric column becomes a value of that name (``sales_count`` for
``["BestSeller", {"column": "sales_count", "dataset": "sales"}]``). Empty cells are skipped.
Re-importing a member's day replaces its values. Exit codes as for the other imports: 0 all rows
imported, 1 some rows rejected (listed by line), 2 nothing imported.
"""

from __future__ import annotations

import math
import re
import sys
from datetime import date
from pathlib import Path

import click

from bots.commands.common import with_database
from bots.commands.csvtable import (
    fail,
    member_column,
    parse_member,
    read_table,
    resolve_members,
)
from rewards.services.metrics import MetricRow, upsert_metrics
from rewards.settings import Settings
from rewards.store.db import Database

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_DATASET = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_KEYS = ("email", "member_id", "day", "date")


@click.group()
def data() -> None:
    """Numeric data sets (sales, scores) for BestSeller and achievement functions."""


@data.command("import")
@click.argument("dataset")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def import_command(dataset: str, file: Path) -> None:
    """Upsert the numeric columns of a CSV FILE into DATASET (e.g. `rewards data import sales
    sales.csv`)."""
    if not _DATASET.fullmatch(dataset):
        fail(f"the data set name must be a plain identifier (letters, digits, _), got {dataset!r}.")
    table = read_table(file)
    who = member_column(table)
    when = next((c for c in ("day", "date") if c in table.header), None)
    if when is None:
        fail(f"{file} needs a day (or date) column.")
    columns = [c for c in table.header if c not in _KEYS]
    bad = [c for c in columns if not _NAME.fullmatch(c)]
    if not columns or bad:
        fail(
            f"{file} needs numeric columns named like sales_count"
            + (f"; unusable column names: {', '.join(map(repr, bad))}." if bad else ".")
        )
    rejected: list[tuple[int, str]] = []
    parsed: list[tuple[int, str | None, int | None, date, dict[str, float]]] = []
    for line, values in table.rows():
        email, member_id, problem = parse_member(values, who)
        reasons = [problem] if problem else []
        try:
            day = date.fromisoformat(values.get(when, ""))
        except ValueError:
            reasons.append(f"{when} {values.get(when, '')!r} is not a date (YYYY-MM-DD)")
            day = date.min
        numbers: dict[str, float] = {}
        for column in columns:
            raw = values.get(column, "")
            if raw == "":
                continue
            try:
                number = float(raw)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                reasons.append(f"{column} {raw!r} is not a number")
            else:
                numbers[column] = number
        if reasons:
            rejected.append((line, "; ".join(reasons)))
        else:
            parsed.append((line, email, member_id, day, numbers))

    async def work(database: Database, _settings: Settings) -> int:
        found, missing = await resolve_members(database, [(n, e, m) for n, e, m, _, _ in parsed])
        rejected.extend(missing)
        rows: list[MetricRow] = [
            (found[line], day, name, value)
            for line, _, _, day, numbers in parsed
            if line in found
            for name, value in numbers.items()
        ]
        return await upsert_metrics(database, dataset, rows)

    written = with_database(work)
    click.echo(f"imported values: {written}, rejected rows: {len(rejected)}")
    for line, reason in sorted(rejected):
        click.echo(f"line {line}: {reason}")
    sys.exit(1 if rejected else 0)

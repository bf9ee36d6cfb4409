"""`rewards attendance import`: load an attendance data set for AttendanceRule.

The file is CSV (`,` `;` or tab separated, header row first) with the columns
`email` or `member_id`, `day` or `attendance_date` (YYYY-MM-DD) and optionally `present`
(true/false, yes/no, 1/0; default true). Rows are upserted into the data set (`--dataset`,
default `employee_attendance`) in one transaction; a later import of the same member and day
replaces the earlier value.

Exit codes, as for `rewards members import`: 0 every row imported; 1 the good rows were imported
but some were rejected (the report lists them by line number, header = line 1); 2 nothing was
imported (the file could not be used).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
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
from rewards.rules.attendance import upsert_attendance
from rewards.settings import Settings
from rewards.store.db import Database

_TRUE = {"", "1", "true", "yes", "y", "present", "x"}
_FALSE = {"0", "false", "no", "n", "absent"}


@dataclass(frozen=True)
class _Row:
    line: int
    email: str | None
    member_id: int | None
    day: date
    present: bool


@dataclass(frozen=True)
class _Parsed:
    rows: list[_Row]
    rejected: list[tuple[int, str]]


def _read(path: Path) -> _Parsed:
    table = read_table(path)
    header = table.header
    who = member_column(table)
    when = next((c for c in ("day", "attendance_date") if c in header), None)
    if when is None:
        fail(f"{path} needs a day (or attendance_date) column.")
    rows: list[_Row] = []
    rejected: list[tuple[int, str]] = []
    seen: dict[tuple[str, date], int] = {}
    for line, values in table.rows():
        ref = values.get(who, "")
        email, member_id, problem = parse_member(values, who)
        reasons = [problem] if problem else []
        raw_day = values.get(when, "")
        try:
            day = date.fromisoformat(raw_day)
        except ValueError:
            reasons.append(f"{when} {raw_day!r} is not a date (YYYY-MM-DD)")
            day = date.min
        raw_present = values.get("present", "").lower()
        if raw_present not in _TRUE | _FALSE:
            reasons.append(f"present {raw_present!r} is not true or false")
        if not reasons:
            earlier = seen.setdefault((ref.lower(), day), line)
            if earlier != line:
                reasons.append(f"same member and day as line {earlier}")
        if reasons:
            rejected.append((line, "; ".join(reasons)))
            continue
        rows.append(_Row(line, email, member_id, day, raw_present in _TRUE))
    return _Parsed(rows, rejected)


@click.group()
def attendance() -> None:
    """Attendance data sets for AttendanceRule."""


@attendance.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--dataset",
    default="employee_attendance",
    show_default=True,
    help="The data set the records belong to (a rule's `dataset`).",
)
def import_command(file: Path, dataset: str) -> None:
    """Upsert attendance records from a CSV FILE (email or member_id, day, present)."""
    parsed = _read(file)

    async def work(database: Database, _settings: Settings) -> tuple[int, list[tuple[int, str]]]:
        found, missing = await resolve_members(
            database, [(row.line, row.email, row.member_id) for row in parsed.rows]
        )
        rejected = list(parsed.rejected) + missing
        good = [(found[row.line], row.day, row.present) for row in parsed.rows if row.line in found]
        return await upsert_attendance(database, dataset, good), sorted(rejected)

    imported, rejected = with_database(work)
    click.echo(f"imported: {imported}, rejected: {len(rejected)}")
    for line, reason in rejected:
        click.echo(f"line {line}: {reason}")
    sys.exit(1 if rejected else 0)

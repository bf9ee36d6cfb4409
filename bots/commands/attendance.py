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

import csv
import io
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import NoReturn

import click

from bots.commands.common import with_database
from rewards.rules.attendance import known_members, upsert_attendance
from rewards.services.members import normalise_email
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


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {message} Nothing was imported.", err=True)
    sys.exit(2)


def _read(path: Path) -> _Parsed:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as problem:
        _fail(f"cannot read {path}: {problem}.")
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [cell.strip().lower() for cell in next(reader)]
    except StopIteration:
        _fail(f"{path} is empty.")
    except csv.Error as problem:
        _fail(f"{path} is not valid CSV: {problem}.")
    who = next((c for c in ("email", "member_id") if c in header), None)
    when = next((c for c in ("day", "attendance_date") if c in header), None)
    if who is None or when is None:
        _fail(f"{path} needs the columns email (or member_id) and day (or attendance_date).")
    rows: list[_Row] = []
    rejected: list[tuple[int, str]] = []
    seen: dict[tuple[str, date], int] = {}
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as problem:
            _fail(f"{path} is not valid CSV near line {reader.line_num}: {problem}.")
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        values = dict(zip(header, (cell.strip() for cell in cells), strict=False))
        ref = values.get(who, "")
        reasons: list[str] = []
        email: str | None = None
        member_id: int | None = None
        if not ref:
            reasons.append(f"{who} is missing")
        elif who == "email":
            email = normalise_email(ref)
        elif ref.isdigit():
            member_id = int(ref)
        else:
            reasons.append(f"member_id {ref!r} is not a number")
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
        emails = {row.email for row in parsed.rows if row.email is not None}
        ids = {row.member_id for row in parsed.rows if row.member_id is not None}
        by_email, existing = await known_members(database, emails, ids)
        rejected = list(parsed.rejected)
        good: list[tuple[int, date, bool]] = []
        for row in parsed.rows:
            if row.email is not None:
                member = by_email.get(row.email)
                if member is None:
                    rejected.append((row.line, f"no member with email {row.email}"))
                    continue
            else:
                assert row.member_id is not None
                if row.member_id not in existing:
                    rejected.append((row.line, f"no member with id {row.member_id}"))
                    continue
                member = row.member_id
            good.append((member, row.day, row.present))
        return await upsert_attendance(database, dataset, good), sorted(rejected)

    imported, rejected = with_database(work)
    click.echo(f"imported: {imported}, rejected: {len(rejected)}")
    for line, reason in rejected:
        click.echo(f"line {line}: {reason}")
    sys.exit(1 if rejected else 0)

"""Reading the CSV files the import commands take (attendance, metric data sets).

One reader so every import treats files the same way: UTF-8 with or without a BOM, the delimiter
guessed from the header (`,` `;` or tab), header names lower-cased, blank lines skipped, line
numbers as a spreadsheet shows them (header = line 1). A file that cannot be used at all stops
the command with exit code 2 and "Nothing was imported."
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import click

from rewards.rules.attendance import known_members
from rewards.services.members import normalise_email
from rewards.store.db import Database


def fail(message: str) -> NoReturn:
    click.echo(f"Error: {message} Nothing was imported.", err=True)
    sys.exit(2)


@dataclass(frozen=True)
class CsvTable:
    path: Path
    header: list[str]
    _reader: Iterator[list[str]]
    _line: Iterator[int]

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """(line number, {column: stripped value}) for every non-blank row."""
        while True:
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except csv.Error as problem:
                fail(f"{self.path} is not valid CSV near line {next(self._line)}: {problem}.")
            line = next(self._line)
            if not any(cell.strip() for cell in cells):
                continue
            yield line, dict(zip(self.header, (cell.strip() for cell in cells), strict=False))


def read_table(path: Path) -> CsvTable:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as problem:
        fail(f"cannot read {path}: {problem}.")
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [cell.strip().lower() for cell in next(reader)]
    except StopIteration:
        fail(f"{path} is empty.")
    except csv.Error as problem:
        fail(f"{path} is not valid CSV: {problem}.")

    def lines() -> Iterator[int]:
        while True:
            yield reader.line_num

    return CsvTable(path, header, iter(reader), lines())


def member_column(table: CsvTable) -> str:
    """The column naming the member: `email` or `member_id` (an unusable file stops here)."""
    who = next((c for c in ("email", "member_id") if c in table.header), None)
    if who is None:
        fail(f"{table.path} needs an email (or member_id) column.")
    return who


def parse_member(values: dict[str, str], who: str) -> tuple[str | None, int | None, str | None]:
    """(email, member id, problem) from one row's member column."""
    ref = values.get(who, "")
    if not ref:
        return None, None, f"{who} is missing"
    if who == "email":
        return normalise_email(ref), None, None
    if ref.isdigit():
        return None, int(ref), None
    return None, None, f"member_id {ref!r} is not a number"


async def resolve_members(
    database: Database, refs: list[tuple[int, str | None, int | None]]
) -> tuple[dict[int, int], list[tuple[int, str]]]:
    """Member ids for (line, email, member id) references: {line: member id}, and the lines whose
    member does not exist, with a reason."""
    emails = {email for _, email, _ in refs if email is not None}
    ids = {member_id for _, _, member_id in refs if member_id is not None}
    by_email, existing = await known_members(database, emails, ids)
    found: dict[int, int] = {}
    missing: list[tuple[int, str]] = []
    for line, email, member_id in refs:
        if email is not None:
            if email in by_email:
                found[line] = by_email[email]
            else:
                missing.append((line, f"no member with email {email}"))
        elif member_id is not None and member_id in existing:
            found[line] = member_id
        else:
            missing.append((line, f"no member with id {member_id}"))
    return found, missing

"""File formats of an export: CSV (a header row, then one line per row) and JSON Lines (one
object per row, keyed by column name).

Values are written as a spreadsheet or a script expects them: times in UTC as ISO 8601 with a
`Z` (`2026-12-07T13:45:00Z`), days as `2026-12-07`, booleans as `true`/`false`, nothing as an
empty cell (CSV) or `null` (JSON). CSV cells that a spreadsheet would run as a formula (starting
with `=`, `+`, `-`, `@`) are prefixed with `'`: the file holds text people typed.
Output is produced in pieces of about `PIECE` bytes, so a file of any size streams.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

from rewards.errors import InvalidInput

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
PIECE = 64 * 1024
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def format_named(raw: str | None) -> str:
    name = (raw or "csv").strip().casefold()
    if name not in FORMATS:
        raise InvalidInput(f"The format must be csv or jsonl, got {raw!r}.")
    return name


def plain(value: Any) -> Any:
    """A value as JSON has it (times as UTC ISO 8601 with Z)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA) and not _number(value) else value
    return str(value)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


async def encode(
    columns: Sequence[str], rows: AsyncIterator[tuple[Any, ...]], fmt: str
) -> AsyncIterator[bytes]:
    """The file, in pieces: CSV with its header row first, or JSON Lines."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if fmt == "csv":
        writer.writerow(columns)
    async for row in rows:
        if fmt == "csv":
            writer.writerow([_cell(v) for v in row])
        else:
            record = {name: plain(v) for name, v in zip(columns, row, strict=True)}
            buffer.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            buffer.write("\n")
        if buffer.tell() >= PIECE:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()

"""`rewards export KIND`: an export as CSV or JSON Lines, to a file or standard output.

The rows are streamed from the database (`rewards.exports.stream`), so a million-row ledger
costs the same memory as a hundred rows. On a terminal a progress bar is drawn on standard
error (never into the file). Exit codes: 0 written; 1 bad input (an unknown kind, a bad date),
with the sentence why.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import IO, Any

import click

from bots.commands.common import settings as load
from rewards.errors import RewardsError
from rewards.exports.formats import FORMATS, encode, format_named
from rewards.exports.kinds import KINDS, kind_named
from rewards.exports.stream import count_rows, export_rows
from rewards.exports.window import window
from rewards.store.db import Database
from rewards.store.migrate import upgrade

# Below this many rows a bar would only flicker.
BAR_FROM = 5000


async def _write(
    database: Database,
    kind_name: str,
    first: str | None,
    last: str | None,
    fmt: str,
    timezone: str,
    out: IO[bytes],
    bar: bool,
) -> int:
    kind = kind_named(kind_name)
    span = window(first, last, timezone)
    total = await count_rows(database, kind, span) if bar else None
    written = 0
    progress: Any = None
    if total is not None and total >= BAR_FROM:
        progress = click.progressbar(length=total, label=f"Exporting {kind.name}", file=sys.stderr)
        progress.__enter__()

    async def counted(rows: AsyncIterator[tuple[Any, ...]]) -> AsyncIterator[tuple[Any, ...]]:
        nonlocal written
        async for row in rows:
            written += 1
            if progress is not None and written % 1000 == 0:
                progress.update(1000)
            yield row

    try:
        async with aclosing(export_rows(database, kind, span)) as rows:
            async for piece in encode(kind.columns, counted(rows), fmt):
                out.write(piece)
    finally:
        if progress is not None:
            progress.update(written % 1000)
            progress.__exit__(None, None, None)
    out.flush()
    return written


@click.command("export")
@click.argument("kind", type=click.Choice(list(KINDS), case_sensitive=False))
@click.option("--from", "first", metavar="DATE", help="First day (YYYY-MM-DD, in TIMEZONE).")
@click.option("--to", "last", metavar="DATE", help="Last day, included (YYYY-MM-DD).")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default="csv", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (default: standard output).",
)
def export(kind: str, first: str | None, last: str | None, fmt: str, output: Path | None) -> None:
    """Export kudos, awards, ledger, members, nominations, redemptions or participation.

    Without --from/--to everything is exported; the columns are listed in the README
    ("Exports"). CSV has a header row; JSON Lines has one object per row.
    """
    config = load()
    try:  # bad input is refused before any file is opened or the database touched
        fmt = format_named(fmt)
        kind_named(kind)
        window(first, last, config.timezone)
    except RewardsError as problem:
        click.echo(f"Error: {problem}", err=True)
        sys.exit(1)
    upgrade(config.database_url)

    async def run(out: IO[bytes]) -> int:
        database = Database(config.database_url)
        try:
            return await _write(
                database, kind, first, last, fmt, config.timezone, out, sys.stderr.isatty()
            )
        finally:
            await database.dispose()

    try:
        if output is None:
            written = asyncio.run(run(sys.stdout.buffer))
        else:
            with output.open("wb") as handle:
                written = asyncio.run(run(handle))
    except RewardsError as problem:
        if output is not None:
            output.unlink(missing_ok=True)
        click.echo(f"Error: {problem}", err=True)
        sys.exit(1)
    if output is not None:
        click.echo(f"{written} rows written to {output}.", err=True)

"""`rewards integrity [--from DATE] [--to DATE]`: the integrity report from the command line.

The same report as `/integrity` in chat, printed as text: reciprocity rings, giving bursts in the
window (both dates inclusive, UTC; by default the 90 days up to now) and the vote timeline of each
open campaign with its bursts flagged. It includes the votes of open campaigns, so it is for
whoever runs the CLI (the operators), like the other admin commands.

Exit codes: 0 nothing stands out; 1 something does (so a cron job can alert); 2 bad dates.
"""

from __future__ import annotations

import sys
from datetime import date, datetime

import click

from bots.commands.common import with_database
from cards.integrity import integrity_card
from cards.render.text import to_text
from rewards.clock import SystemClock
from rewards.errors import InvalidInput
from rewards.integrity import IntegrityReport, build_report, window_of
from rewards.settings import Settings
from rewards.store.db import Database


@click.command()
@click.option(
    "--from", "start", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First day (UTC)."
)
@click.option(
    "--to", "end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last day (UTC)."
)
def integrity(start: datetime | None, end: datetime | None) -> None:
    """Integrity report: reciprocity rings, giving bursts, open campaigns' vote timelines."""
    first: date | None = start.date() if start else None
    last: date | None = end.date() if end else None
    try:
        since, until = window_of(first, last, SystemClock().now())
    except InvalidInput as problem:  # --from after --to
        raise click.UsageError(str(problem)) from None

    async def work(db: Database, _settings: Settings) -> IntegrityReport:
        return await build_report(db, since, until)

    report = with_database(work)
    click.echo(to_text(integrity_card(report)))
    sys.exit(0 if report.clean else 1)

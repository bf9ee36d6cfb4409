"""`rewards leaderboard`: the same leaderboards as in chat, printed in the terminal, and
`rewards leaderboard rebuild`, which recomputes their counters from the ledger."""

from __future__ import annotations

from typing import Any

import click

from bots.commands.common import with_database
from cards.text import leaderboard_text
from rewards.leaderboards.rebuild import rebuild as rebuild_counters
from rewards.services.leaderboards import LeaderboardFilter, LeaderboardService, Metric, Period
from rewards.settings import Settings
from rewards.store.db import Database


class _ShowUnlessSubcommand(click.Group):
    """`rewards leaderboard week kudos` keeps working: anything that is not a subcommand (or
    help) is the arguments of `show`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ShowUnlessSubcommand)
def leaderboard() -> None:
    """Show a leaderboard (`show`, the default) or rebuild the leaderboard counters."""


@leaderboard.command()
@click.argument("period", type=click.Choice([p.value for p in Period]), default="month")
@click.argument("metric", type=click.Choice([m.value for m in Metric]), default="points")
@click.option("--department", help="Only this department.")
@click.option("--group", help="Only members of this group.")
@click.option("--category", help="Only rewards of this category (points, badges).")
@click.option("--tag", help="Only kudos with this tag (points, kudos).")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
def show(
    period: str,
    metric: str,
    department: str | None,
    group: str | None,
    category: str | None,
    tag: str | None,
    limit: int,
) -> None:
    """Show a leaderboard: PERIOD (week, month, quarter, year, all) and METRIC."""

    async def work(db: Database, settings: Settings) -> str:
        board = await LeaderboardService(db, settings).leaderboard(
            metric, period, LeaderboardFilter(department, group, category, tag), limit=limit
        )
        return leaderboard_text(board)

    click.echo(with_database(work))


@leaderboard.command()
def rebuild() -> None:
    """Recompute every leaderboard counter from the ledger, awards and kudos (one transaction).

    Needed after changing TIMEZONE or moving rewards between categories; `rewards serve` does
    it by itself when the counters were never built or were built for another zone."""

    async def work(db: Database, settings: Settings) -> Any:
        return await rebuild_counters(db, settings.timezone)

    rows = with_database(work)
    click.echo(f"Rebuilt the leaderboard counters: {rows} rows.")

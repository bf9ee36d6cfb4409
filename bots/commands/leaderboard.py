"""`rewards leaderboard`: the same leaderboards as in chat, printed in the terminal."""

from __future__ import annotations

import click

from bots.commands.common import with_database
from cards.text import leaderboard_text
from rewards.services.leaderboards import LeaderboardFilter, LeaderboardService, Metric, Period
from rewards.settings import Settings
from rewards.store.db import Database


@click.command()
@click.argument("period", type=click.Choice([p.value for p in Period]), default="month")
@click.argument("metric", type=click.Choice([m.value for m in Metric]), default="points")
@click.option("--department", help="Only this department.")
@click.option("--group", help="Only members of this group.")
@click.option("--category", help="Only rewards of this category (points, badges).")
@click.option("--tag", help="Only kudos with this tag (points, kudos).")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
def leaderboard(
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

"""The `rewards` command: one CLI for serving, migrating, importing and checking catalogues."""

from __future__ import annotations

import sys

import click

from bots.commands.apikey import apikey
from bots.commands.attendance import attendance
from bots.commands.catalog import catalog
from bots.commands.chat import chat
from bots.commands.data import data
from bots.commands.database import db
from bots.commands.deliveries import deliveries
from bots.commands.jobs import jobs
from bots.commands.leaderboard import leaderboard
from bots.commands.lottery import lottery
from bots.commands.manifest import manifest
from bots.commands.members import members
from bots.commands.nominations import nominations
from bots.commands.serve import serve
from bots.commands.show_settings import show_settings
from rewards.errors import RewardsError
from rewards.settings import SettingsError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nav-rewards", prog_name="rewards")
def cli() -> None:
    """nav-rewards: kudos, badges, nominations and leaderboards for Teams, Slack and Telegram."""


cli.add_command(serve)
cli.add_command(db)
cli.add_command(deliveries)
cli.add_command(members)
cli.add_command(catalog)
cli.add_command(leaderboard)
cli.add_command(chat)
cli.add_command(manifest)
cli.add_command(attendance)
cli.add_command(lottery)
cli.add_command(jobs)
cli.add_command(data)
cli.add_command(nominations)
cli.add_command(apikey)
cli.add_command(show_settings)


def main() -> None:
    """Entry point: settings and domain errors become one readable line and exit code 2 / 1."""
    try:
        # In non-standalone mode click returns `ctx.exit(n)` codes instead of exiting.
        code = cli(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as problem:
        problem.show()
        sys.exit(problem.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except SettingsError as problem:
        click.echo(f"Configuration error: {problem}", err=True)
        sys.exit(2)
    except RewardsError as problem:
        click.echo(f"Error: {problem}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()

"""The `rewards` command: one CLI for serving, migrating, importing and checking catalogues.

Each sub-command lives in its own module under `bots.commands` and is imported only when it runs:
importing all of them (the server, the scheduler, the chat SDKs, Alembic...) took over a second,
which every `rewards --help` and every `rewards serve` start paid. `COMMANDS` names each
command's module and one-line help, so `--help` lists them without importing any;
tests/test_cli_lazy.py checks that the table matches the commands themselves.
"""

from __future__ import annotations

import importlib
import sys
from typing import NamedTuple

import click

from rewards.errors import RewardsError, SettingsError


class LazyCommand(NamedTuple):
    """Where a sub-command lives (`module:attribute`) and what `--help` says about it."""

    name: str
    target: str
    short_help: str


COMMANDS: tuple[LazyCommand, ...] = (
    LazyCommand(
        "apikey", "bots.commands.apikey:apikey", "REST API keys (shown once, stored hashed)."
    ),
    LazyCommand(
        "attendance",
        "bots.commands.attendance:attendance",
        "Attendance data sets for AttendanceRule.",
    ),
    LazyCommand(
        "audit",
        "bots.commands.audit:audit",
        "The audit log of admin actions (revocations, locks, campaign phases).",
    ),
    LazyCommand(
        "catalog",
        "bots.commands.catalog:catalog",
        "Reward catalogue files (the seed's rewards.json format).",
    ),
    LazyCommand(
        "chat",
        "bots.commands.chat:chat",
        "Chat with the bot in the terminal, as the member with EMAIL (field-by-field forms).",
    ),
    LazyCommand(
        "data",
        "bots.commands.data:data",
        "Numeric data sets (sales, scores) for BestSeller and achievement functions.",
    ),
    LazyCommand("db", "bots.commands.database:db", "Database schema commands."),
    LazyCommand(
        "deliveries",
        "bots.commands.deliveries:deliveries",
        "Announcement deliveries (channel posts, direct messages, emails).",
    ),
    LazyCommand(
        "export",
        "bots.commands.export:export",
        "Export kudos, awards, ledger, members, nominations, redemptions or participation.",
    ),
    LazyCommand(
        "integrity",
        "bots.commands.integrity:integrity",
        "Integrity report: reciprocity rings, giving bursts, open campaigns' vote timelines.",
    ),
    LazyCommand(
        "jobs", "bots.commands.jobs:jobs", "Scheduled jobs: lotteries, birthdays, the sweep."
    ),
    LazyCommand(
        "leaderboard",
        "bots.commands.leaderboard:leaderboard",
        "Show a leaderboard (`show`, the default) or rebuild the leaderboard counters.",
    ),
    LazyCommand("lottery", "bots.commands.lottery:lottery", "Recorded random draws (RandomUsers)."),
    LazyCommand(
        "manifest",
        "bots.commands.manifest:manifest",
        "Build the Teams app package, the Slack app manifest and Telegram's command list.",
    ),
    LazyCommand(
        "lock",
        "bots.commands.audit:lock",
        "Lock a member's giving (they can still receive); --list shows who is locked.",
    ),
    LazyCommand(
        "members",
        "bots.commands.members:members",
        "Members: import from HR data, list, show, their data, forget.",
    ),
    LazyCommand(
        "nominations",
        "bots.commands.nominations:nominations",
        "Nomination campaigns (Nomination Badges): open, status, voting, close, cancel.",
    ),
    LazyCommand(
        "points",
        "bots.commands.points:points",
        "Points: grant or correct (ledger adjustments), show a member's balance.",
    ),
    LazyCommand(
        "redemptions",
        "bots.commands.redemptions:redemptions",
        "Redemptions of the rewards shop: list, approve, reject, fulfil.",
    ),
    LazyCommand(
        "revoke",
        "bots.commands.audit:revoke",
        "Revoke an award or kudos: the points go back, the member is told.",
    ),
    LazyCommand(
        "serve",
        "bots.commands.serve:serve",
        "Start the server: health check, bot endpoints, REST API and scheduler.",
    ),
    LazyCommand(
        "settings",
        "bots.commands.show_settings:show_settings",
        "Print the effective settings (secrets hidden), including whether the event manager is on.",
    ),
    LazyCommand(
        "shop",
        "bots.commands.shop:shop",
        "The rewards shop: validate and load its file, list its items.",
    ),
    LazyCommand("unlock", "bots.commands.audit:unlock", "Lift a member's giving lock."),
)


def load_command(entry: LazyCommand) -> click.Command:
    """Import the module behind `entry` and return its click command."""
    module_name, _, attribute = entry.target.partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{entry.target} is not a click command")
    return command


class LazyGroup(click.Group):
    """A group whose sub-commands come from `COMMANDS`, each imported on first use."""

    def __init__(self, *args: object, lazy: tuple[LazyCommand, ...] = (), **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = {entry.name: entry for entry in lazy}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(load_command(self.lazy[cmd_name]), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the table: no sub-command module is imported for `--help`."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows: list[tuple[str, str]] = []
        for name in names:
            loaded = self.commands.get(name)
            if loaded is not None:
                if loaded.hidden:
                    continue
                rows.append((name, loaded.get_short_help_str(limit)))
            else:
                # A bare stand-in command shortens the line exactly as click would.
                stand_in = click.Command(name, help=self.lazy[name].short_help)
                rows.append((name, stand_in.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="nav-rewards", prog_name="rewards")
def cli() -> None:
    """nav-rewards: kudos, badges, nominations and leaderboards for Teams, Slack and Telegram."""


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

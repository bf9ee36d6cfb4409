"""`rewards members ...`: import HR data, list and show members.

Exit codes of `import`, so scripts and cron jobs can tell outcomes apart:
0 every row imported; 1 the good rows were imported but some were rejected (the report says
which and why); 2 nothing was imported (the file or the database could not be used).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from bots.commands.common import with_database
from rewards.errors import RewardsError, UnknownMember
from rewards.privacy.preferences import Preferences, get_preferences
from rewards.services.members import MemberView, get_member, list_members, resolve
from rewards.services.members_import import (
    ImportReport,
    MemberImportError,
    import_members,
    read_members_file,
)
from rewards.settings import Settings
from rewards.store.db import Database


@click.group()
def members() -> None:
    """Members: import from HR data, list, show, their data, forget."""


@members.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def import_command(file: Path) -> None:
    """Create or update members from a CSV or JSON FILE, matched by email.

    CSV needs a header row with at least `email` (`,` `;` or tab separated); JSON is a list of
    objects or {"members": [...]}. The import is all-or-nothing for the file as a whole; single
    bad rows are skipped and listed.
    """
    try:
        parsed = read_members_file(file)
    except MemberImportError as problem:
        _fail(problem)

    async def work(database: Database, _settings: Settings) -> ImportReport:
        with click.progressbar(
            length=max(parsed.row_count, 1), label="Importing members", file=sys.stderr
        ) as bar:

            def advance(done: int) -> None:
                bar.update(done - bar.pos)

            return await import_members(database, parsed, progress=advance)

    try:
        report = with_database(work)
    except MemberImportError as problem:
        _fail(problem)
    click.echo(
        f"created: {report.created}, updated: {report.updated}, "
        f"unchanged: {report.unchanged}, rejected: {len(report.rejected)}"
    )
    for row in report.rejected:
        click.echo(str(row))
    # SystemExit rather than click.exceptions.Exit: `bots.cli.main` runs click with
    # standalone_mode=False, where click returns an Exit code instead of exiting with it.
    sys.exit(1 if report.rejected else 0)


def _fail(problem: RewardsError) -> NoReturn:
    click.echo(f"Error: {problem} Nothing was imported.", err=True)
    sys.exit(2)


@members.command("list")
@click.option("--department", help="Only members of this department (any case).")
@click.option("--group", help="Only members of this group (any case).")
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=50,
    show_default=True,
    help="At most this many members.",
)
@click.option("--all", "everyone", is_flag=True, help="Include inactive members.")
def list_command(department: str | None, group: str | None, limit: int, everyone: bool) -> None:
    """List members in id order as a small table."""

    async def work(database: Database, _settings: Settings) -> list[MemberView]:
        return await list_members(
            database,
            department=department,
            group=group,
            active=None if everyone else True,
            limit=limit,
        )

    found = with_database(work)
    if not found:
        click.echo("No members found.")
        return
    header = ("id", "email", "name", "department", "groups")
    rows = [
        (
            str(m.id),
            m.email,
            m.display_name if m.active else f"{m.display_name} (inactive)",
            m.department or "",
            ", ".join(m.groups),
        )
        for m in found
    ]
    widths = [min(40, max(len(r[i]) for r in (header, *rows))) for i in range(len(header))]
    for row in (header, *rows):
        cells = [
            cell if len(cell) <= width else cell[: width - 1] + "…"
            for cell, width in zip(row, widths, strict=True)
        ]
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        )


@members.command("show")
@click.argument("ref")
def show_command(ref: str) -> None:
    """Show one member: REF is a member id, an email or platform:user_id (e.g. slack:U0123)."""

    async def work(
        database: Database, settings: Settings
    ) -> tuple[MemberView, str | None, Preferences]:
        member = await resolve(database, ref)
        manager = None
        if member.manager_id is not None:
            try:
                manager = str(await get_member(database, member.manager_id))
            except UnknownMember:
                manager = None
        return member, manager, await get_preferences(database, settings, member.id)

    try:
        member, manager, chosen = with_database(work)
    except UnknownMember as problem:
        click.echo(str(problem), err=True)
        sys.exit(1)
    birthday = f"{member.birthday[0]:02d}-{member.birthday[1]:02d}" if member.birthday else None
    lines = [
        ("id", str(member.id)),
        ("email", member.email),
        ("name", member.display_name),
        ("job code", member.job_code),
        ("department", member.department),
        ("groups", ", ".join(member.groups) or None),
        ("manager", manager),
        ("birthday", birthday),  # month and day only: the year is never shown
        ("hired", member.hire_date.isoformat() if member.hire_date else None),
        ("time zone", member.timezone),
        ("locale", member.locale),
        ("active", "yes" if member.active else "no"),
        # What applies (the member's own choice, else the import's flag, else the default).
        ("leaderboards", chosen.leaderboard + ("" if chosen.leaderboard_chosen else " (default)")),
        (
            "celebrations",
            chosen.celebrations + ("" if chosen.celebrations_chosen else " (default)"),
        ),
    ]
    for label, value in lines:
        click.echo(f"{label + ':':<17}{value if value is not None else '-'}")
    for account in member.accounts:
        where = f" ({account.tenant})" if account.tenant else ""
        if account.user_id.startswith("@"):
            what = f"{account.user_id} (waiting for their first message)"
        else:
            handle = f" @{account.username}" if account.username else ""
            what = account.user_id + handle
        click.echo(f"{'account:':<17}{account.platform}{where} {what}")


@members.command("data")
@click.argument("ref")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (default: standard output).",
)
def data_command(ref: str, output: Path | None) -> None:
    """Everything stored about one member, as JSON (the member's `/me data`): REF is a member
    id, an email or platform:user_id."""
    from datetime import UTC, datetime

    from rewards.exports.mydata import as_json, member_data

    async def work(database: Database, _settings: Settings) -> bytes:
        member = await resolve(database, ref)
        return as_json(await member_data(database, member.id, now=datetime.now(UTC)))

    try:
        document = with_database(work)
    except UnknownMember as problem:
        click.echo(str(problem), err=True)
        sys.exit(1)
    if output is None:
        click.echo(document.decode())
    else:
        output.write_bytes(document)
        click.echo(f"Written to {output}.", err=True)


def _add_privacy_commands() -> None:
    from bots.commands.privacy import forget

    members.add_command(forget)


_add_privacy_commands()

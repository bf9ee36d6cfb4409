"""Admin actions from the command line, recorded in the audit log like the chat's and the API's:

- `rewards revoke award|kudos ID [--reason TEXT]`: the points go back through reversal entries,
  the member is told by a direct message;
- `rewards lock EMAIL [--reason TEXT]`, `rewards unlock EMAIL`, `rewards lock --list`: a locked
  member can receive but not give (kudos, badges, nominations, votes);
- `rewards audit list [--action A] [--target KIND:ID] [--limit N]`: who did what, when and why.

(`rewards nominations voting|close|cancel` record their actions too.) The CLI acts as the system
unless ``--as EMAIL`` names a member, who must then be an admin (`REWARDS_ADMINS`), as in the chat.
Exit codes: 0 done; 1 refused, with the sentence why; 2 bad input (unknown id, member or email).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC

import click

from bots.commands.common import with_database
from rewards.admin.audit import ACTIONS, Actor
from rewards.core import Core
from rewards.errors import InvalidInput, NotFound, RewardsError, UnknownMember
from rewards.services.members import find_by_email
from rewards.settings import Settings
from rewards.store.db import Database

AS_HELP = "Act as this member (who must be an admin); without it the CLI acts as the system."


async def actor(db: Database, email: str | None) -> Actor:
    """The CLI's actor: the system, or the admin `--as EMAIL` names."""
    if email is None:
        return Actor.cli()
    member = await find_by_email(db, email)
    if member is None:
        raise UnknownMember(f"I don't know a member with the email {email}.")
    return Actor.member("cli", member.id, member.email)


async def member_id(db: Database, email: str) -> int:
    member = await find_by_email(db, email)
    if member is None:
        raise UnknownMember(f"I don't know a member with the email {email}.")
    return member.id


def run(work: Callable[[Core], Awaitable[object]]) -> object:
    """Run `work` with a core; a refusal prints its sentence and exits 1 (2 for bad input)."""

    async def main(db: Database, settings: Settings) -> object:
        return await work(Core(settings=settings, db=db))

    try:
        return with_database(main)
    except (NotFound, InvalidInput) as problem:
        click.echo(f"Error: {problem}", err=True)
        sys.exit(2)
    except RewardsError as problem:
        click.echo(f"Error: {problem}", err=True)
        sys.exit(1)


@click.command("revoke")
@click.argument("kind", type=click.Choice(["award", "kudos"]))
@click.argument("target_id", type=int)
@click.option("--reason", default="", help="Why (told to the member, kept in the audit log).")
@click.option("--as", "as_email", metavar="EMAIL", help=AS_HELP)
def revoke(kind: str, target_id: int, reason: str, as_email: str | None) -> None:
    """Revoke an award or kudos: the points go back, the member is told."""

    async def work(core: Core) -> str:
        who = await actor(core.db, as_email)
        if kind == "kudos":
            done = await core.admin.revoke_kudos(target_id, reason, who)
            taken = sum(done.points.values())
            return (
                f"Revoked kudos {target_id} from {done.giver_name} to {done.receiver_names} "
                f"({taken} points back)."
            )
        view = await core.admin.revoke_award(target_id, reason, who)
        return (
            f"Revoked award {target_id}: {view.reward_name} of {view.member_name} "
            f"({view.points} points back)."
        )

    click.echo(run(work))


@click.command("lock")
@click.argument("email", required=False)
@click.option("--reason", default="", help="Why (told to the member, kept in the audit log).")
@click.option("--list", "show", is_flag=True, help="List the locked members instead.")
@click.option("--as", "as_email", metavar="EMAIL", help=AS_HELP)
def lock(email: str | None, reason: str, show: bool, as_email: str | None) -> None:
    """Lock a member's giving (they can still receive); --list shows who is locked."""

    async def work(core: Core) -> str:
        if show or email is None:
            states = await core.admin.locked_members()
            return (
                "\n".join(
                    f"{s.name} <{s.email}>  since "
                    f"{s.locked_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
                    + (f"  {s.reason}" if s.reason else "")
                    for s in states
                    if s.locked_at is not None
                )
                or "Nobody is locked."
            )
        who = await actor(core.db, as_email)
        state = await core.admin.lock(await member_id(core.db, email), reason, who)
        return (
            f"Locked {state.name} <{state.email}>: they can still receive, but can't give "
            "kudos or badges, nominate or vote."
        )

    click.echo(run(work))


@click.command("unlock")
@click.argument("email")
@click.option("--as", "as_email", metavar="EMAIL", help=AS_HELP)
def unlock(email: str, as_email: str | None) -> None:
    """Lift a member's giving lock."""

    async def work(core: Core) -> str:
        who = await actor(core.db, as_email)
        state = await core.admin.unlock(await member_id(core.db, email), who)
        return f"Unlocked {state.name} <{state.email}>: they can give again."

    click.echo(run(work))


@click.group()
def audit() -> None:
    """The audit log of admin actions (revocations, locks, campaign phases)."""


@audit.command("list")
@click.option("--action", type=click.Choice(ACTIONS), help="Only this action.")
@click.option("--target", metavar="KIND:ID", help="Only this target, e.g. member:12, award:7.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
def list_command(action: str | None, target: str | None, limit: int) -> None:
    """The newest admin actions first: when, via, who, what, target, reason."""
    kind, target_id = None, None
    if target:
        kind, _, number = target.partition(":")
        if not kind or not number.isdigit():
            raise click.BadParameter("use KIND:ID, e.g. member:12", param_hint="--target")
        target_id = int(number)

    async def work(core: Core) -> list[str]:
        found = await core.admin.audit_log(
            limit=limit, action=action, target_kind=kind, target_id=target_id
        )
        return [
            "\t".join(
                (
                    f"{e.at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
                    e.via,
                    e.actor,
                    e.action,
                    f"{e.target_kind}:{e.target_id} {e.target_label}",
                    e.reason or "",
                )
            )
            for e in found
        ]

    lines = run(work)
    assert isinstance(lines, list)
    if not lines:
        click.echo("No admin actions recorded.")
    for line in lines:
        click.echo(line)

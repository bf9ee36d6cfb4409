"""`rewards nominations open|status|voting|close|cancel`: nomination campaigns from the command
line. `voting`, `close` and `cancel` are admin actions, recorded in the audit log
(`rewards audit list`).

The CLI is an operator's tool with direct database access, so it acts as the system (like the
reward's job) unless ``--as EMAIL`` names a member, who must then be an admin (`REWARDS_ADMINS`),
exactly as in the chat. Exit codes: 0 done; 1 refused, with the sentence why; 2 bad input (an
unknown campaign, reward or member).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import click

from bots.commands.audit import actor
from bots.commands.common import with_database
from rewards.core import Core
from rewards.errors import NotAvailable, NotFound, RewardsError, UnknownMember
from rewards.services.members import find_by_email
from rewards.services.nominations import CampaignStats, CampaignView
from rewards.settings import Settings
from rewards.store.db import Database

AS_HELP = "Act as this member (who must be an admin); without it the CLI acts as the system."


@click.group()
def nominations() -> None:
    """Nomination campaigns (Nomination Badges): open, status, voting, close, cancel."""


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


async def _actor(db: Database, email: str | None) -> int | None:
    if email is None:
        return None
    member = await find_by_email(db, email)
    if member is None:
        raise UnknownMember(f"I don't know a member with the email {email}.")
    return member.id


def _run(work: Callable[[Core], Awaitable[object]]) -> object:
    """Run `work` with a core; a refusal prints its sentence and exits 1 (2 for bad input)."""

    async def run(db: Database, settings: Settings) -> object:
        core = Core(settings=settings, db=db)
        return await work(core)

    try:
        return with_database(run)
    except NotFound as problem:
        click.echo(f"Error: {problem}", err=True)
        sys.exit(2)
    except RewardsError as problem:
        click.echo(f"Error: {problem}", err=True)
        sys.exit(1)


def _summary(view: CampaignView) -> str:
    until = view.nominations_close_at if view.status == "nominating" else view.voting_close_at
    phase = (
        f"{view.status} until {_when(until)}"
        if view.status in ("nominating", "voting")
        else (f"{view.status} at {_when(view.closed_at)}")
    )
    return f"#{view.id}  {view.reward_name} (reward {view.reward_id})  {phase}"


def _show(view: CampaignView, stats: CampaignStats, names: dict[int, str]) -> None:
    click.echo(f"campaign:     #{view.id} {view.reward_name} (reward {view.reward_id})")
    click.echo(f"status:       {view.status}")
    click.echo(f"opened:       {_when(view.opened_at)}")
    click.echo(f"nominations:  until {_when(view.nominations_close_at)}")
    click.echo(f"voting:       until {_when(view.voting_close_at)}")
    if view.closed_at is not None:
        click.echo(f"ended:        {_when(view.closed_at)}")
    click.echo(
        f"counts:       {stats.candidates} candidates, {stats.nominations} nominations, "
        f"{stats.voters} voters"
    )
    if view.tallies is None:
        if view.status == "cancelled":
            click.echo(f"cancelled:    {view.outcome.get('cancelled') or '-'}")
        else:
            click.echo("tallies:      hidden until the campaign closes")
        return
    ranked = sorted(view.tallies.items(), key=lambda item: (-item[1], item[0]))
    tallies = ", ".join(f"{names.get(m, '?')} (#{m}) {n}" for m, n in ranked) or "no votes"
    click.echo(f"tallies:      {tallies}")
    winners = ", ".join(f"{names.get(m, '?')} (#{m})" for m in view.winners) or "nobody"
    click.echo(f"winners:      {winners}")
    tie = view.outcome.get("tie")
    if tie:
        line = f"tie:          {tie.get('rule')} among {tie.get('tied')}"
        if tie.get("seed"):
            line += f", seed {tie['seed']}, sha256 {tie['hash']}"
        click.echo(line)


@nominations.command("open")
@click.argument("reward_id", type=int)
@click.option("--as", "as_email", metavar="EMAIL", help=AS_HELP)
def open_command(reward_id: int, as_email: str | None) -> None:
    """Open a nomination campaign of Nomination Badge REWARD_ID now."""

    async def work(core: Core) -> CampaignView:
        by = await _actor(core.db, as_email)
        return await core.nominations.open(reward_id, by=by)

    view = _run(work)
    assert isinstance(view, CampaignView)
    click.echo(f"Opened {_summary(view)}")
    click.echo(f"Voting then runs until {_when(view.voting_close_at)}.")


@nominations.command("status")
@click.argument("campaign_id", type=int, required=False)
def status_command(campaign_id: int | None) -> None:
    """The open campaigns, or one campaign in detail (tallies only once closed)."""

    async def work(core: Core) -> object:
        if campaign_id is None:
            return await core.nominations.open_campaigns()
        view = await core.nominations.get(campaign_id)
        stats = await core.nominations.stats(campaign_id)
        names = await core.nominations.names([*(view.tallies or {}), *view.winners])
        return view, stats, names

    result = _run(work)
    if isinstance(result, list):
        if not result:
            click.echo("No nomination campaign is open.")
        for view in result:
            click.echo(_summary(view))
        return
    assert isinstance(result, tuple)
    _show(*result)


@nominations.command("close")
@click.argument("campaign_id", type=int)
@click.option("--as", "as_email", metavar="EMAIL", help=AS_HELP)
def close_command(campaign_id: int, as_email: str | None) -> None:
    """Close campaign CAMPAIGN_ID now: count the votes and award the winner(s)."""

    async def work(core: Core) -> tuple[CampaignView, dict[int, str]]:
        try:
            view = await core.admin.close_campaign(campaign_id, await actor(core.db, as_email))
        except NotAvailable:  # closed already: shown as it is (a script may close twice)
            view = await core.nominations.get(campaign_id)
            if view.status != "closed":
                raise
        return view, await core.nominations.names(view.winners)

    result = _run(work)
    assert isinstance(result, tuple)
    view, names = result
    winners = ", ".join(f"{names.get(m, '?')} (#{m})" for m in view.winners) or "nobody"
    click.echo(f"Closed {_summary(view)}")
    click.echo(f"Winners: {winners}")


@nominations.command("cancel")
@click.argument("campaign_id", type=int)
@click.option("--reason", default="", help="Why (shown in the cancellation notice).")
@click.option("--as", "as_email", metavar="EMAIL", help=AS_HELP)
def cancel_command(campaign_id: int, reason: str, as_email: str | None) -> None:
    """Cancel campaign CAMPAIGN_ID: nobody is awarded, and a notice is posted."""

    async def work(core: Core) -> CampaignView:
        return await core.admin.cancel_campaign(campaign_id, await actor(core.db, as_email), reason)

    view = _run(work)
    assert isinstance(view, CampaignView)
    click.echo(f"Cancelled {_summary(view)}")


@nominations.command("voting")
@click.argument("campaign_id", type=int)
@click.option("--as", "as_email", metavar="EMAIL", help=AS_HELP)
def voting_command(campaign_id: int, as_email: str | None) -> None:
    """Close nominations of CAMPAIGN_ID now and start voting (for the full voting time)."""

    async def work(core: Core) -> CampaignView:
        return await core.admin.start_voting(campaign_id, await actor(core.db, as_email))

    view = _run(work)
    assert isinstance(view, CampaignView)
    click.echo(f"Started {_summary(view)}")

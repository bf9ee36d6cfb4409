"""`rewards lottery verify RUN_ID`: re-run a recorded RandomUsers draw and compare the winners.

Exit codes: 0 the recomputed winners are the recorded ones; 1 they differ (the explanation says
whether the eligible members changed since the draw); 2 there is no such run.
"""

from __future__ import annotations

import sys

import click

from bots.commands.common import with_database
from rewards.rules.lottery import VerifyResult, verify
from rewards.settings import Settings
from rewards.store.db import Database


@click.group()
def lottery() -> None:
    """Recorded random draws (RandomUsers)."""


def _names(ids: list[int], names: dict[int, str]) -> str:
    if not ids:
        return "(none)"
    return ", ".join(f"{names.get(i, '?')} (#{i})" for i in ids)


@lottery.command("verify")
@click.argument("run_id", type=int)
def verify_command(run_id: int) -> None:
    """Re-run draw RUN_ID from its recorded seed and parameters and compare the winners."""

    async def work(db: Database, _settings: Settings) -> VerifyResult | None:
        return await verify(db, run_id)

    result = with_database(work)
    if result is None:
        click.echo(f"Error: no lottery run {run_id}.", err=True)
        sys.exit(2)
    run = result.run
    click.echo(f"run:       {run.id}")
    click.echo(f"reward:    {result.reward_name or '?'} (#{run.reward_id})")
    click.echo(f"draw key:  {run.draw_key}")
    click.echo(f"drawn at:  {run.drawn_at.isoformat()}")
    click.echo(f"eligible:  {run.eligible_count} members, sha256 {run.eligible_hash}")
    click.echo(f"winners:   {_names([int(w) for w in run.winners], result.names)}")
    if result.matches:
        click.echo("verified: the same winners")
        if not result.eligible_hash_matches:
            click.echo("note: the eligible members changed since the draw, the winners did not")
        sys.exit(0)
    click.echo(f"MISMATCH: recomputed winners {result.recomputed_winners}, recorded {run.winners}")
    if result.eligible_hash_matches:
        click.echo(
            "The eligible members are the same as at the draw, so the recorded winners do not "
            "follow from the recorded seed: the run was altered or drawn differently."
        )
    else:
        click.echo(
            f"The eligible members changed since the draw ({run.eligible_count} then, "
            f"{result.current_eligible_count} now; the hash differs), so a different result is "
            "expected and does not by itself show tampering."
        )
    sys.exit(1)

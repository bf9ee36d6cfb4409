"""Event hooks: what a kudos, an award or a day's first activity sets off, run after the reply.

A write that causes an event (`kudos.given` for the giver and `kudos.received` for each receiver,
`badge.awarded` after an award not itself made by an event, `login` on a chat turn's first
activity of the day) stages one `EventHook` row per (event, member) in its OWN transaction
(`stage`): the hooks exist exactly when the write does, and a crash between the commit and the
hooks loses nothing.

The `HookRunner` of the process that committed is woken by the commit (`Database.hook_listeners`)
and drains the queue a moment later, after the turn has answered; a short poll, started with the
server, picks up rows a crashed process left once their lease has run out. A row is claimed with
a lease (one statement, `FOR UPDATE SKIP LOCKED` on PostgreSQL), handled, then deleted; handling
is idempotent (each staged event names its occurrence, so an Automated Badge's award key is fixed;
workflow steps and completions are unique rows), so a row handled twice after a crash changes
nothing the second time. `drain()` runs the queue now: tests, CLI commands and `Core.close` use
it to see the hooks' effects.

What the hooks do (`rewards.services.events.EventService.handle_many`, given each claimed batch
at once) touches only the members the events name, never the population: the catalogue is read
once for the batch, each listening Automated Badge is awarded to the batch's members in one batch
award, and their workflows are evaluated together (one read each for their enrolments, steps and
rows). A burst of kudos therefore costs fewer statements per kudos than one kudos alone.
"""

from rewards.hooks.queue import StagedHook, claim, finish, pending, release, stage, stage_many
from rewards.hooks.runner import HookRunner

__all__ = [
    "HookRunner",
    "StagedHook",
    "claim",
    "finish",
    "pending",
    "release",
    "stage",
    "stage_many",
]

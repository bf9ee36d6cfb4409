"""The one table of chat commands. `/help`, the Teams manifest's command list, the Slack app
manifest and Telegram's `setMyCommands` are all generated from it, so they cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    description: str
    # Teams lists at most ten commands in its menu; the others still work when typed.
    teams_menu: bool = True


COMMANDS: tuple[Command, ...] = (
    Command("kudos", "/kudos @someone message #tag", "Thank one or more people, with tags."),
    Command("badge", "/badge", "Give a badge to someone."),
    Command(
        "leaderboard",
        "/leaderboard [week|month|quarter|year|all] [points|badges|kudos|kudos_given] "
        "[#tag|department]",
        "See who is on top.",
    ),
    Command("me", "/me", "Your points, badges and recent kudos."),
    Command("nominate", "/nominate @someone reason", "Nominate someone for an award."),
    Command("vote", "/vote [number]", "See the candidates and vote."),
    Command(
        "nominations",
        "/nominations [status|open REWARD|close ID|cancel ID]",
        "Nomination campaigns (opening, closing and cancelling are for admins).",
    ),
    Command(
        "workflow",
        "/workflow [join NAME|mark @someone WORKFLOW STEP]",
        "Your workflows and their progress; join one (marking steps is for admins).",
    ),
    Command(
        "link",
        "/link [CODE]",
        "Join your accounts on Teams, Slack and Telegram: one member, one balance.",
    ),
    Command("help", "/help", "What I can do."),
    Command(
        "integrity",
        "/integrity [DAYS]",
        "For admins: reciprocity rings, giving bursts and vote bursts of the last DAYS days.",
        teams_menu=False,
    ),
    # Forms on Teams carry their own Cancel button, so /cancel leaves the Teams menu to /link.
    Command("cancel", "/cancel", "Stop what we were doing.", teams_menu=False),
)


def help_text() -> str:
    lines = ["Here is what I can do:"]
    lines.extend(f"  {c.usage}\n      {c.description}" for c in COMMANDS)
    return "\n".join(lines)

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
    Command(
        "me",
        "/me [settings|data]",
        "Your points, badges and recent kudos; settings: your privacy choices; "
        "data: all of it, as a file.",
    ),
    Command(
        "shop",
        "/shop",
        "The rewards shop: what your points can buy (approving redemptions is for admins).",
    ),
    # The shop card's Redeem buttons do the same, so /redeem is typed rather than in Teams' menu.
    Command(
        "redeem",
        "/redeem ITEM [note]",
        "Spend points on a shop item (its number or name), with an optional note.",
        teams_menu=False,
    ),
    Command("nominate", "/nominate @someone reason", "Nominate someone for an award."),
    Command("vote", "/vote [number]", "See the candidates and vote."),
    # Mostly the admins': members reach campaigns through /nominate, /vote and the posted cards.
    Command(
        "nominations",
        "/nominations [status|open REWARD|voting ID|close ID|cancel ID]",
        "Nomination campaigns (opening, starting the vote, closing and cancelling are for admins).",
        teams_menu=False,
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
        "export",
        "/export KIND [FROM] [TO] [csv|jsonl]",
        "Admins: kudos, awards, ledger, members, nominations, redemptions or participation "
        "as a file in your direct chat.",
        teams_menu=False,
    ),
    Command(
        "forget",
        "/forget me",
        "Erase your personal data (asks to confirm first).",
        teams_menu=False,
    ),
    Command(
        "integrity",
        "/integrity [DAYS]",
        "For admins: reciprocity rings, giving bursts and vote bursts of the last DAYS days.",
        teams_menu=False,
    ),
    # Forms on Teams carry their own Cancel button, so /cancel leaves the Teams menu to /link.
    Command("cancel", "/cancel", "Stop what we were doing.", teams_menu=False),
    # The admins' commands: typed, never in the Teams menu.
    Command(
        "revoke",
        "/revoke AWARD_ID [reason] | /revoke kudos KUDOS_ID [reason]",
        "Admins: revoke an award or kudos (the points go back; the member is told).",
        teams_menu=False,
    ),
    Command(
        "lock",
        "/lock [@someone reason]",
        "Admins: pause someone's giving (they can still receive); alone, who is locked.",
        teams_menu=False,
    ),
    Command("unlock", "/unlock @someone", "Admins: lift a /lock.", teams_menu=False),
)


def help_text() -> str:
    lines = ["Here is what I can do:"]
    lines.extend(f"  {c.usage}\n      {c.description}" for c in COMMANDS)
    return "\n".join(lines)


# The commands whose turn looks up and writes only the people it names, by key: their turns run
# on the database connections whose statements keep a generic plan (`Database.unit`'s
# `planned_once`). Every other command may read a population or a date window (a leaderboard,
# the integrity report, an export), where a plan made for the actual values matters.
KEYED_COMMANDS: frozenset[str] = frozenset({"kudos"})

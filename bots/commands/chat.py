"""`rewards chat --as EMAIL`: talk to the bot in the terminal, through the same dialog engine.

The console is a field-by-field platform (like Telegram): forms are asked one question at a time,
cards are printed as text, and a card's buttons are listed as numbered choices; typing the number
presses the button. Lines are read from standard input until EOF or `/quit`, so sessions can be
scripted: ``printf '/kudos @li thanks #teamwork\\n/me\\n' | rewards chat --as ana@example.com``.
Conversation state lives in the configured database, exactly as for the chat platforms.
"""

from __future__ import annotations

import sys
from typing import TextIO

import click

from bots.commands.common import with_database
from bots.server import load_catalog_files
from cards.model import Card
from cards.render.text import to_text
from dialogs.engine import DialogEngine
from dialogs.events import Action, Text, Turn
from dialogs.replies import Reply, Say, Show, Update
from rewards.core import Core
from rewards.services.conversations import ConversationKey
from rewards.services.kudos import ensure_predefined_tags
from rewards.services.members import find_by_email
from rewards.settings import Settings
from rewards.store.db import Database

PLATFORM = "console"
QUIT = frozenset({"/quit", "/exit"})


def _buttons(card: Card) -> list[tuple[str, str]]:
    """(title, token) of the card's buttons that a typed number can press."""
    actions = [a for a in card.actions if a.token]
    return [(a.title, a.token) for a in actions if a.token]


def _print(replies: list[Reply], out: TextIO) -> list[tuple[str, str]]:
    """Print the replies; return the buttons of the last card shown (numbered from 1)."""
    buttons: list[tuple[str, str]] = []
    for reply in replies:
        if isinstance(reply, Say):
            out.write(reply.text + "\n")
        elif isinstance(reply, Show | Update):
            out.write(to_text(reply.card) + "\n")
            buttons = _buttons(reply.card)
            for number, (title, _) in enumerate(buttons, start=1):
                out.write(f"  {number}) {title}\n")
    return buttons


async def run_chat(db: Database, settings: Settings, email: str, lines: TextIO, out: TextIO) -> int:
    """The chat loop; returns the exit code (2 when the email is unknown)."""
    member = await find_by_email(db, email)
    if member is None:
        click.echo(
            f"Error: no member has the email {email!r}. Import members first "
            "(rewards members import FILE).",
            err=True,
        )
        return 2
    core = Core(settings=settings, db=db)
    await ensure_predefined_tags(db, core.clock)
    # As at server start: a newcomer who never ran `rewards serve` still gets the catalogue.
    await load_catalog_files(core)
    await core.shop.load_configured()  # REWARDS_SHOP, as at server start
    engine = DialogEngine(core)
    turn = Turn(member.id, ConversationKey(PLATFORM, "", "terminal", str(member.id)), False)
    out.write(f"Hi {member.display_name}! Type /help for commands, /quit to leave.\n")
    buttons: list[tuple[str, str]] = []
    for raw in lines:
        line = raw.strip()
        if line.lower() in QUIT:
            break
        out.write(f"> {line}\n")
        if buttons and line.isdigit() and 1 <= int(line) <= len(buttons):
            replies = await engine.handle(turn, Action(buttons[int(line) - 1][1]))
        else:
            replies = await engine.handle(turn, Text(line))
        # Numbers press the buttons of the card just shown, never those of an older card.
        buttons = _print(replies, out)
        out.flush()
        # The turn's event hooks (a login bonus, a kudos' badges) run after its reply, as in
        # the server; the next line sees what they awarded.
        await core.hooks.drain()
    return 0


@click.command()
@click.option("--as", "email", required=True, help="The member you chat as (their email).")
def chat(email: str) -> None:
    """Chat with the bot in the terminal, as the member with EMAIL (field-by-field forms)."""

    async def work(db: Database, settings: Settings) -> int:
        return await run_chat(db, settings, email, sys.stdin, sys.stdout)

    code = with_database(work)
    if code:
        raise SystemExit(code)

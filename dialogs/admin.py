"""The admins' commands in chat: `/revoke`, `/lock` and `/unlock` (and, in
`dialogs.nominations`, `/nominations voting|close|cancel`).

- `/revoke AWARD_ID [reason]` (or `/revoke award AWARD_ID …`) and `/revoke kudos KUDOS_ID
  [reason]`: the points go back through reversal entries in the ledger, the member is told by a
  direct message, and the audit log records it.
- `/lock @someone [reason]`: the member keeps receiving but gives nothing (no kudos, badges,
  nominations or votes) until `/unlock @someone`. `/lock` alone lists who is locked.

Admins are the members `REWARDS_ADMINS` names; anyone else is told so before anything is read
or written. The actions are `core.admin`'s (`rewards.admin.service`), run in the turn's own
transaction, so the action, its audit row and its notice commit together.
"""

from __future__ import annotations

from cards.admin import locked_list
from dialogs.base import Context, Dialog, Finish, Step
from dialogs.forms import split_mentions
from dialogs.replies import Say, Show
from rewards.admin.audit import Actor
from rewards.errors import InvalidInput, NotAllowed
from rewards.services.members import get_member
from rewards.services.mentions import resolve_mention

REVOKE_USAGE = "Use /revoke AWARD_ID [reason] or /revoke kudos KUDOS_ID [reason]."
LOCK_USAGE = "Use /lock @someone [reason]; /unlock @someone lifts it."
UNLOCK_USAGE = "Use /unlock @someone."


def _because(reason: str | None) -> str:
    """ " Reason: …." for a reason given, else nothing."""
    text = " ".join((reason or "").split())
    if not text:
        return ""
    return f" Reason: {text}" + ("" if text[-1] in ".!?" else ".")


def _points(n: int) -> str:
    return f"{n} point{'' if n == 1 else 's'}"


async def _admin(ctx: Context, command: str) -> Actor:
    """The acting admin, or a refusal before anything is done."""
    if not await ctx.core.admin.is_admin(ctx.member_id):
        raise NotAllowed(f"Only an admin can use {command}.")
    member = await get_member(ctx.core.db, ctx.member_id)
    return Actor.member("chat", ctx.member_id, member.email)


def _number(word: str, what: str, usage: str) -> int:
    digits = word.lstrip("#")
    if not digits.isdigit() or len(digits) > 18:
        raise InvalidInput(f"Which {what}? “{word}” is not an id. {usage}")
    return int(digits)


class RevokeDialog(Dialog):
    name = "revoke"

    async def start(self, ctx: Context, args: str) -> Step:
        actor = await _admin(ctx, "/revoke")
        words = args.split(maxsplit=1)
        if not words:
            raise InvalidInput(f"What should I revoke? {REVOKE_USAGE}")
        kind = words[0].casefold()
        if kind in ("kudos", "award"):
            rest = words[1].split(maxsplit=1) if len(words) > 1 else []
            if not rest:
                raise InvalidInput(f"Which {kind}? {REVOKE_USAGE}")
            number, reason = rest[0], (rest[1] if len(rest) > 1 else "")
        else:
            kind, number, reason = "award", words[0], (words[1] if len(words) > 1 else "")
        target = _number(number, kind, REVOKE_USAGE)
        admin = ctx.core.admin
        because = _because(reason)
        if kind == "kudos":
            done = await admin.revoke_kudos(target, reason, actor)
            taken = sum(done.points.values())
            back = f" {_points(taken)} went back." if taken else ""
            said = (
                f"Revoked kudos {target} from {done.giver_name} to {done.receiver_names}."
                f"{back}{because} The receivers and the giver get a direct message."
            )
        else:
            view = await admin.revoke_award(target, reason, actor)
            back = f" {_points(view.points)} went back." if view.points else ""
            said = (
                f"Revoked award {target}: {view.reward_name} of {view.member_name}."
                f"{back}{because} {view.member_name} gets a direct message."
            )
        return Finish((Say(said),))


class LockDialog(Dialog):
    name = "lock"

    async def start(self, ctx: Context, args: str) -> Step:
        actor = await _admin(ctx, "/lock")
        if not args.strip():
            return Finish((Show(locked_list(await ctx.core.admin.locked_members())),))
        mentions = split_mentions(args)
        if not mentions or not args.strip().startswith(mentions[0]):
            raise InvalidInput(f"Whose giving should I lock? {LOCK_USAGE}")
        reason = args.strip()[len(mentions[0]) :].strip()
        member = await resolve_mention(ctx.core.db, mentions[0])
        state = await ctx.core.admin.lock(member.id, reason, actor)
        because = _because(state.reason)
        return Finish(
            (
                Say(
                    f"{state.name}'s giving is locked: they can still receive kudos and badges, "
                    f"but can't give kudos or badges, nominate or vote.{because} They get a direct "
                    f"message; /unlock {mentions[0]} lifts it."
                ),
            )
        )


class UnlockDialog(Dialog):
    name = "unlock"

    async def start(self, ctx: Context, args: str) -> Step:
        actor = await _admin(ctx, "/unlock")
        mentions = split_mentions(args)
        if not mentions:
            raise InvalidInput(f"Whose giving should I unlock? {UNLOCK_USAGE}")
        if len(mentions) > 1:
            raise InvalidInput(f"One person at a time, please. {UNLOCK_USAGE}")
        member = await resolve_mention(ctx.core.db, mentions[0])
        state = await ctx.core.admin.unlock(member.id, actor)
        return Finish(
            (Say(f"{state.name} can give again (kudos, badges, nominations and votes)."),)
        )


__all__ = ["LockDialog", "RevokeDialog", "UnlockDialog"]

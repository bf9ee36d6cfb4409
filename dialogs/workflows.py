"""`/workflow`: your workflows and their progress; `/workflow join NAME_OR_ID`; and, for admins,
`/workflow mark @member WORKFLOW STEP` (STEP: its name or its number, 1 for the first).

All three finish in one turn; refusals (not an admin, a step out of order) are `RewardsError`s the
engine shows as a notice."""

from __future__ import annotations

from cards.workflows import workflow_progress
from dialogs.base import Context, Dialog, Finish, Step
from dialogs.forms import split_mentions
from dialogs.replies import Say, Show
from rewards.catalog.loader import RewardDefinition
from rewards.errors import InvalidInput, UnknownReward
from rewards.services.mentions import resolve_mention

USAGE_MARK = "Say it as: /workflow mark @someone WORKFLOW STEP"
# Straight and typographic quotes: chat clients (and phones) turn one into the other.
QUOTES = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201d", "'": "'", "\u2018": "\u2019"}
CURLY = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"'})


def _unquote(text: str) -> str:
    """`"First Login"` as `First Login`; unquoted text as it is."""
    text = text.strip()
    if len(text) >= 2 and text[0] in QUOTES and text[-1] == QUOTES[text[0]]:
        return text[1:-1].strip()
    return text


def _split_workflow(text: str, workflows: list[RewardDefinition]) -> tuple[RewardDefinition, str]:
    """The workflow named at the start of `text` (by id or by name, quoted or not) and the rest
    (the step, unquoted)."""
    if text[:1] in QUOTES:
        end = text.find(QUOTES[text[0]], 1)
        if end > 0:
            name, rest = text[1:end].strip(), _unquote(text[end + 1 :])
            for definition in workflows:
                if definition.reward.casefold() == name.casefold() or name == str(
                    definition.reward_id
                ):
                    return definition, rest
    words = text.split()
    if words and words[0].isdigit():
        for definition in workflows:
            if definition.reward_id == int(words[0]):
                return definition, _unquote(" ".join(words[1:]))
    folded = text.casefold()
    for definition in sorted(workflows, key=lambda d: -len(d.reward)):
        name = definition.reward.casefold()
        if folded.startswith(name) and (len(folded) == len(name) or folded[len(name)] == " "):
            return definition, _unquote(text[len(name) :])
    names = ", ".join(d.reward for d in workflows) or "none"
    raise UnknownReward(f"Say which workflow first. Workflows: {names}.")


class WorkflowDialog(Dialog):
    name = "workflow"

    async def start(self, ctx: Context, args: str) -> Step:
        verb, _, rest = args.strip().partition(" ")
        verb = verb.casefold()
        if verb == "join":
            return await self._join(ctx, rest)
        if verb == "mark":
            return await self._mark(ctx, rest)
        if verb:
            raise InvalidInput(
                "Try /workflow, /workflow join NAME, or /workflow mark @someone WORKFLOW STEP."
            )
        views = await ctx.core.workflows.progress(ctx.member_id)
        names = ", ".join(d.reward for d in await ctx.core.workflows.workflows())
        empty = (
            f"You are not working on any workflow yet. Join one with /workflow join NAME: {names}."
            if names
            else "There are no workflows yet."
        )
        return Finish((Show(workflow_progress(views, empty=empty)),))

    async def _join(self, ctx: Context, rest: str) -> Step:
        definition = await ctx.core.workflows.find(_unquote(rest))
        result = await ctx.core.workflows.enroll(
            definition.reward_id, ctx.member_id, by=ctx.member_id
        )
        if not result.new:
            said = f"You are already working on {definition.reward}."
        elif result.progress.status == "completed":
            said = f"You joined {definition.reward} and already completed it. Well done!"
        else:
            said = f"You joined {definition.reward}."
        return Finish((Say(said), Show(workflow_progress([result.progress]))))

    async def _mark(self, ctx: Context, rest: str) -> Step:
        # Typographic quotes as straight ones, so `@“Ana Lopez”` is one mention.
        text = rest.strip().translate(CURLY)
        mentions = split_mentions(text)
        if not mentions or not text.startswith(mentions[0]):
            raise InvalidInput(USAGE_MARK)
        first = mentions[0]
        after = text[len(first) :]
        member = await resolve_mention(ctx.core.db, first)
        definition, step = _split_workflow(after.strip(), await ctx.core.workflows.workflows())
        if not step:
            raise InvalidInput(USAGE_MARK)
        ref: str | int = int(step) - 1 if step.isdigit() else step
        view = await ctx.core.workflows.mark_step(
            definition.reward_id, member.id, ref, by=ctx.member_id
        )
        said = (
            f"{member.display_name} completed {definition.reward}."
            if view.status == "completed"
            else f"Marked. {member.display_name} is at {view.done_count}/{len(view.steps)} "
            f"in {definition.reward}."
        )
        # The admin is looking at someone else's progress: the card says whose.
        whose = None if member.id == ctx.member_id else member.display_name
        return Finish((Say(said), Show(workflow_progress([view], whose=whose))))

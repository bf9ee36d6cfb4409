"""Nominations in chat: `/nominate`, `/vote` and the admins' `/nominations`.

- `/nominate @someone REASON` nominates in one line when exactly one campaign takes nominations;
  otherwise (or with no arguments) a form asks for the campaign (only when several are open),
  the nominee and the reason. The campaign card's "Nominate" button opens the same form for its
  campaign.
- `/vote` shows the ballot of each campaign in its voting phase: the candidates by number with
  their reasons, one button each. `/vote 2` casts a vote for candidate 2 (`/vote 7 2` names
  campaign 7 when several are voting), so the console works without buttons.
- A ballot button carries `<campaign>.<member>` and no state, so a ballot posted in a channel
  works for every member who clicks it. The clicked ballot is redrawn with the number of people
  who have voted (never the tallies), and the voter alone is told their vote (`Private`).
- `/nominations open REWARD | voting ID | close ID | cancel ID [reason] | status`: opening,
  starting the vote now, closing and cancelling are for admins; the service refuses anyone else
  and the sentence is shown. Voting, closing and cancelling go through `core.admin`, which
  records them in the audit log in the turn's transaction.

Every rule (eligibility, self-nomination, limits, the phases) is the service's; its refusals
reach the person unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cards.actions import encode
from cards.model import Card
from cards.nominations import (
    ballot,
    campaign_cancelled,
    campaign_progress_line,
    campaigns_status,
    nominate_form,
    nomination_recorded,
    vote_recorded,
    winners,
)
from dialogs.base import Ask, Context, Dialog, Finish, Step, StepTokens
from dialogs.forms import people_refs, split_mentions
from dialogs.replies import Audience, Say, Show, Update
from rewards.admin.audit import Actor
from rewards.catalog.model import RewardKind
from rewards.core import Core
from rewards.errors import InvalidInput, NotAllowed, NotAvailable, NotFound, RewardsError
from rewards.services.catalog import list_definitions
from rewards.services.members import get_member
from rewards.services.mentions import resolve_mention

NOMINATE_USAGE = "Say who and why, e.g. /nominate @ana.lopez she rescued the release"
VOTE_USAGE = "Type /vote to see the candidates, then /vote NUMBER."
ADMIN_USAGE = (
    "Use /nominations open REWARD, /nominations voting ID, /nominations close ID, "
    "/nominations cancel ID [reason] or /nominations status."
)
NO_NOMINATIONS = "No nominations are open right now."
NO_VOTE = "There is no vote open right now."
FORM = "form"
CAST = "cast"
START = "start"
_REF = re.compile(r"^(\d+)\.(\d+)$")


@dataclass(frozen=True)
class Private(Say):
    """A sentence only the person who acted may see (their own vote).

    Platforms that can whisper do: Slack answers a click ephemerally, Telegram shows it as the
    button's toast, Teams adds it to the card returned to the clicker alone. Elsewhere it is an
    ordinary `Say` (the console, a direct chat).
    """


def vote_token(campaign_id: int, member_id: int) -> str:
    return encode("vote", CAST, f"{campaign_id}.{member_id}")


def nominate_token(campaign_id: int) -> str:
    return encode("nominate", START, str(campaign_id))


async def ballot_card(core: Core, campaign_id: int) -> Card:
    """The ballot of a campaign as it stands (candidates, how many have voted); the notifier
    posts it in the channels when voting opens, and a vote redraws the clicked one."""
    service = core.nominations
    campaign = await service.get(campaign_id)
    candidates = await service.candidates(campaign_id)
    voting = campaign.status == "voting"
    tokens = [vote_token(campaign.id, c.member_id) if voting else None for c in candidates]
    voters = (await service.stats(campaign_id)).voters
    return ballot(campaign, candidates, voters=voters, vote_tokens=tokens)


class NominateDialog(Dialog):
    name = "nominate"

    async def _campaigns(self, ctx: Context, only: object = None) -> list[Any]:
        campaigns = await ctx.core.nominations.open_campaigns(phase="nominating")
        if only not in (None, ""):
            chosen = [c for c in campaigns if str(c.id) == str(only)]
            if not chosen:
                raise NotAvailable("That campaign no longer takes nominations.")
            return chosen
        if not campaigns:
            raise NotAvailable(NO_NOMINATIONS)
        return campaigns

    async def start(self, ctx: Context, args: str) -> Step:
        campaigns = await self._campaigns(ctx)
        if not args:
            return Ask(FORM)
        mentions = split_mentions(args)
        if not mentions:
            raise InvalidInput(f"Who do you nominate? {NOMINATE_USAGE}")
        reason = args
        for mention in mentions[:1]:
            reason = reason.replace(mention, " ", 1)
        reason = " ".join(reason.split())
        if len(mentions) > 1:
            raise InvalidInput(f"Please nominate one person at a time. {NOMINATE_USAGE}")
        if len(campaigns) > 1:
            return Ask(FORM, {"nominee": mentions[0], "reason": reason})
        if not reason:
            raise InvalidInput(f"Please say why you nominate them. {NOMINATE_USAGE}")
        return await self._nominate(ctx, campaigns[0], mentions[0], reason, update=False)

    async def action(self, ctx: Context, verb: str, ref: str) -> Step | None:
        if verb != START or not ref.isdigit():
            return None
        await self._campaigns(ctx, ref)
        return Ask(FORM, {"campaign": ref})

    async def card(
        self, ctx: Context, step: str, values: dict[str, Any], tokens: StepTokens
    ) -> Card:
        campaigns = await self._campaigns(ctx, values.get("campaign"))
        return nominate_form(
            campaigns, submit=tokens.submit, cancel=tokens.cancel, values=values or None
        )

    async def submit(self, ctx: Context, step: str, values: dict[str, Any]) -> Step:
        campaigns = await self._campaigns(ctx, values.get("campaign"))
        if len(campaigns) > 1:
            raise InvalidInput("Pick the award you nominate for.")
        refs = people_refs(values.get("nominee"))
        if len(refs) != 1:
            # Quotes the field's label, so a modal shows it under that field.
            raise InvalidInput("Who do you nominate? Pick or name exactly one person.")
        reason = " ".join(str(values.get("reason") or "").split())
        if not reason:
            raise InvalidInput("Please say why you nominate them.")
        return await self._nominate(ctx, campaigns[0], refs[0], reason, update=True)

    async def _nominate(
        self, ctx: Context, campaign: Any, ref: str, reason: str, *, update: bool
    ) -> Finish:
        nominee = await resolve_mention(ctx.core.db, ref)
        await ctx.core.nominations.nominate(campaign.id, ctx.member_id, nominee.id, reason)
        card = nomination_recorded(campaign.reward_name, nominee.display_name, reason)
        return Finish((Update(card) if update else Show(card),))


class VoteDialog(Dialog):
    name = "vote"

    async def start(self, ctx: Context, args: str) -> Step:
        campaigns = await ctx.core.nominations.open_campaigns(phase="voting")
        if not campaigns:
            raise NotAvailable(NO_VOTE)
        words = args.split()
        if not words:
            cards = [await ballot_card(ctx.core, c.id) for c in campaigns]
            return Finish(tuple(Show(card) for card in cards))
        if not all(w.isdigit() for w in words) or len(words) > 2:
            raise InvalidInput(VOTE_USAGE)
        if len(words) == 2:
            campaign_id, number = int(words[0]), int(words[1])
            if campaign_id not in {c.id for c in campaigns}:
                raise NotFound(f"Campaign #{campaign_id} is not voting. {VOTE_USAGE}")
        elif len(campaigns) > 1:
            ids = ", ".join(f"#{c.id}" for c in campaigns)
            raise InvalidInput(
                f"Several campaigns are voting ({ids}): type /vote CAMPAIGN NUMBER, "
                f"e.g. /vote {campaigns[0].id} {words[0]}."
            )
        else:
            campaign_id, number = campaigns[0].id, int(words[0])
        candidates = await ctx.core.nominations.candidates(campaign_id)
        if not 1 <= number <= len(candidates):
            raise InvalidInput(
                f"There is no candidate {number}; pick a number from 1 to {len(candidates)}."
            )
        said = await self._cast(ctx, campaign_id, candidates[number - 1].member_id)
        return Finish((Say(said),))

    async def action(self, ctx: Context, verb: str, ref: str) -> Step | None:
        match = _REF.match(ref)
        if verb != CAST or match is None:
            return None
        campaign_id, member_id = int(match.group(1)), int(match.group(2))
        try:
            said = await self._cast(ctx, campaign_id, member_id)
        except RewardsError as problem:
            return Finish((Private(str(problem)),))
        ballot = await ballot_card(ctx.core, campaign_id)
        return Finish((Update(ballot, Audience.VIEWERS), Private(said)))

    async def _cast(self, ctx: Context, campaign_id: int, member_id: int) -> str:
        service = ctx.core.nominations
        result = await service.vote(campaign_id, ctx.member_id, member_id)
        campaign = await service.get(campaign_id)
        names = {c.member_id: c.name for c in await service.candidates(campaign_id)}
        mine = [names.get(m, f"member {m}") for m in result.votes]
        return vote_recorded(campaign.reward_name, mine, changed=bool(result.previous))


class NominationsDialog(Dialog):
    """`/nominations`: the admins' commands, and the status for everyone."""

    name = "nominations"

    async def start(self, ctx: Context, args: str) -> Step:
        verb, _, rest = args.strip().partition(" ")
        verb, rest = verb.casefold(), rest.strip()
        service = ctx.core.nominations
        if verb in ("", "status", "list"):
            return Finish((Show(await self._status(ctx)),))
        if verb == "open":
            reward_id = await self._reward_id(ctx, rest)
            campaign = await service.open(reward_id, by=ctx.member_id, now=ctx.now)
            closes = campaign.nominations_close_at
            until = f" until {closes:%-d %b %Y}" if closes else ""
            return Finish(
                (
                    Say(
                        f"Campaign #{campaign.id} for {campaign.reward_name} is open: "
                        f"nominations run{until}. The announcement goes to the channels."
                    ),
                )
            )
        if verb in ("close", "cancel", "voting"):
            campaign_id, _, reason = rest.partition(" ")
            if not campaign_id.lstrip("#").isdigit() or len(campaign_id) > 18:
                raise InvalidInput(f"Which campaign? {ADMIN_USAGE}")
            number = int(campaign_id.lstrip("#"))
            actor = await self._actor(ctx, verb)
            if verb == "voting":
                started = await ctx.core.admin.start_voting(number, actor, now=ctx.now)
                if started.status != "voting":  # too few nominations: cancelled, as on its date
                    reason = str(started.outcome.get("cancelled") or "")
                    return Finish((Show(campaign_cancelled(started, reason), Audience.EVERYONE),))
                until = f"{started.voting_close_at:%-d %b %Y %H:%M} UTC"
                return Finish(
                    (
                        Say(
                            f"Nominations for {started.reward_name} are closed and voting is "
                            f"open until {until}. The ballot goes to the channels; /vote shows "
                            "it here."
                        ),
                    )
                )
            if verb == "cancel":
                done = await ctx.core.admin.cancel_campaign(number, actor, reason.strip())
                return Finish((Show(campaign_cancelled(done, reason.strip()), Audience.EVERYONE),))
            done = await ctx.core.admin.close_campaign(number, actor, now=ctx.now)
            names = {c.member_id: c.name for c in await service.candidates(number)}
            result = winners(done, names, done.winners, done.tallies)
            return Finish((Show(result, Audience.EVERYONE),))
        raise InvalidInput(f"I don't know /nominations {verb}. {ADMIN_USAGE}")

    @staticmethod
    async def _actor(ctx: Context, verb: str) -> Actor:
        if not await ctx.core.admin.is_admin(ctx.member_id):
            what = "start voting in" if verb == "voting" else verb
            raise NotAllowed(f"Only an admin can {what} a nomination campaign.")
        member = await get_member(ctx.core.db, ctx.member_id)
        return Actor.member("chat", ctx.member_id, member.email)

    async def _status(self, ctx: Context) -> Card:
        """The open campaigns with what a member may see: totals and their own vote, no
        per-candidate counts (those stay blind until the close)."""
        service = ctx.core.nominations
        campaigns = await service.open_campaigns()
        details = {}
        for campaign in campaigns:
            stats = await service.stats(campaign.id)
            mine = await service.my_votes(campaign.id, ctx.member_id)
            details[campaign.id] = campaign_progress_line(
                campaign.status,
                candidates=stats.candidates,
                nominations=stats.nominations,
                voters=stats.voters,
                my_votes=len(mine),
            )
        return campaigns_status(campaigns, details)

    async def _reward_id(self, ctx: Context, text: str) -> int:
        """A Nomination Badge by id or by name."""
        wanted = text.strip().strip('"')
        if not wanted:
            raise InvalidInput(f"Which award? {ADMIN_USAGE}")
        if wanted.isdigit():
            return int(wanted)
        definitions = await list_definitions(ctx.core.db, kind=RewardKind.NOMINATION)
        rewards = [(d.reward_id, d.reward) for d in definitions]
        for reward_id, name in rewards:
            if name.casefold() == wanted.casefold():
                return reward_id
        known = ", ".join(f"{name} ({rid})" for rid, name in rewards) or "none"
        raise NotFound(f"There is no Nomination Badge called “{wanted}”. Known: {known}.")


__all__ = [
    "NominateDialog",
    "NominationsDialog",
    "Private",
    "VoteDialog",
    "ballot_card",
    "nominate_token",
    "vote_token",
]

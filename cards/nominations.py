"""Nomination screens: the campaign's announcement, the nominate form, the ballot, the personal
vote confirmation, and the winners.

The ballot is posted in channels and edited in place after every vote, so it never shows a
tally or who voted for whom: only how many people have voted. Each voter learns their own vote
from a personal confirmation (an ephemeral message on Slack, the button's toast on Telegram,
the card only they see on Teams). Tallies appear once, on the winners card, after the close.

Screens take their action tokens from the caller (the dialog owns its verbs); the campaign and
candidate views are read through small protocols, so the cards depend on no service internals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from cards.model import (
    Action,
    Block,
    Card,
    Choice,
    Fact,
    Facts,
    Field,
    FieldKind,
    Form,
    ItemList,
    Row,
    Text,
    Tone,
)
from cards.screens import _date, _names, _plural

REASON_MAX = 500
BUTTON_TITLE_MAX = 30  # Slack button text is capped at 75; short titles read better everywhere
REASONS_SHOWN = 3  # reasons listed per candidate on the ballot; the rest are counted
MEDALS = {1: "🥇", 2: "🥈", 3: "🥉"}


class CampaignLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def reward_name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def nominations_close_at(self) -> datetime | None: ...
    @property
    def voting_close_at(self) -> datetime | None: ...
    @property
    def max_votes_per_user(self) -> int: ...


class CandidateLike(Protocol):
    @property
    def member_id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def reasons(self) -> tuple[str, ...]: ...


def _until(moment: datetime | None) -> str:
    return f" until {_date(moment)}" if moment is not None else ""


def _short(text: str, limit: int = BUTTON_TITLE_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def campaign_opened(campaign: CampaignLike, *, nominate: str | None) -> Card:
    """The channel announcement of a new campaign, with its "Nominate" button."""
    body: list[Block] = [
        Text(f"Who deserves {campaign.reward_name}? Nominate a colleague and say why."),
        Facts(
            (
                Fact("Nominations", f"open{_until(campaign.nominations_close_at)}"),
                Fact("Voting", f"until {_date(campaign.voting_close_at)}")
                if campaign.voting_close_at is not None
                else Fact("Voting", "after the nominations"),
            )
        ),
        Text(f"Campaign #{campaign.id} · /nominate @someone reason", tone=Tone.SUBTLE),
    ]
    actions = (Action("Nominate", token=nominate, style="positive"),) if nominate else ()
    return Card(
        screen="nomination_open",
        title=f"🗳️ Nominations are open: {campaign.reward_name}",
        summary=f"Nominations are open for {campaign.reward_name}",
        body=tuple(body),
        actions=actions,
    )


def nominate_form(
    campaigns: Sequence[CampaignLike],
    *,
    submit: str,
    cancel: str,
    values: Mapping[str, object] | None = None,
) -> Card:
    """Pick the campaign (only when several are open), the nominee and the reason."""
    values = values or {}
    fields: list[Field] = []
    if len(campaigns) > 1:
        fields.append(
            Field(
                "campaign",
                "Award",
                FieldKind.CHOICE,
                choices=tuple(Choice(str(c.id), c.reward_name) for c in campaigns),
                value=str(values["campaign"]) if values.get("campaign") else None,
            )
        )
    fields.append(
        Field(
            "nominee",
            "Who do you nominate?",
            FieldKind.PERSON,
            placeholder="@name or email",
            value=str(values["nominee"]) if values.get("nominee") else None,
        )
    )
    fields.append(
        Field(
            "reason",
            "Why?",
            FieldKind.MULTILINE,
            placeholder="What did they do?",
            max_length=REASON_MAX,
            value=str(values["reason"]) if values.get("reason") else None,
        )
    )
    title = (
        f"Nominate someone for {campaigns[0].reward_name}"
        if len(campaigns) == 1
        else "Nominate someone"
    )
    return Card(
        screen="nominate_form",
        title=title,
        summary=title,
        form=Form(
            tuple(fields),
            Action("Nominate", token=submit, style="positive", submits_form=True),
            Action("Cancel", token=cancel),
        ),
    )


def nomination_recorded(reward_name: str, nominee: str, reason: str) -> Card:
    return Card(
        screen="nomination_recorded",
        title="🗳️ Nomination recorded",
        summary=f"You nominated {nominee} for {reward_name}",
        body=(
            Text(f"You nominated {nominee} for {reward_name}.", heading=True),
            Text(reason),
            Text("Voting starts when the nominations close.", tone=Tone.SUBTLE),
        ),
    )


def ballot(
    campaign: CampaignLike,
    candidates: Sequence[CandidateLike],
    *,
    voters: int,
    vote_tokens: Sequence[str | None],
) -> Card:
    """The ballot: candidates numbered with their reasons, one button each, no tallies."""
    rows = []
    for number, candidate in enumerate(candidates, start=1):
        reasons = list(candidate.reasons[:REASONS_SHOWN])
        more = len(candidate.reasons) - len(reasons)
        detail = " · ".join(f"“{r}”" for r in reasons)
        if more > 0:
            detail += f" (+{more} more)"
        rows.append(Row(f"{number}.", candidate.name, "", detail))
    votes = campaign.max_votes_per_user
    how = "Click a name to vote" if votes == 1 else f"Click up to {votes} names to vote"
    body: list[Block] = [
        Text(f"{how}; you can change your vote until voting closes."),
        ItemList(tuple(rows), empty="Nobody was nominated."),
        Text(
            f"{_plural(voters, 'person has', 'people have')} voted. "
            + (
                f"Voting closes on {_date(campaign.voting_close_at)}."
                if campaign.voting_close_at is not None
                else "Voting closes soon."
            ),
            tone=Tone.SUBTLE,
        ),
    ]
    actions = tuple(
        Action(_short(f"Vote {c.name}"), token=token)
        for c, token in zip(candidates, vote_tokens, strict=True)
        if token
    )
    return Card(
        screen="nomination_ballot",
        title=f"🗳️ Vote: {campaign.reward_name}",
        summary=f"Voting is open for {campaign.reward_name}",
        body=tuple(body),
        actions=actions,
    )


def vote_recorded(reward_name: str, names: Sequence[str], *, changed: bool) -> str:
    """The personal confirmation, a sentence only the voter sees."""
    if not names:
        return f"You have no vote for {reward_name} yet."
    verb = "You changed your vote to" if changed else "You voted for"
    return f"{verb} {_names(list(names))} for {reward_name}. Only you can see this."


def winners(
    campaign: CampaignLike,
    names: Mapping[int, str],
    winner_ids: Sequence[int],
    tallies: Mapping[int, int] | None,
) -> Card:
    """The close: who won, and the tallies (shown only now)."""
    winner_names = [names.get(m, f"member {m}") for m in winner_ids]
    ranked = sorted((tallies or {}).items(), key=lambda kv: (-kv[1], names.get(kv[0], "")))
    rows = []
    for place, (member, votes) in enumerate(ranked, start=1):
        lead = MEDALS.get(place, f"{place}.")
        rows.append(Row(lead, names.get(member, f"member {member}"), _plural(votes, "vote")))
    if winner_names:
        headline = f"{_names(winner_names)} won {campaign.reward_name}!"
    else:
        headline = f"Nobody won {campaign.reward_name} this time."
    return Card(
        screen="nomination_winners",
        title=f"🏆 {campaign.reward_name}",
        summary=headline,
        body=(
            Text(headline, heading=True),
            ItemList(tuple(rows), empty="No votes were cast."),
        ),
    )


def campaign_cancelled(campaign: CampaignLike, reason: str = "") -> Card:
    body: list[Block] = [Text(f"The campaign for {campaign.reward_name} was cancelled.")]
    if reason:
        body.append(Text(reason, tone=Tone.SUBTLE))
    return Card(
        screen="nomination_cancelled",
        title=f"🗳️ {campaign.reward_name}: cancelled",
        summary=f"The campaign for {campaign.reward_name} was cancelled",
        body=tuple(body),
    )


STATUS_WORDS = {
    "nominating": "nominations open",
    "voting": "voting",
    "closed": "closed",
    "cancelled": "cancelled",
}


def campaign_progress_line(
    status: str, *, candidates: int, nominations: int, voters: int, my_votes: int
) -> str:
    """What anyone may know of an open campaign: the totals and their own part, never who is
    ahead (the tallies stay blind until the close)."""
    if status == "nominating":
        return (
            f"{_plural(nominations, 'nomination')} for {_plural(candidates, 'person', 'people')} "
            "so far · /nominate @someone reason"
        )
    mine = "you have voted" if my_votes else "you have not voted yet: /vote"
    return (
        f"{_plural(candidates, 'candidate')} · "
        f"{_plural(voters, 'person has', 'people have')} voted · {mine}"
    )


def campaigns_status(
    campaigns: Sequence[CampaignLike], details: Mapping[int, str] | None = None
) -> Card:
    """The open campaigns; `details` (by campaign id) adds a line of totals to each."""
    rows = []
    for campaign in campaigns:
        until = (
            campaign.nominations_close_at
            if campaign.status == "nominating"
            else campaign.voting_close_at
        )
        shown = until is not None and campaign.status in STATUS_WORDS
        rows.append(
            Row(
                f"#{campaign.id}",
                campaign.reward_name,
                STATUS_WORDS.get(campaign.status, campaign.status),
                " · ".join(
                    part
                    for part in (
                        f"until {_date(until)}" if shown and until else "",
                        (details or {}).get(campaign.id, ""),
                    )
                    if part
                ),
            )
        )
    return Card(
        screen="nomination_status",
        title="🗳️ Nomination campaigns",
        summary=f"{_plural(len(campaigns), 'campaign')} running",
        body=(ItemList(tuple(rows), empty="No campaign is running."),),
    )

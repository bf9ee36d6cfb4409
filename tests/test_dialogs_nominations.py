"""/nominate, /vote and /nominations through the dialog engine: one-line text forms, the
nominate form, ballot buttons, refusals in sentences, and the admin-only commands."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from cards.actions import encode
from cards.model import Card
from cards.nominations import (
    ballot,
    campaign_cancelled,
    campaign_opened,
    campaigns_status,
    nominate_form,
    winners,
)
from cards.render.adaptive import to_adaptive
from cards.render.blockkit import to_blocks, to_modal
from cards.render.telegram import to_telegram
from cards.render.text import to_text
from dialogs.engine import DialogEngine
from dialogs.nominations import Private, nominate_token, vote_token
from dialogs.replies import Say
from rewards.clock import FixedClock
from rewards.store.db import Database
from rewards.store.models import Award
from tests.factories import add_member, add_reward
from tests.support.conversation import ScriptedConversation, make_core
from tests.test_cards_adaptive import errors
from tests.test_cards_blockkit import check_blocks, check_limits, check_modal

REWARD = 7001
ADMIN_EMAIL = "ada.admin@example.com"


async def _setup(
    database: Database, clock: FixedClock, **config: object
) -> tuple[DialogEngine, dict[str, int]]:
    people = {
        "ada": await add_member(database, "Ada Admin", job_code="MANAGER"),
        "ana": await add_member(database, "Ana Lopez"),
        "li": await add_member(database, "Li Wei"),
        "bo": await add_member(database, "Bo Smith"),
        "cy": await add_member(database, "Cy Young"),
        "tim": await add_member(database, "Tim Temp", job_code="CONTRACTOR"),
    }
    await add_reward(
        database,
        reward_id=REWARD,
        reward="Star of the Month",
        reward_type="Nomination Badge",
        points=100,
        nomination_config={
            "max_nominations_per_user": 1,
            "eligible_voters": {"job_codes": ["EMPLOYEE", "MANAGER"]},
            **config,
        },
    )
    core = make_core(database, clock, admins=(ADMIN_EMAIL,))
    return DialogEngine(core), people


def chat(engine: DialogEngine, member: int, *, whole_forms: bool = False) -> ScriptedConversation:
    return ScriptedConversation(engine, member, whole_forms=whole_forms, chat=f"chat-{member}")


async def _open(engine: DialogEngine, people: dict[str, int]) -> int:
    admin = chat(engine, people["ada"])
    await admin.say(f"/nominations open {REWARD}")
    assert "is open" in admin.text, admin.text
    campaigns = await engine.core.nominations.open_campaigns()
    assert len(campaigns) == 1
    return campaigns[0].id


async def _to_voting(engine: DialogEngine, clock: FixedClock) -> None:
    clock.advance(timedelta(days=8))
    await engine.core.nominations.advance(clock.now())


async def _awards(database: Database) -> int:
    query = select(func.count()).select_from(Award).where(col(Award.reward_id) == REWARD)
    async with database.read() as session:
        return int(await session.scalar(query) or 0)


async def test_one_line_nominations_then_vote_by_number(
    database: Database, clock: FixedClock
) -> None:
    engine, people = await _setup(database, clock)
    campaign = await _open(engine, people)

    ana = chat(engine, people["ana"])
    await ana.say("/nominate @li.wei rescued the release on Friday night")
    assert "You nominated Li Wei for Star of the Month." in ana.text
    assert "rescued the release on Friday night" in ana.text

    li = chat(engine, people["li"])
    await li.say("/nominate @li.wei I am great")
    assert "You can't nominate yourself for Star of the Month." in li.text

    await ana.say("/nominate @bo.smith also great")
    assert "You have already made 1 nomination for Star of the Month, the most allowed." in (
        ana.text
    )

    bo = chat(engine, people["bo"])
    await bo.say("/nominate @cy.young mentored two new hires")
    assert "You nominated Cy Young" in bo.text

    await bo.say("/vote")
    assert "There is no vote open right now." in bo.text

    await _to_voting(engine, clock)
    await bo.say("/vote")
    listing = bo.text
    assert "1. Li Wei" in listing and "2. Cy Young" in listing
    assert "rescued the release on Friday night" in listing
    assert "mentored two new hires" in listing
    assert "0 people have voted" in listing

    await bo.say("/vote 2")
    assert "You voted for Cy Young for Star of the Month." in bo.text
    await bo.say("/vote 1")
    assert "You changed your vote to Li Wei" in bo.text
    assert await engine.core.nominations.my_votes(campaign, people["bo"]) == (people["li"],)

    await bo.say("/vote 9")
    assert "There is no candidate 9; pick a number from 1 to 2." in bo.text
    await bo.say("/vote Li")
    assert "Type /vote to see the candidates, then /vote NUMBER." in bo.text

    tim = chat(engine, people["tim"])
    await tim.say("/vote 1")
    assert "can vote for Star of the Month" in tim.text
    assert "Only people with" in tim.text

    await bo.say("/vote")
    assert "1 person has voted" in bo.text
    assert "Li Wei" in bo.text and "1 vote" not in bo.text  # no tallies before the close

    admin = chat(engine, people["ada"])
    await admin.say(f"/nominations close {campaign}")
    assert "Li Wei won Star of the Month!" in admin.text
    assert "1 vote" in admin.text
    assert await _awards(database) == 1
    await admin.say(f"/nominations close {campaign}")
    assert await _awards(database) == 1


async def test_admin_only_commands_are_refused_politely(
    database: Database, clock: FixedClock
) -> None:
    engine, people = await _setup(database, clock)
    ana = chat(engine, people["ana"])
    await ana.say(f"/nominations open {REWARD}")
    assert "Only an admin can open a nomination campaign." in ana.text
    assert await engine.core.nominations.open_campaigns() == []

    campaign = await _open(engine, people)
    await ana.say(f"/nominations close {campaign}")
    assert "Only an admin can close a nomination campaign." in ana.text
    await ana.say(f"/nominations cancel {campaign}")
    assert "Only an admin can cancel a nomination campaign." in ana.text
    await ana.say("/nominations")
    assert f"#{campaign}" in ana.text and "Star of the Month" in ana.text
    assert "nominations open" in ana.text

    admin = chat(engine, people["ada"])
    await admin.say("/nominations open Star of the Month")
    assert "already" in admin.text.casefold() or "is open" in admin.text
    await admin.say("/nominations open Best Robot")
    assert "There is no Nomination Badge called “Best Robot”" in admin.text
    await admin.say("/nominations frobnicate")
    assert "I don't know /nominations frobnicate." in admin.text
    await admin.say(f"/nominations cancel {campaign} changed our minds")
    assert "was cancelled" in admin.text
    await ana.say("/nominate @li.wei great")
    assert "No nominations are open right now." in ana.text


async def test_nominate_usage_sentences(database: Database, clock: FixedClock) -> None:
    engine, people = await _setup(database, clock)
    ana = chat(engine, people["ana"])
    await ana.say("/nominate @li.wei great")
    assert "No nominations are open right now." in ana.text
    await _open(engine, people)
    await ana.say("/nominate great work everyone")
    assert "Who do you nominate?" in ana.text
    await ana.say("/nominate @li.wei")
    assert "Please say why you nominate them." in ana.text
    await ana.say("/nominate @li.wei @bo.smith both great")
    assert "Please nominate one person at a time." in ana.text
    await ana.say("/nominate @nobody.here great")
    assert "nobody.here" in ana.text


@pytest.mark.parametrize("whole_forms", [True, False], ids=["whole", "fields"])
async def test_nominate_button_opens_the_form(
    database: Database, clock: FixedClock, whole_forms: bool
) -> None:
    engine, people = await _setup(database, clock)
    campaign = await _open(engine, people)
    ana = chat(engine, people["ana"], whole_forms=whole_forms)
    await ana.click(nominate_token(campaign))
    if whole_forms:
        assert ana.screens == ["nominate_form"]
        fields = [f.name for f in ana.card.form.fields] if ana.card.form else []
        assert fields == ["nominee", "reason"]  # one campaign: nothing to pick
    await ana.fill({"nominee": "@cy.young", "reason": "always helps"})
    assert "You nominated Cy Young for Star of the Month." in ana.text
    candidates = await engine.core.nominations.candidates(campaign)
    assert [(c.name, c.reasons) for c in candidates] == [("Cy Young", ("always helps",))]


async def test_ballot_buttons_work_for_anyone_and_tell_only_the_voter(
    database: Database, clock: FixedClock
) -> None:
    engine, people = await _setup(database, clock, max_nominations_per_user=2)
    campaign = await _open(engine, people)
    ana = chat(engine, people["ana"], whole_forms=True)
    await ana.say("/nominate @li.wei great")
    await ana.say("/nominate @cy.young also great")
    await _to_voting(engine, clock)

    await ana.say("/vote")
    ballot = ana.card
    assert ballot.screen == "nomination_ballot"
    assert [a.title for a in ballot.actions] == ["Vote Li Wei", "Vote Cy Young"]

    # Anyone may click the ballot someone else got: the token carries no conversation state.
    bo = chat(engine, people["bo"], whole_forms=True)
    replies = await bo.click(ballot.actions[1].token or "")
    private = [r.text for r in replies if isinstance(r, Private)]
    assert private == ["You voted for Cy Young for Star of the Month. Only you can see this."]
    assert bo.card.screen == "nomination_ballot"
    assert "1 person has voted." in to_text(bo.card)
    assert "Cy Young" in to_text(bo.card) and "vote " not in to_text(bo.card).split("\n")[-1]

    again = await bo.click(ballot.actions[1].token or "")  # the same candidate twice: no change
    assert "1 person has voted." in to_text(bo.card)
    assert any("You voted for Cy Young" in r.text for r in again if isinstance(r, Say))

    tim = chat(engine, people["tim"], whole_forms=True)
    refused = await tim.click(ballot.actions[0].token or "")
    assert tim.cards == []  # the ballot is left as it is; only Tim hears why
    assert any(isinstance(r, Private) and "Only people with" in r.text for r in refused), refused
    assert (await engine.core.nominations.stats(campaign)).voters == 1


def _sample_cards() -> dict[str, Card]:
    from dataclasses import dataclass as plain
    from datetime import UTC, datetime

    @plain(frozen=True)
    class Campaign:
        id: int = 12
        reward_name: str = "Star of the Month"
        status: str = "voting"
        nominations_close_at: datetime | None = datetime(2026, 11, 25, tzinfo=UTC)
        voting_close_at: datetime | None = datetime(2026, 11, 30, tzinfo=UTC)
        max_votes_per_user: int = 1

    @plain(frozen=True)
    class Candidate:
        member_id: int
        name: str
        reasons: tuple[str, ...]

    campaign = Campaign()
    many = [
        Candidate(100 + n, f"Person {n} with a rather long display name", ("x" * 400,) * 5)
        for n in range(30)
    ]
    two = [Candidate(1, "Li Wei", ("rescued the release",)), Candidate(2, "Cy Young", ("mentor",))]
    return {
        "open": campaign_opened(campaign, nominate=nominate_token(campaign.id)),
        "form": nominate_form(
            [campaign, Campaign(id=13, reward_name="Rookie")],
            submit=encode("nominate", "submit", "abc"),
            cancel=encode("nominate", "cancel", "abc"),
        ),
        "ballot": ballot(
            campaign, two, voters=3, vote_tokens=[vote_token(12, 1), vote_token(12, 2)]
        ),
        "big_ballot": ballot(
            campaign, many, voters=250, vote_tokens=[vote_token(99999, c.member_id) for c in many]
        ),
        "winners": winners(campaign, {1: "Li Wei", 2: "Cy Young"}, (1,), {1: 3, 2: 1}),
        "nobody": winners(campaign, {}, (), {}),
        "cancelled": campaign_cancelled(campaign, "changed our minds"),
        "status": campaigns_status([campaign]),
    }


@pytest.mark.parametrize("name", sorted(_sample_cards()))
def test_nomination_cards_render_validly_everywhere(name: str) -> None:
    card = _sample_cards()[name]
    for execute in (True, False):
        assert errors(to_adaptive(card, execute=execute)) == []
    blocks = to_blocks(card)
    check_blocks(blocks)
    check_limits(blocks)
    if card.form is not None:
        check_modal(to_modal(card, callback_id=card.form.submit.token or "", private_metadata=""))
    message = to_telegram(card)
    for row in message.keyboard:
        for button in row:
            assert len(str(button.get("callback_data", "")).encode()) <= 64
    text = to_text(card)
    assert card.title in text
    if name == "ballot":
        assert "3 people have voted." in text and "rescued the release" in text
        assert "vote" not in text.split("Li Wei", 1)[1].split("\n", 1)[0]  # no tally by a name
    if name == "winners":
        assert "Li Wei won Star of the Month!" in text and "3 votes" in text


async def test_a_ballot_click_leaves_a_form_in_progress_alone(
    database: Database, clock: FixedClock
) -> None:
    engine, people = await _setup(database, clock)
    campaign = await _open(engine, people)
    await chat(engine, people["ana"]).say("/nominate @li.wei great")
    await _to_voting(engine, clock)
    bo = chat(engine, people["bo"])
    await bo.say("/kudos")  # the kudos form, asked field by field
    assert "Who" in bo.text
    await bo.click(vote_token(campaign, people["li"]))
    assert "You voted for Li Wei" in bo.text
    await bo.say("@cy.young")  # the kudos form goes on where it was
    assert "I didn't catch that" not in bo.text
    assert await engine.core.nominations.my_votes(campaign, people["bo"]) == (people["li"],)

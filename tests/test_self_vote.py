"""`allow_self_vote` (nomination_config, default false): a candidate never votes for themselves
unless the reward allows it (a campaign's winner once carried his own vote with
`allow_self_nomination: false`); in the service and in chat, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlmodel import col

from dialogs.engine import DialogEngine
from rewards.catalog.nomination import collect_nomination
from rewards.clock import FixedClock
from rewards.errors import NotAllowed
from rewards.store.db import Database
from rewards.store.models import NominationVote
from tests.test_dialogs_nominations import _open, _setup, chat


async def _votes(database: Database) -> list[tuple[int, int]]:
    async with database.read() as session:
        rows = await session.execute(
            select(col(NominationVote.voter_id), col(NominationVote.nominee_id)).order_by(
                col(NominationVote.id)
            )
        )
        return [(int(v), int(n)) for v, n in rows.all()]


async def _voting(
    database: Database, clock: FixedClock, **config: object
) -> tuple[DialogEngine, dict[str, int], int]:
    engine, people = await _setup(database, clock, **config)
    campaign = await _open(engine, people)
    service = engine.core.nominations
    await service.nominate(campaign, people["ana"], people["li"], "fixed the build")
    await service.nominate(campaign, people["li"], people["bo"], "ran the release")
    clock.advance(timedelta(days=8))
    await service.advance(clock.now())
    return engine, people, campaign


async def test_a_candidate_cannot_vote_for_themselves_by_default(
    database: Database, clock: FixedClock
) -> None:
    engine, people, campaign = await _voting(database, clock)
    service = engine.core.nominations
    with pytest.raises(NotAllowed, match="You can't vote for yourself for Star of the Month"):
        await service.vote(campaign, people["li"], people["li"])
    assert await _votes(database) == []  # the refusal wrote nothing

    # In chat: Li is candidate 1 (nominated first) and is told so; candidate 2 is fine.
    li = chat(engine, people["li"])
    await li.say("/vote 1")
    assert "You can't vote for yourself for Star of the Month; pick another candidate." in li.text
    assert await _votes(database) == []
    await li.say("/vote 2")
    assert await _votes(database) == [(people["li"], people["bo"])]

    # Changing a vote onto oneself is refused too, and keeps the vote as it was.
    with pytest.raises(NotAllowed):
        await service.vote(campaign, people["bo"], people["bo"])
    await service.vote(campaign, people["bo"], people["li"])
    with pytest.raises(NotAllowed):
        await service.vote(campaign, people["bo"], people["bo"])
    assert await _votes(database) == [(people["li"], people["bo"]), (people["bo"], people["li"])]


async def test_allow_self_vote_lets_candidates_vote_for_themselves(
    database: Database, clock: FixedClock
) -> None:
    engine, people, campaign = await _voting(database, clock, allow_self_vote=True)
    service = engine.core.nominations
    result = await service.vote(campaign, people["li"], people["li"])
    assert result.votes == (people["li"],)
    assert await _votes(database) == [(people["li"], people["li"])]


def test_allow_self_vote_is_validated_in_the_catalogue() -> None:
    config, problems = collect_nomination({"allow_self_vote": True})
    assert config is not None and config.allow_self_vote and not problems
    default, _ = collect_nomination({})
    assert default is not None and default.allow_self_vote is False
    refused, problems = collect_nomination({"allow_self_vote": "yes"})
    assert refused is None and problems and "allow_self_vote" in problems[0][0]

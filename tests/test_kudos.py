"""Kudos: receivers, points, tags, refusals that change nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from rewards.errors import InvalidInput, SelfAward, UnknownMember
from rewards.services import ledger
from rewards.services.kudos import KudosService, ensure_predefined_tags, list_tags, normalise_tag
from rewards.settings import Settings
from rewards.store.models import Kudos, LedgerEntry
from tests.factories import add_member

SETTINGS = Settings(kudos_points=5, kudos_max_message=100, kudos_max_receivers=3)


@pytest.fixture
async def team(database):
    return {n: await add_member(database, n) for n in ("Ana", "Li", "Bob", "Cy", "Dee")}


async def nothing_written(db) -> bool:
    async with db.read() as session:
        kudos = await session.scalar(select(func.count()).select_from(Kudos))
        entries = await session.scalar(select(func.count()).select_from(LedgerEntry))
    return kudos == 0 and entries == 0


async def test_kudos_to_two_people_credit_each(database, clock, team):
    await ensure_predefined_tags(database, clock)
    service = KudosService(database, SETTINGS, clock)
    view = await service.give(
        team["Bob"], [team["Ana"], team["Li"]], "great demo", ["#TeamWork", "ownership"]
    )
    assert view.receivers == ((team["Ana"], "Ana"), (team["Li"], "Li"))
    assert view.tags == ("teamwork", "ownership") and view.points_each == 5
    assert await ledger.balance(database, team["Ana"]) == 5
    assert await ledger.balance(database, team["Li"]) == 5
    assert await ledger.balance(database, team["Bob"]) == 0
    history = await ledger.history(database, team["Ana"])
    assert [(h.kind, h.points, h.description) for h in history] == [("kudos", 5, "Kudos from Bob")]


def test_tags_are_normalised():
    assert normalise_tag("#TeamWork") == normalise_tag("teamwork") == "teamwork"
    with pytest.raises(InvalidInput, match="letters, digits"):
        normalise_tag("#no spaces!")


async def test_custom_tags_join_the_predefined_list_once(database, clock, team):
    await ensure_predefined_tags(database, clock)
    await ensure_predefined_tags(database, clock)  # idempotent
    service = KudosService(database, SETTINGS, clock)
    await service.give(team["Bob"], [team["Ana"]], "thanks", ["#NightOwl"])
    await service.give(team["Cy"], [team["Ana"]], "thanks again", ["nightowl", "#TEAMWORK"])
    tags = await list_tags(database)
    assert [t.name for t in tags if t.predefined][:2] == ["customer-first", "helpfulness"]
    custom = [t for t in tags if not t.predefined]
    assert [(t.name, t.label) for t in custom] == [("nightowl", "NightOwl")]
    assert sum(1 for t in tags if t.name == "teamwork") == 1


@pytest.mark.parametrize(
    ("receivers", "message", "tags", "error", "sentence"),
    [
        (["Bob"], "me me me", [], SelfAward, "can't send kudos to yourself"),
        (["Ana", "Bob"], "us", [], SelfAward, "yourself"),
        ([], "nobody", [], InvalidInput, "Name at least one person"),
        (["Ana"], "   ", [], InvalidInput, "Add a few words"),
        (["Ana"], "x" * 101, [], InvalidInput, "too long \\(101 characters; at most 100\\)"),
        (["Ana", "Li", "Cy", "Dee"], "all", [], InvalidInput, "at most 3 people"),
        (["Ana"], "ok", ["bad tag"], InvalidInput, "letters, digits"),
        (["Ana"], "ok", [f"t{i}" for i in range(11)], InvalidInput, "at most 10 tags"),
    ],
)
async def test_refusals_change_nothing(
    database, clock, team, receivers, message, tags, error, sentence
):
    service = KudosService(database, SETTINGS, clock)
    with pytest.raises(error, match=sentence):
        await service.give(team["Bob"], [team[r] for r in receivers], message, tags)
    assert await nothing_written(database)


async def test_unknown_receiver_changes_nothing(database, clock, team):
    with pytest.raises(UnknownMember):
        await KudosService(database, SETTINGS, clock).give(team["Bob"], [team["Ana"], 99999], "hi")
    assert await nothing_written(database)


async def test_duplicate_receivers_count_once(database, clock, team):
    view = await KudosService(database, SETTINGS, clock).give(
        team["Bob"], [team["Ana"], team["Ana"]], "twice?"
    )
    assert len(view.receivers) == 1
    assert await ledger.balance(database, team["Ana"]) == 5

"""Self-service privacy on SQLite and PostgreSQL: `/me settings` in both form modes, hidden
members left off every board and their `/me`, LEADERBOARD_DEFAULT and the import's team-level
flags under the member's own choice, and celebrations public / private / off."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from dialogs.engine import DialogEngine
from rewards.clock import FixedClock
from rewards.errors import SettingsError
from rewards.privacy.preferences import get_preferences
from rewards.rules.evaluate import evaluate_reward
from rewards.services.leaderboards import Period
from rewards.services.members_import import import_members, read_members_file
from rewards.settings import Settings, load_settings
from rewards.store.db import Database
from rewards.store.models import Announcement, Award, Delivery, Member, PlatformAccount
from tests.factories import add_member, add_reward
from tests.support.conversation import ScriptedConversation, make_core

MODES = pytest.mark.parametrize("whole_forms", [True, False], ids=["whole", "fields"])


async def _names_on_boards(core: object, *, metric: str = "points") -> set[str]:
    names: set[str] = set()
    for period in (Period.WEEK, Period.ALL):
        board = await core.leaderboards.leaderboard(metric, period, limit=50)  # type: ignore[attr-defined]
        names |= {row.display_name for row in board.rows}
    return names


@MODES
async def test_me_settings_hides_a_member_everywhere(
    database: Database, clock: FixedClock, whole_forms: bool
) -> None:
    ana = await add_member(database, "Ana Lopez")
    li = await add_member(database, "Li Wei")
    core = make_core(database, clock, timezone="UTC")
    await core.kudos.give(li, [ana], "thanks")
    await core.kudos.give(ana, [li], "thanks back")
    engine = DialogEngine(core)
    chat = ScriptedConversation(engine, ana, whole_forms=whole_forms)
    assert "Ana Lopez" in await _names_on_boards(core)

    await chat.say("/me settings")
    if whole_forms:
        form = chat.card.form
        assert form is not None
        assert [(f.name, f.value) for f in form.fields] == [
            ("leaderboard", "shown"),
            ("celebrations", "public"),
            ("language", "en"),
        ]
        assert [c.value for c in form.fields[2].choices] == ["en"]  # only what exists
        await chat.click(form.submit.token or "", {"leaderboard": "banana"})
        assert "“banana” is not one of them" in chat.text
        assert not (await get_preferences(database, core.settings, ana)).hidden
    else:
        assert "Leaderboards" in chat.text and "Shown" in chat.text
        await chat.say("banana")
        assert "pick one of the options" in chat.text
    answers = ("hidden", "private", "en") if whole_forms else ("Hidden", "2", "1")
    await chat.fill(dict(zip(("leaderboard", "celebrations", "language"), answers, strict=True)))
    assert chat.screens[-1] == "privacy_saved", chat.text
    assert "Hidden" in chat.text and "Private" in chat.text and "English" in chat.text

    saved = await get_preferences(database, core.settings, ana)
    assert (saved.leaderboard, saved.celebrations, saved.language) == ("hidden", "private", "en")
    assert "Ana Lopez" not in await _names_on_boards(core)
    assert "Ana Lopez" not in await _names_on_boards(core, metric="kudos_given")
    assert "Li Wei" in await _names_on_boards(core)
    await chat.say("/me")
    assert "Hidden from leaderboards" in chat.text and "Not ranked yet" not in chat.text
    li_chat = ScriptedConversation(engine, li, whole_forms=whole_forms)
    await li_chat.say("/leaderboard all kudos_given")
    assert "Li Wei" in li_chat.text and "Ana Lopez" not in li_chat.text
    await li_chat.say("/me")
    assert "#1" in li_chat.text


async def test_leaderboard_default_and_the_import_under_the_members_choice(
    database: Database, clock: FixedClock, tmp_path: Path
) -> None:
    people = {n: await add_member(database, n) for n in ("Ana Lopez", "Li Wei", "Mo Sala")}
    shown = make_core(database, clock, timezone="UTC")
    hidden = make_core(database, clock, timezone="UTC", leaderboard_default="hidden")
    for name, member in people.items():
        await shown.kudos.give(people["Mo Sala" if name != "Mo Sala" else "Li Wei"], [member], "x")
    assert await _names_on_boards(shown) == set(people)
    assert await _names_on_boards(hidden) == set()  # nobody has chosen: all hidden

    # HR's import hides Sales (Li) by team; Ana chooses to be shown, then the import runs again
    # with her flag set: her own choice still wins.
    chat = ScriptedConversation(DialogEngine(hidden), people["Ana Lopez"], whole_forms=True)
    await chat.say("/me")
    assert "Hidden from leaderboards" in chat.text
    await chat.say("/me settings")
    assert chat.card.form is not None and chat.card.form.fields[0].value == "hidden"
    await chat.fill({"leaderboard": "shown", "celebrations": "public", "language": "en"})
    hr = tmp_path / "hr.csv"
    hr.write_text(
        "email,department,leaderboard_opt_out\n"
        "ana.lopez@example.com,Sales,true\n"
        "li.wei@example.com,Sales,true\n"
        "mo.sala@example.com,Ops,false\n",
        encoding="utf-8",
    )
    report = await import_members(database, read_members_file(hr))
    assert not report.rejected
    assert await _names_on_boards(shown) == {"Ana Lopez", "Mo Sala"}
    assert await _names_on_boards(hidden) == {"Ana Lopez"}
    await chat.say("/me")
    assert "#" in chat.text and "Hidden from leaderboards" not in chat.text


async def test_celebrations_public_private_and_off(database: Database, clock: FixedClock) -> None:
    today = (11, 18)  # the clock's date
    people = {n: await add_member(database, n, birthday=today) for n in ("Pub", "Priv", "Off")}
    core = make_core(
        database,
        clock,
        timezone="UTC",
        announce_slack="C0PARTY",
        extra={"SLACK_BOT_TOKEN": "xoxb-test"},
    )
    async with database.write() as session:
        for member in people.values():
            session.add(PlatformAccount(member_id=member, platform="slack", user_id=f"U{member}"))
        for name, mode in (("Priv", "private"), ("Off", "off")):
            row = await session.get(Member, people[name])
            assert row is not None
            row.celebrations = mode
    await add_reward(
        database,
        reward_id=77,
        reward="Happy Birthday!",
        reward_type="Achievement Badge",
        rules=[["Birthday"]],
        points=10,
        multiple=True,
    )
    report = await evaluate_reward(core, 77, now=clock.now(), run_key="party")
    assert sorted(report.awarded_ids) == sorted([people["Pub"], people["Priv"]])
    async with database.read() as session:
        announcements = (await session.scalars(select(Announcement))).all()
        deliveries = (
            await session.execute(select(Delivery.announcement_id, Delivery.target))
        ).all()
        awarded = set((await session.scalars(select(Award.member_id))).all())
    assert people["Off"] not in awarded  # off: nothing at all
    places: dict[str, set[str]] = {}
    for announcement in announcements:
        names = {item["name"] for item in announcement.payload["items"]}
        targets = {t for a, t in deliveries if a == announcement.id}
        places[",".join(sorted(names))] = targets
    assert places == {
        "Pub": {"C0PARTY", f"member:{people['Pub']}"},  # the channel line and a DM
        "Priv": {f"member:{people['Priv']}"},  # a DM only
    }


def test_leaderboard_default_is_read_from_the_environment() -> None:
    assert Settings().leaderboard_default == "shown"
    loaded = load_settings({"LEADERBOARD_DEFAULT": "hidden"}, Path("/dev/null"))
    assert loaded.leaderboard_default == "hidden"
    with pytest.raises(SettingsError, match="LEADERBOARD_DEFAULT"):
        load_settings({"LEADERBOARD_DEFAULT": "sometimes"}, Path("/dev/null"))

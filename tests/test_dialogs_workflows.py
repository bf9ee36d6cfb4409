"""`/workflow`, `/workflow join`, admin `/workflow mark`, and workflow progress on `/me`."""

from __future__ import annotations

import pytest

from dialogs.engine import DialogEngine
from rewards.clock import FixedClock
from rewards.store.db import Database
from tests.factories import add_member, add_reward
from tests.support.conversation import ScriptedConversation, make_core
from tests.test_workflows import seed

MODES = pytest.mark.parametrize("whole_forms", [True, False], ids=["whole", "fields"])


@MODES
async def test_join_mark_and_progress(
    database: Database, clock: FixedClock, whole_forms: bool
) -> None:
    ana = await add_member(database, "Ana Lopez")
    boss = await add_member(database, "Bo Boss")
    await add_reward(database, **seed("Onboarding Champion"))
    engine = DialogEngine(make_core(database, clock, admins=["bo.boss@example.com"]))
    me = ScriptedConversation(engine, ana, whole_forms=whole_forms)
    admin = ScriptedConversation(engine, boss, whole_forms=whole_forms)

    await me.say("/workflow")
    assert "Join one with /workflow join NAME: Onboarding Champion" in me.text

    await me.say("/workflow join onboarding champion")
    assert "You joined Onboarding Champion." in me.text
    assert (
        me.screens == ["workflow_progress"] and "0/3" in me.text and "Next: First Login" in me.text
    )
    await me.say("/workflow join 7000")
    assert "You are already working on Onboarding Champion." in me.text

    # Only admins mark steps.
    await me.say("/workflow mark @ana.lopez Onboarding Champion First Login")
    assert "Only an admin" in me.text

    await admin.say("/workflow mark @ana.lopez Onboarding Champion First Login")
    assert "Marked. Ana Lopez is at 1/3 in Onboarding Champion." in admin.text
    await admin.say("/workflow mark @ana.lopez Onboarding Champion 3")
    assert 'comes after "Complete Profile"' in admin.text

    await me.say("/me")
    assert me.screens == ["my_rewards", "workflow_progress"]
    assert (
        "Onboarding Champion" in me.text
        and "1/3" in me.text
        and "Next: Complete Profile" in me.text
    )

    await admin.say("/workflow mark @ana.lopez 7000 2")
    await admin.say('/workflow mark @"Ana Lopez" Onboarding Champion Take Training')
    assert "Ana Lopez completed Onboarding Champion." in admin.text

    await me.say("/workflow")
    assert "3/3" in me.text and "Completed 18 Nov 2026" in me.text
    await me.say("/me")  # completed workflows leave /me; the badge shows there instead
    assert me.screens == ["my_rewards"] and "Onboarding Champion" in me.text and "2000" in me.text


async def test_unknown_workflow_and_usage(database: Database, clock: FixedClock) -> None:
    ana = await add_member(database, "Ana Lopez")
    engine = DialogEngine(make_core(database, clock))
    me = ScriptedConversation(engine, ana, whole_forms=True)
    await me.say("/workflow join Nope")
    assert 'There is no workflow "Nope"' in me.text
    await me.say("/workflow frobnicate")
    assert "Try /workflow" in me.text
    await me.say("/workflow")
    assert "There are no workflows yet." in me.text

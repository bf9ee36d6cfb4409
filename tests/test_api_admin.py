"""Catalogue administration, nomination campaigns, workflows and jobs over the REST API: success,
auth (no key, a scope too low), validation and not-found, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bots.server import create_app
from rewards.catalog.loader import load_file, parse_catalog
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.services.apikeys import create_key
from rewards.services.catalog import load_catalog
from rewards.services.members import find_by_email
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Award, LotteryRun
from tests.factories import add_member
from tests.support.api import Api

PROBLEM = "application/problem+json"
ADMIN = "boss@example.com"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "rewards.json"

BADGE = {
    "reward_id": 500,
    "reward": "Helper",
    "description": "Helps others",
    "points": 25,
    "reward_type": "User Badge",
    "reward_category": "Recognition",
    "multiple": True,
}
NOMINATION = {
    "reward_id": 8000,
    "reward": "Employee of the Month",
    "points": 5000,
    "reward_type": "Nomination Badge",
    "reward_category": "Recognition",
    "nomination_config": {"nomination_duration_days": 7, "voting_duration_days": 5},
}
WORKFLOW = {
    "reward_id": 7100,
    "reward": "Onboarding",
    "points": 100,
    "reward_type": "Workflow Badge",
    "reward_category": "Training",
    "workflow": [{"step": "First Login"}, {"step": "Complete Profile"}],
}


@asynccontextmanager
async def admin_client(database: Database, clock: FixedClock) -> AsyncIterator[tuple[Api, Core]]:
    """Like `tests.support.api.api_client`, with ADMIN in REWARDS_ADMINS; also yields a core on
    the same database and clock, to move campaigns along as the scheduler would."""
    settings = Settings(
        database_url=database.url, catalog_files=(), reward_scheduler=False, admins=(ADMIN,)
    )
    core = Core(settings=settings, db=Database(database.url), clock=clock)
    keys = {scope: (await create_key(database, scope, scope, clock))[1] for scope in
            ("read", "write", "admin")}  # fmt: skip
    async with TestClient(TestServer(create_app(settings, core, platforms=False))) as client:
        yield Api(client, keys), Core(settings=settings, db=database, clock=clock)


async def _load(database: Database, clock: FixedClock, *rewards: dict[str, Any]) -> None:
    await load_catalog(database, parse_catalog(list(rewards)), clock=clock)


async def _count(database: Database, query: Any) -> int:
    async with database.read() as session:
        return int(await session.scalar(query) or 0)


async def _refused(api: Api, method: str, url: str, json: Any = None, *scopes: str) -> None:
    """No key: 401; each of `scopes`: 403; both as problem+json."""
    anonymous = await api.client.request(method, url, json=json)
    assert (anonymous.status, anonymous.content_type) == (401, PROBLEM), url
    for scope in scopes:
        low = await api.client.request(method, url, json=json, headers=api.auth(scope))
        assert (low.status, low.content_type) == (403, PROBLEM), (url, scope)


# ---- the catalogue ----------------------------------------------------------------------------


async def test_add_a_reward(database: Database, clock: FixedClock) -> None:
    async with admin_client(database, clock) as (api, _):
        url = "/rewards/api/v1/rewards"
        await _refused(api, "POST", url, BADGE, "read", "write")
        headers = api.auth("admin", **{"Idempotency-Key": "add-500"})
        added = await api.client.post(url, json=BADGE, headers=headers)
        assert added.status == 201, await added.text()
        body = await added.json()
        assert (body["id"], body["reward"], body["points"], body["enabled"]) == (
            500, "Helper", 25, True,
        )  # fmt: skip
        replay = await api.client.post(url, json=BADGE, headers=headers)
        assert replay.status == 201 and replay.headers["Idempotent-Replayed"] == "true"
        shown = await api.client.get(f"{url}/500", headers=api.auth("read"))
        assert (await shown.json())["description"] == "Helps others"

        taken = await api.client.post(url, json=BADGE, headers=api.auth("admin"))
        assert (taken.status, taken.content_type) == (409, PROBLEM)
        assert "already a reward with id 500" in (await taken.json())["detail"]


async def test_catalogue_problems_are_listed(database: Database, clock: FixedClock) -> None:
    async with admin_client(database, clock) as (api, _):
        url = "/rewards/api/v1/rewards"
        bad = {**BADGE, "reward_id": 501, "points": -5, "reward_type": "Nope", "colour": "red"}
        response = await api.client.post(url, json=bad, headers=api.auth("admin"))
        assert (response.status, response.content_type) == (422, PROBLEM)
        problem = await response.json()
        fields = {item["field"] for item in problem["errors"]}
        assert {"points", "reward_type", "colour"} <= fields
        assert all(set(item) == {"field", "problem"} for item in problem["errors"])
        for body in ([BADGE], "x", 5):
            response = await api.client.post(url, json=body, headers=api.auth("admin"))
            assert (response.status, response.content_type) == (422, PROBLEM), body
        broken = await api.client.post(url, data=b"{nope", headers=api.auth("admin"))
        assert broken.status == 400
        unknown_function = {
            **BADGE,
            "reward_id": 502,
            "reward_type": "Achievement Badge",
            "rules": [["AchievementRule", {"function_path": "no.such.function", "threshold": 1}]],
        }
        response = await api.client.post(url, json=unknown_function, headers=api.auth("admin"))
        assert response.status == 422
        listed = await api.client.get(url, headers=api.auth("read"))
        assert (await listed.json())["items"] == []


async def test_replace_a_reward(database: Database, clock: FixedClock) -> None:
    await _load(database, clock, BADGE)
    async with admin_client(database, clock) as (api, _):
        url = "/rewards/api/v1/rewards/500"
        changed = {**BADGE, "points": 40, "reward": "Great Helper"}
        await _refused(api, "PUT", url, changed, "read", "write")
        response = await api.client.put(url, json=changed, headers=api.auth("admin"))
        assert response.status == 200, await response.text()
        assert ((await response.json())["points"], (await response.json())["reward"]) == (
            40, "Great Helper",
        )  # fmt: skip
        shown = await api.client.get(url, headers=api.auth("read"))
        assert (await shown.json())["points"] == 40

        other = await api.client.put(
            url, json={**changed, "reward_id": 501}, headers=api.auth("admin")
        )
        assert (other.status, other.content_type) == (422, PROBLEM)
        assert "reward_id is 501" in (await other.json())["detail"]
        invalid = await api.client.put(
            url, json={**changed, "points": "many"}, headers=api.auth("admin")
        )
        assert invalid.status == 422 and (await invalid.json())["errors"][0]["field"] == "points"
        missing = await api.client.put(
            "/rewards/api/v1/rewards/404", json={**changed, "reward_id": 404},
            headers=api.auth("admin"),
        )  # fmt: skip
        assert (missing.status, missing.content_type) == (404, PROBLEM)


async def test_delete_disables_and_keeps_the_awards(database: Database, clock: FixedClock) -> None:
    await _load(database, clock, BADGE)
    ana = await add_member(database, "Ana")
    bob = await add_member(database, "Bob")
    async with admin_client(database, clock) as (api, core):
        await core.awards.award(500, to=ana, by=bob)
        url = "/rewards/api/v1/rewards/500"
        await _refused(api, "DELETE", url, None, "read", "write")
        for _ in range(2):
            response = await api.client.delete(url, headers=api.auth("admin"))
            assert response.status == 204
        shown = await (await api.client.get(url, headers=api.auth("read"))).json()
        assert shown["enabled"] is False and shown["points"] == 25
        listed = await api.client.get("/rewards/api/v1/rewards", headers=api.auth("read"))
        assert (await listed.json())["items"] == []
        history = await api.client.get(
            f"/rewards/api/v1/users_rewards?member={ana}", headers=api.auth("read")
        )
        assert [a["reward_id"] for a in (await history.json())["items"]] == [500]
        missing = await api.client.delete("/rewards/api/v1/rewards/404", headers=api.auth("admin"))
        assert (missing.status, missing.content_type) == (404, PROBLEM)
    assert await _count(database, select(func.count()).select_from(Award)) == 1


# ---- nomination campaigns ---------------------------------------------------------------------


async def test_open_a_campaign(database: Database, clock: FixedClock) -> None:
    await _load(database, clock, NOMINATION, BADGE)
    await add_member(database, "Boss")
    await add_member(database, "Ana")
    async with admin_client(database, clock) as (api, _):
        url = "/rewards/api/v1/nominations"
        await _refused(api, "POST", url, {"reward_id": 8000}, "read", "write")
        for body in (
            {"reward_id": "8000"},
            {"reward_id": 8000, "by": ADMIN},
            {"reward_id": 8000, "as": ""},
            {},
        ):
            response = await api.client.post(url, json=body, headers=api.auth("admin"))
            assert (response.status, response.content_type) == (422, PROBLEM), body
        not_admin = await api.client.post(
            url, json={"reward_id": 8000, "as": "ana@example.com"}, headers=api.auth("admin")
        )
        assert (not_admin.status, not_admin.content_type) == (403, PROBLEM)
        assert (await not_admin.json())["detail"] == (
            "Only an admin can open a nomination campaign."
        )
        for body in ({"reward_id": 8000, "as": "ghost@example.com"}, {"reward_id": 404}):
            response = await api.client.post(url, json=body, headers=api.auth("admin"))
            assert (response.status, response.content_type) == (404, PROBLEM), body
        not_nomination = await api.client.post(
            url, json={"reward_id": 500}, headers=api.auth("admin")
        )
        assert not_nomination.status == 422

        opened = await api.client.post(
            url, json={"reward_id": 8000, "as": ADMIN}, headers=api.auth("admin")
        )
        assert opened.status == 201, await opened.text()
        campaign = await opened.json()
        assert (campaign["id"], campaign["phase"], campaign["reward_name"]) == (
            1, "nominating", "Employee of the Month",
        )  # fmt: skip
        assert campaign["counts"] == {"candidates": 0, "nominations": 0, "voters": 0}
        assert campaign["tallies"] is None
        same_instant = await api.client.post(
            url, json={"reward_id": 8000}, headers=api.auth("admin")
        )
        assert (await same_instant.json())["id"] == 1  # the service's key: one campaign
        clock.advance(timedelta(seconds=1))
        twice = await api.client.post(url, json={"reward_id": 8000}, headers=api.auth("admin"))
        assert (twice.status, twice.content_type) == (422, PROBLEM)
        assert "already has a campaign open (#1, nominating)" in (await twice.json())["detail"]

        listed = await api.client.get(f"{url}?limit=1", headers=api.auth("read"))
        body = await listed.json()
        assert [c["id"] for c in body["items"]] == [1] and body["next"] is None
        await _refused(api, "GET", url)
        bad_limit = await api.client.get(f"{url}?limit=0", headers=api.auth("read"))
        assert bad_limit.status == 422
        one = await api.client.get(f"{url}/1", headers=api.auth("read"))
        assert (await one.json())["nominations_close_at"] == campaign["nominations_close_at"]
        missing = await api.client.get(f"{url}/9", headers=api.auth("read"))
        assert (missing.status, missing.content_type) == (404, PROBLEM)
        assert (await missing.json())["detail"] == "There is no nomination campaign 9."


async def test_close_shows_the_tallies(database: Database, clock: FixedClock) -> None:
    await _load(database, clock, NOMINATION)
    await add_member(database, "Boss")
    ana = await add_member(database, "Ana")
    li = await add_member(database, "Li")
    async with admin_client(database, clock) as (api, core):
        url = "/rewards/api/v1/nominations"
        opened = await api.client.post(url, json={"reward_id": 8000}, headers=api.auth("admin"))
        assert opened.status == 201
        early = await api.client.post(f"{url}/1/close", json={}, headers=api.auth("admin"))
        assert early.status == 422 and "still taking nominations" in (await early.json())["detail"]

        await core.nominations.nominate(1, ana, li, "Closed the biggest deal")
        await core.nominations.nominate(1, li, ana, "Always helps")
        clock.advance(timedelta(days=7, minutes=1))
        await core.nominations.advance(clock.now())
        boss = await find_by_email(database, ADMIN)
        assert boss is not None
        for voter in (ana, boss.id):
            await core.nominations.vote(1, voter, li)
        voting = await (await api.client.get(f"{url}/1", headers=api.auth("read"))).json()
        assert voting["phase"] == "voting" and voting["tallies"] is None
        assert voting["counts"] == {"candidates": 2, "nominations": 2, "voters": 2}

        await _refused(api, "POST", f"{url}/1/close", {}, "read", "write")
        for body in ({"as": 5, "why": "x"}, {"reason": "no"}, [1]):
            response = await api.client.post(f"{url}/1/close", json=body, headers=api.auth("admin"))
            assert response.status == 422, body
        not_admin = await api.client.post(
            f"{url}/1/close", json={"as": "ana@example.com"}, headers=api.auth("admin")
        )
        assert (not_admin.status, not_admin.content_type) == (403, PROBLEM)
        missing = await api.client.post(f"{url}/9/close", json={}, headers=api.auth("admin"))
        assert (missing.status, missing.content_type) == (404, PROBLEM)

        closed = await api.client.post(
            f"{url}/1/close", json={"as": ADMIN}, headers=api.auth("admin")
        )
        assert closed.status == 200, await closed.text()
        body = await closed.json()
        assert body["phase"] == "closed"
        assert body["tallies"] == [{"member_id": li, "name": "Li", "votes": 2}]
        assert body["winners"] == [{"member_id": li, "name": "Li"}]
        assert (await (await api.client.get(url, headers=api.auth("read"))).json())["items"] == []
    count = select(func.count()).select_from(Award).where(Award.member_id == li)  # type: ignore[arg-type]
    assert await _count(database, count) == 1


async def test_cancel_a_campaign(database: Database, clock: FixedClock) -> None:
    await _load(database, clock, NOMINATION)
    await add_member(database, "Boss")
    await add_member(database, "Ana")
    async with admin_client(database, clock) as (api, _):
        url = "/rewards/api/v1/nominations"
        await api.client.post(url, json={"reward_id": 8000}, headers=api.auth("admin"))
        await _refused(api, "POST", f"{url}/1/cancel", {}, "read", "write")
        too_long = await api.client.post(
            f"{url}/1/cancel", json={"reason": "x" * 1001}, headers=api.auth("admin")
        )
        assert (too_long.status, too_long.content_type) == (422, PROBLEM)
        not_admin = await api.client.post(
            f"{url}/1/cancel", json={"as": "ana@example.com"}, headers=api.auth("admin")
        )
        assert not_admin.status == 403
        missing = await api.client.post(f"{url}/9/cancel", json={}, headers=api.auth("admin"))
        assert (missing.status, missing.content_type) == (404, PROBLEM)

        cancelled = await api.client.post(
            f"{url}/1/cancel", json={"as": ADMIN, "reason": "Wrong month"},
            headers=api.auth("admin"),
        )  # fmt: skip
        assert cancelled.status == 200, await cancelled.text()
        body = await cancelled.json()
        assert (body["phase"], body["cancelled"], body["tallies"]) == (
            "cancelled", "Wrong month", None,
        )  # fmt: skip
        closed = await api.client.post(f"{url}/1/close", json={}, headers=api.auth("admin"))
        assert closed.status == 422


# ---- workflows --------------------------------------------------------------------------------


async def test_enrol_and_mark_steps(database: Database, clock: FixedClock) -> None:
    await _load(database, clock, WORKFLOW, BADGE)
    ana = await add_member(database, "Ana")
    async with admin_client(database, clock) as (api, _):
        progress_url = "/rewards/api/v1/members/ana@example.com/workflows"
        empty = await api.client.get(progress_url, headers=api.auth("read"))
        assert await empty.json() == {"items": [], "next": None}
        await _refused(api, "GET", progress_url)

        enroll = "/rewards/api/v1/workflows/7100/enroll"
        await _refused(api, "POST", enroll, {"member": ana}, "read")
        first = await api.client.post(enroll, json={"member": ana}, headers=api.auth("write"))
        assert first.status == 201, await first.text()
        body = await first.json()
        assert (body["new"], body["status"], body["next_step"]) == (True, "active", "First Login")
        again = await api.client.post(
            enroll, json={"member": "ana@example.com"}, headers=api.auth("write")
        )
        assert again.status == 200 and (await again.json())["new"] is False

        steps = "/rewards/api/v1/workflows/7100/steps"
        # marking a step is reserved for admins in the chat, so for admin keys over the API
        await _refused(api, "POST", steps, {"member": ana, "step": 0}, "read", "write")
        out_of_order = await api.client.post(
            steps, json={"member": ana, "step": "complete profile"}, headers=api.auth("admin")
        )
        assert out_of_order.status == 422
        assert "comes after" in (await out_of_order.json())["detail"]
        marked = await api.client.post(
            steps, json={"member": ana, "step": 0}, headers=api.auth("admin")
        )
        assert marked.status == 200, await marked.text()
        assert (await marked.json())["done"] == 1
        last = await api.client.post(
            steps, json={"member": ana, "step": "Complete Profile"}, headers=api.auth("admin")
        )
        assert (await last.json())["status"] == "completed"

        listed = await (await api.client.get(progress_url, headers=api.auth("read"))).json()
        [item] = listed["items"]
        assert (item["reward_id"], item["status"]) == (7100, "completed")
        assert [s["done"] for s in item["steps"]] == [True, True]
    count = select(func.count()).select_from(Award).where(Award.reward_id == 7100)  # type: ignore[arg-type]
    assert await _count(database, count) == 1


async def test_workflow_validation_and_not_found(database: Database, clock: FixedClock) -> None:
    await _load(database, clock, WORKFLOW, BADGE)
    ana = await add_member(database, "Ana")
    async with admin_client(database, clock) as (api, _):
        steps = "/rewards/api/v1/workflows/7100/steps"
        for body in (
            {"member": ana, "step": True},
            {"member": ana, "step": "x" * 300},
            {"member": ana, "step": -1},
            {"member": ana},
            {"member": ana, "step": 0, "by": "boss"},
        ):
            response = await api.client.post(steps, json=body, headers=api.auth("admin"))
            assert (response.status, response.content_type) == (422, PROBLEM), body
        not_enrolled = await api.client.post(
            steps, json={"member": ana, "step": 0}, headers=api.auth("admin")
        )
        assert not_enrolled.status == 404
        for url, body in (
            ("/rewards/api/v1/workflows/404/enroll", {"member": ana}),
            ("/rewards/api/v1/workflows/7100/enroll", {"member": "ghost@example.com"}),
            ("/rewards/api/v1/workflows/404/steps", {"member": ana, "step": 0}),
        ):
            response = await api.client.post(url, json=body, headers=api.auth("admin"))
            assert (response.status, response.content_type) == (404, PROBLEM), url
        not_workflow = await api.client.post(
            "/rewards/api/v1/workflows/500/enroll", json={"member": ana}, headers=api.auth()
        )
        assert not_workflow.status == 422
        ghost = await api.client.get(
            "/rewards/api/v1/members/ghost@example.com/workflows", headers=api.auth("read")
        )
        assert (ghost.status, ghost.content_type) == (404, PROBLEM)


# ---- jobs -------------------------------------------------------------------------------------


async def test_list_and_run_jobs(database: Database, clock: FixedClock) -> None:
    await load_catalog(database, load_file(EXAMPLES), clock=clock)
    for i in range(6):
        await add_member(database, f"Member {i}")
    async with admin_client(database, clock) as (api, _):
        url = "/rewards/api/v1/jobs"
        await _refused(api, "GET", url, None, "read", "write")
        jobs: dict[str, dict[str, Any]] = {}
        next_url = f"{url}?limit=5"
        while True:
            response = await api.client.get(next_url, headers=api.auth("admin"))
            assert response.status == 200, await response.text()
            body = await response.json()
            jobs.update((job["id"], job) for job in body["items"])
            if body["next"] is None:
                break
            next_url = f"{url}?limit=5&cursor={body['next']}"
        assert list(jobs) == sorted(jobs)
        mega = jobs["monthly_mega_lottery"]
        assert (mega["name"], mega["reward_id"], mega["trigger"], mega["timezone"]) == (
            "Monthly Mega Lottery", 1013, "cron day=last hour=16 minute=0", "UTC",
        )  # fmt: skip
        assert mega["next_run"].endswith("16:00:00+00:00") and mega["last_run"] is None
        assert jobs["rewards.sweep"]["reward_id"] is None
        assert jobs["christmas_special"]["scheduled"] is False
        assert "date has passed" in jobs["christmas_special"]["not_scheduled"]
        bad = await api.client.get(f"{url}?limit=500", headers=api.auth("admin"))
        assert (bad.status, bad.content_type) == (422, PROBLEM)

        run = f"{url}/monthly_mega_lottery/run"
        await _refused(api, "POST", run, None, "read", "write")
        headers = api.auth("admin", **{"Idempotency-Key": "draw-1"})
        ran = await api.client.post(run, headers=headers)
        assert ran.status == 200, await ran.text()
        outcome = await ran.json()
        assert (outcome["job_id"], outcome["status"]) == ("monthly_mega_lottery", "done")
        assert "Monthly Mega Lottery (draw #1)" in outcome["summary"]
        replay = await api.client.post(run, headers=headers)
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert await replay.json() == outcome
        assert await _count(database, select(func.count()).select_from(LotteryRun)) == 1

        listed = await api.client.get(f"{url}?limit=200", headers=api.auth("admin"))
        [mega] = [j for j in (await listed.json())["items"] if j["id"] == "monthly_mega_lottery"]
        assert mega["last_run"]["status"] == "done"

        typo = await api.client.post(f"{url}/monthly_mega_lotery/run", headers=api.auth("admin"))
        assert (typo.status, typo.content_type) == (404, PROBLEM)
        assert "Did you mean monthly_mega_lottery" in (await typo.json())["detail"]
        unscheduled = await api.client.post(
            f"{url}/christmas_special/run", headers=api.auth("admin")
        )
        assert unscheduled.status == 404
        assert "is not scheduled" in (await unscheduled.json())["detail"]

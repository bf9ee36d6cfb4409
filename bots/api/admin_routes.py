"""Catalogue administration, nomination campaigns, workflow progress and scheduled jobs.

Thin routes over the core: the catalogue loader and `load_catalog` for rewards, the nomination and
workflow services for campaigns and workflows, and the scheduler's plan and `run_now` for jobs
(the same code as `rewards catalog load`, `rewards nominations` and `rewards jobs`).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, RootModel

from bots.api import views
from bots.api.admin_actions_routes import actor_of
from bots.api.auth import needs
from bots.api.bodies import Body, Id, path_id, read_body
from bots.api.idempotency import idempotent
from bots.api.openapi import documented
from bots.api.pagination import page_after
from bots.api.principals import acting_member
from bots.api.problems import problem_body, problem_response
from bots.api.rewards_routes import MemberRef
from bots.scheduler import JobState, job_states, load_plan, process_owner, run_now, unknown_job
from bots.server import CORE
from rewards.catalog.loader import RewardDefinition, definition_from_json, parse_catalog
from rewards.core import Core
from rewards.errors import CatalogError, InvalidInput, NotFound, RewardsError, UnknownReward
from rewards.services import catalog, members
from rewards.services.nominations import MAX_REASON, CampaignStats, CampaignView
from rewards.services.workflows import WorkflowProgressView
from rewards.store.models import JobRun

routes = web.RouteTableDef()

REWARD = r"/rewards/api/v1/rewards/{reward_id:\d{1,18}}"
CAMPAIGN = r"/rewards/api/v1/nominations/{campaign_id:\d{1,18}}"
WORKFLOW = r"/rewards/api/v1/workflows/{reward_id:\d{1,18}}"
MAX_STEP_NAME = 200


class RewardExists(RewardsError):
    status = 409
    code = "reward-exists"


class RewardJson(RootModel[dict[str, Any]]):
    """One reward in the catalogue's JSON format; the catalogue loader validates the rest."""


class OpenCampaign(Body):
    reward_id: Id
    as_: MemberRef | None = Field(default=None, alias="as")


class CloseCampaign(Body):
    as_: MemberRef | None = Field(default=None, alias="as")


class CancelCampaign(Body):
    as_: MemberRef | None = Field(default=None, alias="as")
    reason: Annotated[str, Field(max_length=MAX_REASON)] = ""


class Enroll(Body):
    member: MemberRef


class MarkStep(Body):
    member: MemberRef
    step: (
        Annotated[int, Field(ge=0, le=10_000)]
        | Annotated[str, Field(min_length=1, max_length=MAX_STEP_NAME)]
    )


def _core(request: web.Request) -> Core:
    return request.app[CORE]


def _id(request: web.Request, name: str) -> int:
    return path_id(request, name)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


# ---- the catalogue ----------------------------------------------------------------------------


def _catalog_problem(error: CatalogError) -> web.Response:
    problems = [{"field": p.field, "problem": p.message} for p in error.problems]
    detail = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
    body = problem_body(422, f"The reward is not valid: {detail}.", error.code, errors=problems)
    return problem_response(body)


async def _validated(request: web.Request) -> RewardDefinition | web.Response:
    raw = (await read_body(request, RewardJson)).root
    try:
        # In a thread: it renders the message template against a sample context (up to the
        # template time limit), which must not hold the event loop.
        (definition,) = await asyncio.to_thread(
            partial(parse_catalog, [raw], registry=_core(request).functions)
        )
    except CatalogError as error:
        return _catalog_problem(error)
    return definition


async def _exists(request: web.Request, reward_id: int) -> bool:
    try:
        await catalog.get_definition(_core(request).db, reward_id)
    except UnknownReward:
        return False
    return True


async def _store(request: web.Request, definition: RewardDefinition) -> dict[str, Any]:
    core = _core(request)
    await catalog.load_catalog(core.db, [definition], clock=core.clock)
    return views.reward(await catalog.get_definition(core.db, definition.reward_id))


@routes.post("/rewards/api/v1/rewards")
@needs("admin")
@documented(body=RewardJson, status=201)
async def add_reward(request: web.Request) -> web.Response:
    """Add one reward (the catalogue's JSON format); 409 when its reward_id is taken."""
    definition = await _validated(request)
    if isinstance(definition, web.Response):
        return definition

    async def work() -> tuple[int, dict[str, Any]]:
        if await _exists(request, definition.reward_id):
            raise RewardExists(
                f"There is already a reward with id {definition.reward_id}; "
                "replace it with PUT /rewards/api/v1/rewards/{id}."
            )
        return 201, await _store(request, definition)

    return await idempotent(request, work)


@routes.put(REWARD)
@needs("admin")
@documented(body=RewardJson)
async def replace_reward(request: web.Request) -> web.Response:
    """Replace a reward's whole definition; the body's reward_id must be the one in the path."""
    reward_id = _id(request, "reward_id")
    await catalog.get_definition(_core(request).db, reward_id)  # 404 when unknown
    definition = await _validated(request)
    if isinstance(definition, web.Response):
        return definition
    if definition.reward_id != reward_id:
        raise InvalidInput(
            f"The body's reward_id is {definition.reward_id}, but the address names {reward_id}."
        )

    async def work() -> tuple[int, dict[str, Any]]:
        return 200, await _store(request, definition)

    return await idempotent(request, work)


@routes.delete(REWARD)
@needs("admin")
@documented(status=204)
async def disable_reward(request: web.Request) -> web.Response:
    """Disable a reward: it is stored with `enabled: false`, so nobody can receive it any more and
    its jobs stop, but it is not deleted: its awards and their ledger lines stay as they are.
    Disabling it again changes nothing (204 both times)."""
    core = _core(request)
    found = await catalog.get_definition(core.db, _id(request, "reward_id"))
    if found.enabled:
        disabled = definition_from_json({**found.to_json(), "enabled": False})
        await catalog.load_catalog(core.db, [disabled], clock=core.clock)
    return web.Response(status=204)


# ---- nomination campaigns ---------------------------------------------------------------------


def _campaign(view: CampaignView) -> dict[str, Any]:
    return {
        "id": view.id,
        "reward_id": view.reward_id,
        "reward_name": view.reward_name,
        "phase": view.status,
        "opened_at": _iso(view.opened_at),
        "nominations_close_at": _iso(view.nominations_close_at),
        "voting_close_at": _iso(view.voting_close_at),
        "closed_at": _iso(view.closed_at),
        "max_votes_per_user": view.max_votes_per_user,
        "max_nominations_per_user": view.max_nominations_per_user,
    }


async def _campaign_status(
    core: Core, view: CampaignView, stats: CampaignStats | None = None
) -> dict[str, Any]:
    """A campaign with its counts; tallies and winners only once it is closed."""
    stats = stats or await core.nominations.stats(view.id)
    body = _campaign(view)
    body["counts"] = {
        "candidates": stats.candidates,
        "nominations": stats.nominations,
        "voters": stats.voters,
    }
    if view.tallies is None:
        body["tallies"] = None
        body["winners"] = None
    else:
        names = await core.nominations.names([*view.tallies, *view.winners])
        ranked = sorted(view.tallies.items(), key=lambda item: (-item[1], item[0]))
        body["tallies"] = [{"member_id": m, "name": names.get(m), "votes": n} for m, n in ranked]
        body["winners"] = [{"member_id": m, "name": names.get(m)} for m in view.winners]
    if view.status == "cancelled":
        body["cancelled"] = view.outcome.get("cancelled")
    return body


@routes.get("/rewards/api/v1/nominations")
@documented(paged=True)
async def list_campaigns(request: web.Request) -> web.Response:
    """Campaigns still nominating or voting, oldest first."""
    found = await _core(request).nominations.open_campaigns()
    return web.json_response(page_after(request, found, lambda c: c.id, _campaign))


@routes.get(CAMPAIGN)
@documented(summary="A campaign with its counts, and tallies once closed.")
async def campaign_status(request: web.Request) -> web.Response:
    core = _core(request)
    view = await core.nominations.get(_id(request, "campaign_id"))
    return web.json_response(await _campaign_status(core, view))


@routes.post("/rewards/api/v1/nominations")
@needs("admin")
@documented(body=OpenCampaign, status=201, summary="Open a nomination campaign.")
async def open_campaign(request: web.Request) -> web.Response:
    body = await read_body(request, OpenCampaign)
    core = _core(request)

    async def work() -> tuple[int, dict[str, Any]]:
        by = await acting_member(request, body.as_, "as")
        view = await core.nominations.open(body.reward_id, by=by)
        return 201, await _campaign_status(core, view)

    return await idempotent(request, work)


@routes.post(CAMPAIGN + "/close")
@needs("admin")
@documented(body=CloseCampaign)
async def close_campaign(request: web.Request) -> web.Response:
    """Close a voting campaign now: count the votes and award the winner(s)."""
    campaign_id = _id(request, "campaign_id")
    body = await read_body(request, CloseCampaign)
    core = _core(request)

    async def work() -> tuple[int, dict[str, Any]]:
        view = await core.admin.close_campaign(campaign_id, await actor_of(request, body.as_))
        return 200, await _campaign_status(core, view)

    return await idempotent(request, work)


@routes.post(CAMPAIGN + "/cancel")
@needs("admin")
@documented(body=CancelCampaign, summary="Cancel a campaign.")
async def cancel_campaign(request: web.Request) -> web.Response:
    campaign_id = _id(request, "campaign_id")
    body = await read_body(request, CancelCampaign)
    core = _core(request)

    async def work() -> tuple[int, dict[str, Any]]:
        who = await actor_of(request, body.as_)
        view = await core.admin.cancel_campaign(campaign_id, who, body.reason)
        return 200, await _campaign_status(core, view)

    return await idempotent(request, work)


@routes.post(CAMPAIGN + "/voting")
@needs("admin")
@documented(body=CloseCampaign, summary="Close nominations now and start voting.")
async def start_voting(request: web.Request) -> web.Response:
    """Close a nominating campaign's nominations now and start voting, for the reward's full
    voting time from now (too few nominations cancel it, as on its date). 422 when it is not
    taking nominations. Recorded in the audit log."""
    campaign_id = _id(request, "campaign_id")
    body = await read_body(request, CloseCampaign)
    core = _core(request)

    async def work() -> tuple[int, dict[str, Any]]:
        view = await core.admin.start_voting(campaign_id, await actor_of(request, body.as_))
        return 200, await _campaign_status(core, view)

    return await idempotent(request, work)


# ---- workflows --------------------------------------------------------------------------------


def _progress(view: WorkflowProgressView) -> dict[str, Any]:
    return {
        "enrollment_id": view.enrollment_id,
        "reward_id": view.reward_id,
        "reward_name": view.reward_name,
        "member_id": view.member_id,
        "status": view.status,
        "cycle": view.cycle,
        "enrolled_at": _iso(view.enrolled_at),
        "completed_at": _iso(view.completed_at),
        "steps": [
            {"index": i, "name": s.name, "done": s.done, "done_at": _iso(s.done_at)}
            for i, s in enumerate(view.steps)
        ],
        "done": view.done_count,
        "next_step": view.next_step,
    }


@routes.get("/rewards/api/v1/members/{ref}/workflows")
@documented(paged=True)
async def member_workflows(request: web.Request) -> web.Response:
    """The member's latest enrolment in each workflow (`ref`: id or email), by reward id."""
    core = _core(request)
    member = await members.resolve(core.db, request.match_info["ref"])
    found = await core.workflows.progress(member.id)
    return web.json_response(page_after(request, found, lambda p: p.reward_id, _progress))


@routes.post(WORKFLOW + "/enroll")
@documented(body=Enroll, status=201, also=(200,))
async def enroll(request: web.Request) -> web.Response:
    """Enrol a member (as the system): 201 when new, 200 when they were already on it."""
    reward_id = _id(request, "reward_id")
    body = await read_body(request, Enroll)
    core = _core(request)

    async def work() -> tuple[int, dict[str, Any]]:
        member = await members.resolve(core.db, body.member)
        result = await core.workflows.enroll(reward_id, member.id)
        return (201 if result.new else 200), {**_progress(result.progress), "new": result.new}

    return await idempotent(request, work)


@routes.post(WORKFLOW + "/steps")
@needs("admin")
@documented(body=MarkStep)
async def mark_step(request: web.Request) -> web.Response:
    """Mark a step (name or 0-based index) of the member's active enrolment done, as the API.

    Admin only, as in the chat: a marked step may complete the workflow and pay its reward."""
    reward_id = _id(request, "reward_id")
    body = await read_body(request, MarkStep)
    core = _core(request)

    async def work() -> tuple[int, dict[str, Any]]:
        member = await members.resolve(core.db, body.member)
        view = await core.workflows.mark_step(reward_id, member.id, body.step)
        return 200, _progress(view)

    return await idempotent(request, work)


# ---- jobs -------------------------------------------------------------------------------------


def _last_run(run: JobRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"status": run.status, "fire_time": _iso(run.fire_time), "detail": run.detail or None}


def _job(state: JobState, now: datetime) -> dict[str, Any]:
    job = state.job
    upcoming = None if state.finished else state.next_run
    return {
        "id": job.id,
        "name": job.name,
        "reward_id": job.reward_id,
        "scheduled": True,
        "trigger": job.description,
        "timezone": job.timezone,
        "next_run": _iso(upcoming),
        "due": upcoming is not None and upcoming < now,
        "last_run": _last_run(state.last_run),
        "not_scheduled": None,
    }


def _unscheduled(job_id: str, reason: str) -> dict[str, Any]:
    return {
        "id": job_id,
        "name": None,
        "reward_id": None,
        "scheduled": False,
        "trigger": None,
        "timezone": None,
        "next_run": None,
        "due": False,
        "last_run": None,
        "not_scheduled": reason,
    }


@routes.get("/rewards/api/v1/jobs")
@needs("admin")
@documented(paged=True)
async def list_jobs(request: web.Request) -> web.Response:
    """Every job (`rewards jobs list`), by id: trigger, zone, next and last run; catalogue jobs
    that are not scheduled come with the reason (`scheduled` false)."""
    plan, states, now = await job_states(_core(request))
    items = [_job(state, now) for state in states]
    items += [_unscheduled(job_id, reason) for job_id, reason in plan.not_scheduled.items()]
    items.sort(key=lambda item: str(item["id"]))
    return web.json_response(page_after(request, items, lambda i: str(i["id"]), lambda i: i))


@routes.post("/rewards/api/v1/jobs/{job_id}/run")
@needs("admin")
@documented()
async def run_job(request: web.Request) -> web.Response:
    """Run a job now, like `rewards jobs run`: recorded in the run history under a manual key."""
    job_id = request.match_info["job_id"]
    core = _core(request)

    async def work() -> tuple[int, dict[str, Any]]:
        plan = await load_plan(core)
        job = plan.jobs.get(job_id)
        if job is None:
            raise NotFound(unknown_job(job_id, plan))
        outcome = await run_now(core, job, owner=process_owner("api:"))
        return 200, {"job_id": job_id, "status": outcome.status, "summary": outcome.summary}

    return await idempotent(request, work)

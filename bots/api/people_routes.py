"""Members (list, get, upsert, import), leaderboards, a member's balance and history, revoking an
award, attendance and metric data, and events (a login or any named event)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from aiohttp import web
from pydantic import ConfigDict, Field, RootModel

from bots.api import views
from bots.api.admin_actions_routes import actor_of
from bots.api.auth import needs
from bots.api.bodies import Body, path_id, read_body
from bots.api.idempotency import idempotent
from bots.api.openapi import documented, param
from bots.api.pagination import encode_cursor, int_cursor_of, limit_of, page
from bots.api.principals import check_member_upsert
from bots.api.rewards_routes import MemberRef
from bots.server import CORE
from rewards.errors import InvalidInput, UnknownMember
from rewards.rules.attendance import upsert_attendance
from rewards.services import ledger, members
from rewards.services.awards import MAX_MESSAGE, AwardSource
from rewards.services.events import LOGIN
from rewards.services.leaderboards import MAX_LIMIT as BOARD_MAX
from rewards.services.leaderboards import LeaderboardFilter, Metric, Period
from rewards.services.members import MAX_DISPLAY_NAME, MAX_EMAIL, MemberView
from rewards.services.members_import import (
    ImportReport,
    MemberImportError,
    RejectedRow,
    import_members,
    parse_rows,
)
from rewards.services.metrics import upsert_metrics
from rewards.services.profile import member_awards
from rewards.store.db import Database

routes = web.RouteTableDef()

MAX_ROWS = 1000  # rows of one import, attendance or data request (the body is at most 64 KiB)
MAX_GROUPS = 100
MAX_NAME = 100  # data set, column and event names
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_API_SOURCE = Path("the request")

Text = Annotated[str, Field(max_length=MAX_DISPLAY_NAME)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=_NAME.pattern)]
Day = Annotated[str, Field(min_length=10, max_length=10)]
PlatformId = Annotated[str, Field(max_length=100)]


class MemberFields(Body):
    """A member's fields as the HR import reads them: an absent field is left alone, `null`
    clears an optional one (and keeps display_name, active and the opt-outs)."""

    display_name: Text | None = None
    job_code: Annotated[str, Field(max_length=100)] | None = None
    department: Text | None = None
    groups: Annotated[list[Text], Field(max_length=MAX_GROUPS)] | None = None
    manager_email: Annotated[str, Field(max_length=MAX_EMAIL)] | None = None
    birthday: Annotated[str, Field(max_length=10)] | None = None  # MM-DD (or YYYY-MM-DD)
    hire_date: Day | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None
    locale: Annotated[str, Field(max_length=35)] | None = None
    active: bool | None = None
    leaderboard_opt_out: bool | None = None
    celebrations_opt_out: bool | None = None
    teams_aad_id: PlatformId | None = None
    slack_user_id: PlatformId | None = None
    telegram_username: PlatformId | None = None
    telegram_user_id: PlatformId | None = None


class MemberItem(MemberFields):
    email: Annotated[str, Field(min_length=1, max_length=MAX_EMAIL)]


class MemberList(RootModel[Annotated[list[MemberItem], Field(max_length=MAX_ROWS)]]):
    model_config = ConfigDict(strict=True)


class Revoke(Body):
    by: MemberRef | None = None
    reason: Annotated[str, Field(max_length=MAX_MESSAGE)] | None = None


class AttendanceRow(Body):
    member: MemberRef
    day: Day
    present: bool


class Attendance(Body):
    dataset: Name
    records: Annotated[list[AttendanceRow], Field(min_length=1, max_length=MAX_ROWS)]


Number = Annotated[float, Field(allow_inf_nan=False)]


class DataRow(Body):
    member: MemberRef
    day: Day
    values: Annotated[dict[Name, Number], Field(min_length=1, max_length=100)]


class Data(Body):
    rows: Annotated[list[DataRow], Field(min_length=1, max_length=MAX_ROWS)]


class Event(Body):
    event: Name
    member: MemberRef
    payload: Annotated[dict[str, Any], Field(max_length=100)] = Field(default_factory=dict)


# --- shapes -----------------------------------------------------------------------------------


def member_json(view: MemberView) -> dict[str, Any]:
    """A member; the birth year is never shown, only the birthday's month and day."""
    return {
        "id": view.id,
        "email": view.email,
        "display_name": view.display_name,
        "job_code": view.job_code,
        "department": view.department,
        "groups": list(view.groups),
        "manager_id": view.manager_id,
        "birthday": f"{view.birthday[0]:02d}-{view.birthday[1]:02d}" if view.birthday else None,
        "hire_date": view.hire_date.isoformat() if view.hire_date else None,
        "timezone": view.timezone,
        "locale": view.locale,
        "active": view.active,
        "leaderboard_opt_out": view.leaderboard_opt_out,
        "celebrations_opt_out": view.celebrations_opt_out,
        "accounts": [
            {"platform": a.platform, "user_id": a.user_id, "username": a.username}
            for a in view.accounts
        ],
    }


def _rejected(row: RejectedRow) -> dict[str, Any]:
    return {"item": row.line, "email": row.email, "reasons": list(row.reasons)}


def _report(report: ImportReport) -> dict[str, Any]:
    return {
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "rejected": [_rejected(row) for row in report.rejected],
    }


# --- members ----------------------------------------------------------------------------------


def _active_of(request: web.Request) -> bool | None:
    raw = request.query.get("active", "true").lower()
    choices: dict[str, bool | None] = {"true": True, "false": False, "all": None}
    if raw not in choices:
        raise InvalidInput("`active` is true (the default), false or all.")
    return choices[raw]


def _matches(view: MemberView, q: str) -> bool:
    return q in view.display_name.casefold() or q in view.email.casefold()


@routes.get("/rewards/api/v1/members")
@documented(
    paged=True,
    query={
        "q": param({"type": "string"}, "A piece of the name or email."),
        "department": param({"type": "string"}),
        "group": param({"type": "string"}),
        "active": param({"enum": ["true", "false", "all"], "default": "true"}),
    },
)
async def list_members(request: web.Request) -> web.Response:
    """Members in id order; `?department=`, `?group=` match exactly (ignoring case), `?q=` is a
    piece of the name or email, `?active=true|false|all`."""
    db = request.app[CORE].db
    limit = limit_of(request)
    after = int_cursor_of(request)
    q = request.query.get("q", "").strip().casefold()
    department = request.query.get("department", "").strip() or None
    group = request.query.get("group", "").strip() or None
    active = _active_of(request)
    found: list[MemberView] = []
    while len(found) <= limit:
        batch = await members.list_members(
            db,
            department=department,
            group=group,
            active=active,
            after_id=after,
            limit=members.MAX_LIST_LIMIT if q else limit + 1,
        )
        found += [view for view in batch if not q or _matches(view, q)]
        if not q or len(batch) < members.MAX_LIST_LIMIT:
            break
        after = batch[-1].id
    return web.json_response(page(found, limit, lambda m: m.id, member_json))


MEMBER_REF = "The member's id or email."


@routes.get("/rewards/api/v1/members/{ref}")
@documented(summary="One member by id or email.", path={"ref": MEMBER_REF})
async def get_member(request: web.Request) -> web.Response:
    found = await members.resolve(request.app[CORE].db, request.match_info["ref"])
    return web.json_response(member_json(found))


async def _import(db: Database, items: list[dict[str, Any]], clock: Any) -> ImportReport:
    parsed = parse_rows(_API_SOURCE, "json", [(n, item) for n, item in enumerate(items, 1)], [])
    try:
        report = await import_members(db, parsed, clock=clock)
    except MemberImportError:
        raise MemberImportError(
            "The database refused the members, so nothing was changed; if members were being"
            " changed at the same time, try again."
        ) from None
    report.rejected.sort(key=lambda r: r.line)
    return report


ADMIN_MEMBER_CHANGES = (
    "the change sets the groups of an existing member to others, makes the member an admin "
    "(their email or a group is in REWARDS_ADMINS), or gives them a platform id "
    "(teams_aad_id, slack_user_id, telegram_user_id, telegram_username) they do not already "
    "have; a write key gets 403 for those and nothing is changed"
)


# One path parameter name for every `/members/{...}` route: OpenAPI forbids two templated paths
# that differ only in the parameter's name. The URL is the same as ever (`/members/ana@x.org`).
@routes.put("/rewards/api/v1/members/{ref}")
@needs("write", admin_when=ADMIN_MEMBER_CHANGES)
@documented(
    body=MemberFields,
    also=(201,),
    path={"ref": "The member's email (`@` as is or as `%40`): a PUT names members by email."},
)
async def put_member(request: web.Request) -> web.Response:
    """Create or update one member by email: 201 when created, 200 otherwise.

    A write key may set the plain HR fields (name, department, job code, birthday...); what
    decides power or identity (groups, admin, platform ids) needs an admin key."""
    body = await read_body(request, MemberFields)
    core = request.app[CORE]
    item = {**body.model_dump(exclude_unset=True), "email": request.match_info["ref"]}
    await check_member_upsert(request, item)

    async def work() -> tuple[int, dict[str, Any]]:
        report = await _import(core.db, [item], core.clock)
        if report.rejected:
            raise InvalidInput(
                f"The member was not saved: {'; '.join(report.rejected[0].reasons)}."
            )
        view = await members.resolve(core.db, item["email"])
        return (201 if report.created else 200), member_json(view)

    return await idempotent(request, work)


@routes.post("/rewards/api/v1/members/import")
@needs("admin")
@documented(body=MemberList)
async def import_route(request: web.Request) -> web.Response:
    """Upsert a list of members in one transaction, as the HR import does; bad items are
    rejected with their reasons (item 1 is the first) and never stop the others. Admin only:
    the items may set groups and platform ids."""
    body = await read_body(request, MemberList)
    core = request.app[CORE]
    items = [item.model_dump(exclude_unset=True) for item in body.root]

    async def work() -> tuple[int, dict[str, Any]]:
        return 200, _report(await _import(core.db, items, core.clock))

    return await idempotent(request, work)


# --- leaderboards, balance, history -----------------------------------------------------------


@routes.get("/rewards/api/v1/leaderboards")
@documented(
    query={
        "metric": param({"enum": [m.value for m in Metric], "default": "points"}),
        "period": param({"enum": [p.value for p in Period], "default": "month"}),
        "limit": param({"type": "integer", "minimum": 1, "maximum": BOARD_MAX, "default": 10}),
        **{k: param({"type": "string"}) for k in ("department", "group", "category", "tag")},
    }
)
async def leaderboards(request: web.Request) -> web.Response:
    """The chat's leaderboards: the calendar `period` (week, month, quarter, year, all) in the
    organisation's zone, ranked by `metric`; the top `limit` (default 10, at most 100)."""
    query = request.query
    raw_limit = query.get("limit", "10")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= BOARD_MAX:
        raise InvalidInput(f"The limit must be a whole number from 1 to {BOARD_MAX}.")
    filters = LeaderboardFilter(
        **{k: query.get(k, "").strip() or None for k in ("department", "group", "category", "tag")}
    )
    board = await request.app[CORE].leaderboards.leaderboard(
        query.get("metric", "points"), query.get("period", "month"), filters, limit=int(raw_limit)
    )
    return web.json_response(
        {
            "metric": board.metric.value,
            "period": board.period.value,
            "since": board.since.isoformat() if board.since else None,
            "filters": {k: getattr(filters, k) for k in ("department", "group", "category", "tag")},
            "items": [
                {
                    "rank": r.rank,
                    "member_id": r.member_id,
                    "display_name": r.display_name,
                    "department": r.department,
                    "value": r.value,
                }
                for r in board.rows
            ],
            "next": None,
        }
    )


@routes.get("/rewards/api/v1/members/{ref}/balance")
@documented(summary="A member's balance, badges and kudos counts.")
async def balance(request: web.Request) -> web.Response:
    db = request.app[CORE].db
    member = await members.resolve(db, request.match_info["ref"])
    found = await ledger.summary(db, member.id)
    return web.json_response(
        {"member_id": found.member_id, "display_name": found.display_name,
         "balance": found.balance, "badges": found.badges,
         "kudos_received": found.kudos_received, "kudos_given": found.kudos_given}
    )  # fmt: skip


@routes.get("/rewards/api/v1/members/{ref}/history")
@documented(paged=True)
async def history(request: web.Request) -> web.Response:
    """The member's ledger, newest first; at most 100 lines a page. `via_api_key` names the API
    key that made a line (null: the chat or the system), `revoked_by_key` the key that revoked
    the line's award."""
    db = request.app[CORE].db
    member = await members.resolve(db, request.match_info["ref"])
    limit = limit_of(request)
    if limit > ledger.MAX_PAGE:
        raise InvalidInput(f"The limit of a history page must be from 1 to {ledger.MAX_PAGE}.")
    before = int_cursor_of(request)
    lines = await ledger.history(
        db, member.id, limit=min(limit + 1, ledger.MAX_PAGE), before_id=before
    )
    more = len(lines) > limit
    shown = lines[:limit]
    if not more and shown and len(shown) == ledger.MAX_PAGE:
        more = bool(await ledger.history(db, member.id, limit=1, before_id=shown[-1].id))
    return web.json_response(
        {
            "items": [
                {
                    "id": line.id,
                    "kind": line.kind,
                    "points": line.points,
                    "created_at": line.created_at.isoformat(),
                    "description": line.description,
                    "award_id": line.award_id,
                    "kudos_id": line.kudos_id,
                    "via_api_key": line.via_api_key,
                    "revoked_by_key": line.revoked_by_key,
                }
                for line in shown
            ],
            "next": encode_cursor(shown[-1].id) if more and shown else None,
        }
    )


# --- revoking an award ------------------------------------------------------------------------


@routes.post(r"/rewards/api/v1/awards/{award_id:\d{1,18}}/revoke")
@needs("admin")
@documented(body=Revoke)
async def revoke(request: web.Request) -> web.Response:
    """Revoke an award, as the key itself, or as `by` (its giver or an admin, as in the chat).

    The award records the key that revoked it (`revoked_by_key`)."""
    body = await read_body(request, Revoke)
    core = request.app[CORE]
    award_id = path_id(request, "award_id")

    async def work() -> tuple[int, dict[str, Any]]:
        # Through `core.admin`, which records it in the audit log; `by` may also be the
        # award's giver, who may revoke their own award as in the chat.
        who = await actor_of(request, body.by, "by")
        view = await core.admin.revoke_award(award_id, body.reason, who, allow_giver=True)
        return 200, views.award(view)

    return await idempotent(request, work)


# --- attendance and data sets -----------------------------------------------------------------


def _day(text: str) -> date | None:
    if not _DAY.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


async def _members_of(db: Database, refs: list[int | str]) -> dict[int | str, int | str]:
    """Each distinct ref's member id, or the sentence saying why it names nobody."""
    known: dict[int | str, int | str] = {}
    for ref in refs:
        if ref not in known:
            try:
                known[ref] = (await members.resolve(db, ref)).id
            except UnknownMember as error:
                known[ref] = str(error)
    return known


def _row_reasons(known: dict[int | str, int | str], ref: int | str, day: str) -> list[str]:
    reasons = []
    if isinstance(known[ref], str):
        reasons.append(str(known[ref]))
    if _day(day) is None:
        reasons.append(f"day {day!r} is not a date in the form YYYY-MM-DD")
    return reasons


@routes.post("/rewards/api/v1/attendance")
@documented(body=Attendance)
async def attendance(request: web.Request) -> web.Response:
    """Insert or replace attendance records of a data set; rows naming nobody or a bad day are
    listed in `rejected` (item 1 is the first record) and the others are written."""
    body = await read_body(request, Attendance)
    core = request.app[CORE]

    async def work() -> tuple[int, dict[str, Any]]:
        known = await _members_of(core.db, [r.member for r in body.records])
        good: list[tuple[int, date, bool]] = []
        rejected = []
        for number, row in enumerate(body.records, start=1):
            reasons = _row_reasons(known, row.member, row.day)
            if reasons:
                rejected.append({"item": number, "member": row.member, "reasons": reasons})
                continue
            good.append((int(known[row.member]), date.fromisoformat(row.day), row.present))
        written = await upsert_attendance(core.db, body.dataset, good)
        return 200, {"dataset": body.dataset, "written": written, "rejected": rejected}

    return await idempotent(request, work)


@routes.post("/rewards/api/v1/data/{dataset}")
@documented(body=Data)
async def data(request: web.Request) -> web.Response:
    """Insert or replace the named values of a data set per member and day (for BestSeller and
    achievement functions); rows naming nobody or a bad day are listed in `rejected`."""
    dataset = request.match_info["dataset"]
    if not _NAME.match(dataset):
        raise InvalidInput("A data set name is 1 to 100 letters, digits, `_`, `.`, `:` or `-`.")
    body = await read_body(request, Data)
    core = request.app[CORE]

    async def work() -> tuple[int, dict[str, Any]]:
        known = await _members_of(core.db, [r.member for r in body.rows])
        good: list[tuple[int, date, str, float]] = []
        rejected = []
        for number, row in enumerate(body.rows, start=1):
            reasons = _row_reasons(known, row.member, row.day)
            if reasons:
                rejected.append({"item": number, "member": row.member, "reasons": reasons})
                continue
            day = date.fromisoformat(row.day)
            good += [(int(known[row.member]), day, k, float(v)) for k, v in row.values.items()]
        written = await upsert_metrics(core.db, dataset, good)
        return 200, {"dataset": dataset, "written": written, "rejected": rejected}

    return await idempotent(request, work)


# --- events -----------------------------------------------------------------------------------


@routes.post("/rewards/api/v1/events")
@documented(body=Event)
async def event(request: web.Request) -> web.Response:
    """Report an event for a member and answer the Automated Badges it awarded. `login` records
    the member's activity and fires only on their first activity of the (member's) day."""
    body = await read_body(request, Event)
    core = request.app[CORE]

    async def work() -> tuple[int, dict[str, Any]]:
        member = await members.resolve(core.db, body.member)
        if body.event != LOGIN:
            made = await core.events.emit(body.event, member.id, body.payload)
            return 200, {"event": body.event, "member_id": member.id, "fired": True,
                         "awards": [views.award(a) for a in made]}  # fmt: skip
        # `activity` answers only whether this was the day's first; its awards are the member's
        # event awards made since.
        latest = await member_awards(core.db, member.id, limit=1)
        first = await core.events.activity(member.id, member.timezone)
        made = []
        if first:
            since = latest[0].id if latest else 0
            newer = await member_awards(core.db, member.id, limit=100)
            made = [a for a in newer if a.id > since and a.source == AwardSource.EVENT]
        return 200, {"event": LOGIN, "member_id": member.id, "fired": first,
                     "awards": [views.award(a) for a in reversed(made)]}  # fmt: skip

    return await idempotent(request, work)

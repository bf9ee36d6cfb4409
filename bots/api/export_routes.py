"""Export downloads and a member's data for admins: the same files as `rewards export` and
`rewards members data`, streamed.

`GET /rewards/api/v1/exports/{kind}?from=&to=&format=csv|jsonl` answers a chunked download
(`Content-Disposition: attachment`) produced while it is sent, in constant memory: a million
ledger rows never sit in the server's memory. The kind, the dates and the format are checked
before the first byte, so a bad request is a problem+json like any other; after that a failure
can only cut the download short (logged).
"""

from __future__ import annotations

from aiohttp import web

from bots.api.auth import needs
from bots.api.openapi import documented, param
from bots.files.download import stream_file
from bots.server import CORE
from rewards.core import Core
from rewards.exports.files import data_file, export_file
from rewards.exports.formats import FORMATS
from rewards.exports.kinds import KINDS
from rewards.services import members

routes = web.RouteTableDef()

DAY = {"type": "string", "format": "date"}
QUERY = {
    "from": param(DAY, "First day (YYYY-MM-DD, in TIMEZONE); default: the beginning."),
    "to": param(DAY, "Last day, included; default: no limit."),
    "format": param({"type": "string", "enum": list(FORMATS), "default": "csv"}, "File format."),
}


def _core(request: web.Request) -> Core:
    return request.app[CORE]


@routes.get("/rewards/api/v1/exports/{kind}")
@needs("admin")
@documented(
    query=QUERY,
    media="text/csv",
    path={"kind": f"One of: {', '.join(KINDS)}."},
    summary="An export (kudos, awards, ledger, members, nominations, redemptions, participation).",
)
async def export(request: web.Request) -> web.StreamResponse:
    core = _core(request)
    recipe = {
        "what": "export",
        "kind": request.match_info["kind"],
        "from": request.query.get("from"),
        "to": request.query.get("to"),
        "format": request.query.get("format", "csv"),
    }
    return await stream_file(request, export_file(core.db, core.settings, recipe))


@routes.get("/rewards/api/v1/members/{ref}/data")
@needs("admin")
@documented(summary="Everything stored about a member, as one JSON document (their /me data).")
async def member_data(request: web.Request) -> web.StreamResponse:
    core = _core(request)
    member = await members.resolve(core.db, request.match_info["ref"])
    return await stream_file(request, data_file(core.db, member.id, core.clock.now()))

"""The integrity report over the REST API (admin scope): the same report as `/integrity` and
`rewards integrity`, as JSON. It includes the votes of open campaigns, hence the admin scope."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from bots.api.auth import needs
from bots.api.openapi import documented, param
from bots.server import CORE
from rewards.core import Core
from rewards.errors import InvalidInput
from rewards.integrity import IntegrityReport, build_report, window_of

routes = web.RouteTableDef()

DAY = param({"type": "string", "format": "date"}, "A day (UTC), YYYY-MM-DD; both inclusive.")


def _day(request: web.Request, name: str) -> date | None:
    text = request.query.get(name)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"`{name}` must be a day such as 2026-11-30.") from None


def report_json(report: IntegrityReport) -> dict[str, Any]:
    return {
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "clean": report.clean,
        "rings": [
            {
                "gifts": ring.kudos,
                "members": [
                    {
                        "member_id": m.member_id,
                        "name": m.name,
                        "received_points": m.received_points,
                        "from_ring_points": m.from_ring_points,
                        "from_ring_gifts": m.from_ring_kudos,
                        "received_share": round(m.received_share, 4),
                        "given_share": round(m.given_share, 4),
                    }
                    for m in ring.members
                ],
            }
            for ring in report.rings
        ],
        "bursts": [
            {
                "member_id": b.member_id,
                "name": b.name,
                "day": b.day.isoformat(),
                "kudos": b.count,
                "usual": b.usual,
            }
            for b in report.bursts
        ],
        "campaigns": [
            {
                "campaign_id": c.campaign_id,
                "reward": c.reward_name,
                "status": c.status,
                "hours": [
                    {
                        "start": h.start.isoformat(),
                        "votes": h.votes,
                        "voters": h.voters,
                        "burst": h.burst,
                        "usual": h.usual,
                        "top_nominee": h.top_nominee,
                        "top_votes": h.top_votes,
                    }
                    for h in c.buckets
                ],
            }
            for c in report.campaigns
        ],
    }


@routes.get("/rewards/api/v1/integrity")
@needs("admin")
@documented(query={"from": DAY, "to": DAY})
async def integrity(request: web.Request) -> web.Response:
    """Reciprocity rings and giving bursts of the window (the 90 days up to now by default) and
    each open campaign's votes per hour with bursts flagged."""
    core: Core = request.app[CORE]
    since, until = window_of(_day(request, "from"), _day(request, "to"), core.clock.now())
    return web.json_response(report_json(await build_report(core.db, since, until)))

"""The OpenAPI 3.1 description at /rewards/api/v1/openapi.json and the docs page."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bots.api import admin_routes, kudos_routes, people_routes, rewards_routes
from bots.api.openapi import PROBLEM_STATUSES, _path_params
from bots.api.problems import is_api
from rewards.store.db import Database
from tests.support.api import api_client

SPEC = "/rewards/api/v1/openapi.json"
DOCS = "/rewards/api/v1/docs"
BODY_MODELS = [
    rewards_routes.BadgeAssign,
    kudos_routes.GiveKudos,
    people_routes.MemberFields,
    people_routes.MemberList,
    people_routes.Revoke,
    people_routes.Attendance,
    people_routes.Data,
    people_routes.Event,
    admin_routes.RewardJson,
    admin_routes.OpenCampaign,
    admin_routes.CloseCampaign,
    admin_routes.CancelCampaign,
    admin_routes.Enroll,
    admin_routes.MarkStep,
]


def _api_routes(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        path, _ = _path_params(route.resource)  # type: ignore[arg-type]
        if is_api(path):
            found.add((route.method.lower(), path))
    return found


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


async def test_the_description_is_served_without_a_key(database: Database, clock) -> None:
    async with api_client(database, clock) as api:
        response = await api.client.get(SPEC)
        assert response.status == 200
        assert response.content_type == "application/json"
        spec = await response.json()
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["title"] and spec["info"]["version"]
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}


async def test_every_api_route_is_described(database: Database, clock) -> None:
    async with api_client(database, clock) as api:
        spec = await (await api.client.get(SPEC)).json()
        routes = _api_routes(api.client.app)  # type: ignore[arg-type]
    described = {(method, path) for path, item in spec["paths"].items() for method in item}
    assert routes == described
    assert len(routes) > 30
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op["summary"], (method, path)
            assert op["operationId"]
            for name in [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]:
                assert any(p["in"] == "path" and p["name"] == name for p in op["parameters"])
            success = [code for code in op["responses"] if code.startswith("2")]
            assert success, (method, path)
            if path not in (SPEC, DOCS):
                assert {str(s) for s in PROBLEM_STATUSES} <= set(op["responses"])
    operation_ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))


async def test_scopes_come_from_the_routes(database: Database, clock) -> None:
    async with api_client(database, clock) as api:
        spec = await (await api.client.get(SPEC)).json()
    paths = spec["paths"]
    assert paths["/rewards/api/v1/rewards"]["get"]["security"] == [{"bearer": ["read"]}]
    assert paths["/rewards/api/v1/rewards"]["post"]["security"] == [{"bearer": ["admin"]}]
    assert paths["/kudos/api/v1/user_kudos"]["post"]["security"] == [{"bearer": ["write"]}]
    assert paths["/rewards/api/v1/jobs"]["get"]["security"] == [{"bearer": ["admin"]}]
    assert paths[SPEC]["get"]["security"] == []
    item = paths["/rewards/api/v1/rewards/{reward_id}"]
    assert set(item) == {"get", "put", "delete"}
    assert item["get"]["parameters"][0]["schema"]["type"] == "integer"
    assert "204" in item["delete"]["responses"]
    assert paths["/kudos/api/v1/user_kudos"]["post"]["summary"] == "Give kudos as `giver`."
    # what the chat reserves for admins needs an admin key (issue 13)
    for path in (
        "/rewards/api/v1/awards/{award_id}/revoke",
        "/rewards/api/v1/workflows/{reward_id}/steps",
    ):
        assert paths[path]["post"]["x-scope"] == "admin", path
    # a write route that checks its body for admin changes says when
    put_member = paths["/rewards/api/v1/members/{email}"]["put"]
    assert put_member["security"] == [{"bearer": ["write"]}]
    assert "groups" in put_member["x-admin-scope-when"]
    assert "Needs the admin scope when" in put_member["description"]
    assert "slack_user_id" in put_member["description"]
    assert "x-admin-scope-when" not in paths["/rewards/api/v1/events"]["post"]


async def test_every_ref_resolves_and_every_body_model_appears(database: Database, clock) -> None:
    async with api_client(database, clock) as api:
        spec = await (await api.client.get(SPEC)).json()
    refs = _refs(spec)
    assert refs
    for ref in refs:
        assert _resolve(spec, ref) is not None, ref
    assert "$defs" not in str(spec)
    schemas = spec["components"]["schemas"]
    bodies = {
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for item in spec["paths"].values()
        for op in item.values()
        if "requestBody" in op
    }
    for model in BODY_MODELS:
        assert model.__name__ in schemas
        assert f"#/components/schemas/{model.__name__}" in bodies
    kudos = schemas["GiveKudos"]
    assert kudos["additionalProperties"] is False
    assert set(kudos["required"]) == {"giver", "receivers", "message"}
    assert "as" in schemas["OpenCampaign"]["properties"]
    list_members = spec["paths"]["/rewards/api/v1/members"]["get"]
    assert {p["name"] for p in list_members["parameters"]} >= {"limit", "cursor", "q", "active"}
    board = spec["paths"]["/rewards/api/v1/leaderboards"]["get"]
    period = next(p for p in board["parameters"] if p["name"] == "period")
    assert period["schema"]["enum"] == ["week", "month", "quarter", "year", "all"]


async def test_the_docs_page_lists_every_path(database: Database, clock) -> None:
    async with api_client(database, clock) as api:
        spec = await (await api.client.get(SPEC)).json()
        response = await api.client.get(DOCS)
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    for path, item in spec["paths"].items():
        assert f"<code>{path}</code>" in page
        for method in item:
            assert f"<code>{method.upper()}</code>" in page
    assert "write; admin for some bodies" in page


async def test_other_api_routes_still_need_a_key(database: Database, clock) -> None:
    async with api_client(database, clock) as api:
        assert (await api.client.get("/rewards/api/v1/rewards")).status == 401
        assert (await api.client.get("/rewards/api/v1/openapi.jsonx")).status == 401

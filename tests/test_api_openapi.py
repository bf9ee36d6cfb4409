"""The OpenAPI 3.1 description at /rewards/api/v1/openapi.json and the docs page."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bots.api import admin_routes, kudos_routes, people_routes, rewards_routes
from bots.api.openapi import PROBLEM_STATUSES, _path_params
from bots.api.problems import is_api
from bots.server import create_app
from rewards.settings import Settings
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
    put_member = paths["/rewards/api/v1/members/{ref}"]["put"]
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


def _template(path: str) -> str:
    """The path with every parameter name blanked: `/members/{}`."""
    return "/".join("{}" if seg.startswith("{") else seg for seg in path.split("/"))


async def test_no_two_paths_differ_only_in_a_parameter_name(database: Database, clock) -> None:
    async with api_client(database, clock) as api:
        spec = await (await api.client.get(SPEC)).json()
    templates = [_template(path) for path in spec["paths"]]
    assert len(templates) == len(set(templates))
    member = spec["paths"]["/rewards/api/v1/members/{ref}"]
    assert set(member) == {"get", "put"}
    (get_ref,) = [p for p in member["get"]["parameters"] if p["in"] == "path"]
    (put_ref,) = [p for p in member["put"]["parameters"] if p["in"] == "path"]
    assert "id or email" in get_ref["description"]
    assert "email" in put_ref["description"] and "id" not in put_ref["description"]


async def test_members_are_still_reached_by_id_and_by_email(database: Database, clock) -> None:
    """The one parameter name changed nothing in the URLs clients already use: GET by id or
    email, PUT by email, the `@` as is or percent-encoded."""
    async with api_client(database, clock) as api:
        members = "/rewards/api/v1/members"
        body = {"display_name": "Li Wei", "department": "Sales"}
        created = await api.client.put(
            f"{members}/li@example.com", json=body, headers=api.auth("write")
        )
        assert created.status == 201
        li = (await created.json())["id"]
        updated = await api.client.put(
            f"{members}/li%40example.com", json={"department": "Ops"}, headers=api.auth("write")
        )
        assert updated.status == 200 and (await updated.json())["id"] == li
        for ref in (str(li), "li@example.com", "li%40example.com"):
            found = await api.client.get(f"{members}/{ref}", headers=api.auth("read"))
            assert found.status == 200, ref
            member = await found.json()
            assert (member["id"], member["department"]) == (li, "Ops")
        by_id = await api.client.put(f"{members}/{li}", json=body, headers=api.auth("write"))
        assert by_id.status == 422  # a PUT names a member by email, as it always did
        assert by_id.content_type == "application/problem+json"


async def test_servers_name_where_the_client_reached_the_server(database: Database, clock) -> None:
    async with api_client(database, clock) as api:
        direct = await (await api.client.get(SPEC)).json()
        host = f"{api.client.server.host}:{api.client.server.port}"
        assert direct["servers"] == [{"url": f"http://{host}", "description": "This server."}]
        assert list(direct)[:3] == ["openapi", "info", "servers"]
        proxied = await api.client.get(
            SPEC,
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "rewards.example.org"},
        )
        assert (await proxied.json())["servers"][0]["url"] == "https://rewards.example.org"
        forged = await api.client.get(
            SPEC, headers={"X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "a b/<c>"}
        )
        assert (await forged.json())["servers"][0]["url"] == f"http://{host}"


async def test_public_url_wins_for_servers(database: Database) -> None:
    settings = Settings(
        database_url=database.url,
        catalog_files=(),
        reward_scheduler=False,
        public_url="https://rewards.example.org/prefix",
    )
    async with TestClient(TestServer(create_app(settings, platforms=False))) as client:
        spec = await (await client.get(SPEC, headers={"X-Forwarded-Host": "other.org"})).json()
    assert spec["servers"][0]["url"] == "https://rewards.example.org/prefix"

"""The OpenAPI 3.1 description of the API, served at `/rewards/api/v1/openapi.json`, and a docs
page at `/rewards/api/v1/docs` (both without a key).

It is generated from the app's route table and the same pydantic body models the routes read:
each handler declares its body model, query parameters and success status with `@documented`;
its scope comes from `@needs` (or its method), and a route whose body can ask for the admin scope
(`@needs(..., admin_when=...)`) says when in its description and in `x-admin-scope-when`; its
summary is the first line of its docstring.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from bots.api.auth import admin_when_of, scope_of
from bots.api.pagination import MAX_LIMIT
from bots.api.problems import PROBLEM_TYPE, is_api

OPENAPI_PATH = "/rewards/api/v1/openapi.json"
DOCS_PATH = "/rewards/api/v1/docs"
PROBLEM_STATUSES = (400, 401, 403, 404, 409, 413, 422)
_REF = "#/components/schemas/{model}"
_GROUP = re.compile(r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)")
_DIGITS = re.compile(r"^\\d\{1,(\d+)\}$")

F = TypeVar("F", bound=Callable[..., Any])

Schema = dict[str, Any]


def param(schema: Schema, description: str = "", required: bool = False) -> Schema:
    """A query parameter: its JSON schema, what it means, and whether it must be given."""
    return {"schema": schema, "description": description, "required": required}


LIMIT = param(
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50},
    f"Page size (at most {MAX_LIMIT}).",
)
CURSOR = param({"type": "string"}, "The `next` of the previous page.")
PAGED: dict[str, Schema] = {"limit": LIMIT, "cursor": CURSOR}


@dataclass(frozen=True)
class Doc:
    body: type[BaseModel] | None = None
    query: Mapping[str, Schema] = field(default_factory=dict)
    status: int = 200
    paged: bool = False
    summary: str | None = None
    also: tuple[int, ...] = ()
    media: str = "application/json"
    path: Mapping[str, str] = field(default_factory=dict)


def documented(
    *,
    body: type[BaseModel] | None = None,
    query: Mapping[str, Schema] | None = None,
    status: int = 200,
    paged: bool = False,
    summary: str | None = None,
    also: tuple[int, ...] = (),
    media: str = "application/json",
    path: Mapping[str, str] | None = None,
) -> Callable[[F], F]:
    """Declare what the OpenAPI description says of a route: the body model it reads, its query
    parameters (`paged` adds limit and cursor and answers a page), its success status (and
    `also` the other successes it may answer), and what its path parameters mean (`path`: one
    parameter name may mean an id or email on a GET and only an email on a PUT)."""

    def mark(handler: F) -> F:
        query_params = {**(PAGED if paged else {}), **(query or {})}
        handler.api_doc = Doc(  # type: ignore[attr-defined]
            body, query_params, status, paged, summary, also, media, dict(path or {})
        )
        return handler

    return mark


def public(handler: F) -> F:
    """A route under the API prefixes that needs no key (the description and the docs)."""
    handler.api_public = True  # type: ignore[attr-defined]
    return handler


# ---- building the document -------------------------------------------------------------------


def _problem_schema() -> Schema:
    return {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object"}},
        },
    }


def _page_schema() -> Schema:
    return {
        "type": "object",
        "required": ["items", "next"],
        "properties": {
            "items": {"type": "array", "items": {"type": "object"}},
            "next": {"type": ["string", "null"]},
        },
    }


def _add_model(schemas: dict[str, Schema], model: type[BaseModel]) -> Schema:
    """Put `model` (and its $defs) under components/schemas; answer a $ref to it."""
    schema = model.model_json_schema(by_alias=True, ref_template=_REF)
    defs = schema.pop("$defs", {})
    for name, sub in {**defs, model.__name__: schema}.items():
        if name in schemas and schemas[name] != sub:
            raise ValueError(f"Two different body schemas are named {name}.")
        schemas[name] = sub
    return {"$ref": _REF.format(model=model.__name__)}


def _path_params(resource: web.AbstractResource) -> tuple[str, list[Schema]]:
    """The OpenAPI path (`{name}` placeholders) and its path parameters."""
    info = resource.get_info()
    if "path" in info:
        return str(info["path"]), []
    formatter = str(info["formatter"])
    params = []
    for name, regex in _GROUP.findall(info["pattern"].pattern):
        digits = _DIGITS.match(regex)
        schema: Schema = (
            {"type": "integer", "minimum": 0, "maximum": 10 ** int(digits.group(1)) - 1}
            if digits
            else {"type": "string", "minLength": 1, "pattern": "^[^/{}]+$"}
        )
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return formatter, params


def _summary(handler: Any, doc: Doc) -> tuple[str, str | None]:
    text = (handler.__doc__ or "").strip()
    if doc.summary:
        return doc.summary, text or None
    if text:
        return text.splitlines()[0].strip(), text
    return str(handler.__name__).replace("_", " ").capitalize(), None


def _operation(
    method: str, path: str, handler: Any, path_params: list[Schema], schemas: dict[str, Schema]
) -> Schema:
    doc: Doc = getattr(handler, "api_doc", None) or Doc()
    summary, description = _summary(handler, doc)
    admin_when = admin_when_of(handler)
    if admin_when:
        note = f"Needs the admin scope when {admin_when}."
        description = f"{description}\n\n{note}" if description else note
    slug = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
    op: Schema = {"operationId": f"{method.lower()}_{slug}", "summary": summary}
    if description:
        op["description"] = description
    params = [
        {**p, "description": doc.path[p["name"]]} if p["name"] in doc.path else p
        for p in path_params
    ]
    params += [
        {"name": key, "in": "query", "required": spec["required"], "schema": spec["schema"],
         **({"description": spec["description"]} if spec["description"] else {})}
        for key, spec in doc.query.items()
    ]  # fmt: skip
    if method not in ("GET", "DELETE", "HEAD"):
        params.append(
            {"name": "Idempotency-Key", "in": "header", "required": False,
             "schema": {"type": "string", "maxLength": 200},
             "description": "Retrying with the same key replays the first response."}
        )  # fmt: skip
    if params:
        op["parameters"] = params
    if doc.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _add_model(schemas, doc.body)}},
        }
    if getattr(handler, "api_public", False):
        op["security"] = []
    else:
        scope = scope_of(handler, method)
        op["security"] = [{"bearer": [scope]}]
        op["x-scope"] = scope
        if admin_when:
            op["x-admin-scope-when"] = admin_when
    responses: Schema = {}
    if doc.status == 204:
        responses["204"] = {"description": "Done; no content."}
    else:
        success: Schema = {"type": "object"}
        if doc.paged:
            success = {"$ref": "#/components/schemas/Page"}
        elif doc.media != "application/json":
            success = {"type": "string"}
        for status in (doc.status, *doc.also):
            responses[str(status)] = {
                "description": "Success.",
                "content": {doc.media: {"schema": success}},
            }
    for status in PROBLEM_STATUSES:
        responses[str(status)] = {"$ref": f"#/components/responses/Problem{status}"}
    if not getattr(handler, "api_public", False):  # keyed requests are rate limited per key
        responses["429"] = {"$ref": "#/components/responses/TooManyRequests"}
    op["responses"] = responses
    return op


def _too_many_requests() -> Schema:
    """The 429 of a key over `API_RATE_LIMIT` (`bots.api.ratelimit`)."""
    return {
        "description": "Too many requests with this key; wait `Retry-After` seconds.",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before the next request.",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
        "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def build(app: web.Application) -> Schema:
    """The OpenAPI 3.1 document of every route of `app` under the API prefixes."""
    schemas: dict[str, Schema] = {"Problem": _problem_schema(), "Page": _page_schema()}
    paths: dict[str, Schema] = {}
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        path, path_params = _path_params(route.resource)
        if not is_api(path):
            continue
        item = paths.setdefault(path, {})
        item[route.method.lower()] = _operation(
            route.method, path, route.handler, path_params, schemas
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "nav-rewards API",
            "version": "1.0.0",
            "description": "Rewards, kudos, members, leaderboards, nominations, workflows and "
            "jobs. Send `Authorization: Bearer KEY` (create one with `rewards apikey create`). "
            "Errors are application/problem+json.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                f"Problem{status}": {
                    "description": f"A problem ({status}).",
                    "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
                for status in PROBLEM_STATUSES
            }
            | {"TooManyRequests": _too_many_requests()},
        },
    }


_DOC_KEY = web.AppKey("openapi_document", dict)


def setup(app: web.Application) -> None:
    app[_DOC_KEY] = {}
    app.router.add_routes(routes)


def document(app: web.Application) -> Schema:
    """The app's document, built once (the route table is frozen once the app runs)."""
    held: Schema = app[_DOC_KEY]
    if not held:
        held.update(build(app))
    return held


def docs_html(spec: Schema) -> str:
    """A small self-contained page listing every operation of `spec`."""
    esc = html.escape
    rows = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            scope = op.get("x-scope", "none")
            if "x-admin-scope-when" in op:
                scope += "; admin for some bodies (see the description)"
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            model = str(body.get("schema", {}).get("$ref", "")).rpartition("/")[2]
            query = ", ".join(p["name"] for p in op.get("parameters", []) if p["in"] == "query")
            rows.append(
                f"<tr><td><code>{esc(method.upper())}</code></td><td><code>{esc(path)}</code></td>"
                f"<td>{esc(op['summary'])}</td><td>{esc(scope)}</td><td>{esc(model)}</td>"
                f"<td>{esc(query)}</td></tr>"
            )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{esc(spec['info']['title'])}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
        "</style></head><body>"
        f"<h1>{esc(spec['info']['title'])} {esc(spec['info']['version'])}</h1>"
        f"<p>{esc(spec['info']['description'])}</p>"
        f'<p>The machine-readable description: <a href="{OPENAPI_PATH}">{OPENAPI_PATH}</a>.</p>'
        "<table><tr><th>Method</th><th>Path</th><th>Summary</th><th>Scope</th><th>Body</th>"
        "<th>Query</th></tr>" + "".join(rows) + "</table></body></html>"
    )


routes = web.RouteTableDef()


_FORWARDED_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


def public_base_url(request: web.Request) -> str:
    """Where clients reach this server: `PUBLIC_URL` when set, else the scheme and host the
    request came to, as a reverse proxy forwards them (`X-Forwarded-Proto`, `X-Forwarded-Host`:
    the first of each, used only when well-formed). The answer names only this request's own
    document, so a forged header misleads nobody but its sender."""
    from bots.server import CORE  # here: bots.server mounts this module

    configured = request.app[CORE].settings.public_url if CORE in request.app else ""
    if configured:
        return configured
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
    if proto not in ("http", "https"):
        proto = request.scheme
    if not _FORWARDED_HOST.match(host):
        host = request.host
    if not _FORWARDED_HOST.match(host):  # no usable Host header: a relative server
        return "/"
    return f"{proto}://{host}"


@routes.get(OPENAPI_PATH)
@public
async def openapi_json(request: web.Request) -> web.Response:
    """This OpenAPI 3.1 description of the API."""
    servers = [{"url": public_base_url(request), "description": "This server."}]
    spec = document(request.app)
    head = {"openapi": spec["openapi"], "info": spec["info"], "servers": servers}
    return web.json_response(head | spec)


@routes.get(DOCS_PATH)
@public
@documented(media="text/html")
async def docs_page(request: web.Request) -> web.Response:
    """A page listing the API's routes."""
    return web.Response(text=docs_html(document(request.app)), content_type="text/html")

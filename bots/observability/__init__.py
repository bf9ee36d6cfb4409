"""What operators see of a running server: `/metrics`, `/livez`, `/readyz`, and the middleware that
names and counts every request.

- `/metrics`: Prometheus text format, from the application's own registry
  (`bots.observability.metrics`). The backlog gauges are read from the database at each scrape
  (one statement, two index counts, at most `SCRAPE_TIMEOUT` seconds; left out when it fails).
- `/livez`: 200 while the process answers; it touches nothing else (a restart is the remedy for
  a process that does not answer, not for a database that is down).
- `/readyz`: 200 when the database answers within `READY_TIMEOUT` seconds, its schema is at the
  newest migration, and every mounted chat platform has started; otherwise 503 and a JSON body
  naming what is not ready. A load balancer sends traffic only to ready processes.
- The middleware binds a request id (the caller's `X-Request-Id` when it is a short token, a new
  one otherwise, echoed in the response) for the log lines of the request, and counts the request
  by route pattern (`/api/v1/members/{member_id}`, never the raw URL: one series per route, not
  per member), method and status.

`/healthz` (in `bots.server`) stays as it was, for the people and scripts that read it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from bots.lifecycle import Lifecycle
from bots.observability.metrics import Metrics
from bots.platforms import OK
from bots.platforms import STATUS as PLATFORM_STATUS
from rewards.core import Core
from rewards.observability.context import bound_request, new_id
from rewards.observability.probes import backlog, schema_revision
from rewards.store.migrate import revisions

log = logging.getLogger("rewards.observability")

READY_TIMEOUT = 2.0  # seconds the readiness probe waits for the database
SCRAPE_TIMEOUT = 2.0  # seconds a scrape waits for the backlog counts
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a request no route matched (404, 405)
REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Operations:
    metrics: Metrics
    core: Callable[[web.Application], Core | None]
    known: set[str]  # every migration this code knows, from the revision files
    head: str | None  # the newest of them
    database_down: bool = False  # the last readiness probe found the database down


OPERATIONS = web.AppKey("operations", Operations)


def setup(
    app: web.Application, runtime: Lifecycle, core: Callable[[web.Application], Core | None]
) -> Metrics:
    """Mount the endpoints and the middleware on `app`, and attach the metrics to the core once
    the runtime has opened it (call this right after the runtime's core step is appended)."""
    known, head = revisions() or (set(), None)
    operations = Operations(Metrics(), core, known, head)
    app[OPERATIONS] = operations
    app.middlewares.insert(0, observe)  # outermost: it sees every final status
    for path, handler in (("/metrics", metrics), ("/livez", livez), ("/readyz", readyz)):
        # An application embedding the engine may serve one of these paths itself already.
        if any(resource.canonical == path for resource in app.router.resources()):
            log.warning("%s is served by the application already; not mounted again", path)
            continue
        app.router.add_get(path, handler)

    async def observing(app: web.Application) -> AsyncIterator[None]:
        opened = core(app)
        assert opened is not None, "the core step runs before this one"
        opened.signals.attach(operations.metrics)
        operations.metrics.scrape.database = lambda: opened.db
        yield
        operations.metrics.scrape.database = lambda: None
        opened.signals.detach(operations.metrics)

    runtime.append(observing)
    return operations.metrics


def route_of(request: web.Request) -> str:
    """The matched route's pattern, or `UNMATCHED`."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


def _request_id(request: web.Request) -> str:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    return offered if _REQUEST_ID.fullmatch(offered) else new_id()


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    operations = request.app[OPERATIONS]
    request_id = _request_id(request)
    started = time.perf_counter()
    status = 500
    with bound_request(request_id):
        try:
            response = await handler(request)
            status = response.status
            if not response.prepared:
                response.headers[REQUEST_ID_HEADER] = request_id
            return response
        except web.HTTPException as answer:
            status = answer.status
            answer.headers[REQUEST_ID_HEADER] = request_id
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away before the answer
            raise
        finally:
            route = route_of(request)
            method = request.method if request.method in METHODS else "other"
            counted = operations.metrics
            counted.http_requests.labels(route, method, str(status)).inc()
            counted.http_seconds.labels(route, method).observe(time.perf_counter() - started)


async def metrics(request: web.Request) -> web.Response:
    operations = request.app[OPERATIONS]
    core = operations.core(request.app)
    scrape = operations.metrics.scrape
    scrape.backlog = None
    if core is not None:
        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT):
                scrape.backlog = await backlog(core.db)
        except Exception as error:  # the scrape answers; the backlog series are left out
            log.warning("metrics: the backlog could not be read (%s)", type(error).__name__)
    body = generate_latest(operations.metrics.registry)
    # Text format 0.0.4: every metric name here is a classic one, so the body is the same as
    # 1.0.0's, and Prometheus 2 and 3 (and other scrapers) all read it.
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


async def livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    operations = request.app[OPERATIONS]
    checks: dict[str, object] = {}
    not_ready: list[str] = []
    checks["database"], checks["migrations"] = await _database(operations, request.app)
    if checks["database"] != OK:
        not_ready.append("database")
    elif checks["migrations"] != OK and not str(checks["migrations"]).startswith("newer:"):
        not_ready.append("migrations")
    platforms = request.app.get(PLATFORM_STATUS)
    if platforms is not None:
        states = platforms.as_dict()
        checks["platforms"] = states
        not_ready += [f"platforms.{name}" for name, state in states.items() if state != OK]
    if not_ready:
        body = {"status": "not ready", "not_ready": not_ready, "checks": checks}
        return web.json_response(body, status=503)
    return web.json_response({"status": "ready", "checks": checks})


async def _database(operations: Operations, app: web.Application) -> tuple[str, str]:
    """(database, migrations): "ok" each, or a short reason (never a URL or a password)."""
    core = operations.core(app)
    if core is None:
        return "not started", "not checked"
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            revision = await schema_revision(core.db)
    except TimeoutError:
        found = f"no answer within {READY_TIMEOUT:g} s"
    except Exception as error:
        found = f"unreachable ({type(_first_cause(error)).__name__})"
    else:
        if operations.database_down:
            log.info("readiness: the database answers again")
        operations.database_down = False
        return OK, _migrations(operations, revision)
    if not operations.database_down:  # one line when it goes down, not one per probe
        log.warning("readiness: the database is down: %s", found)
    operations.database_down = True
    return found, "not checked"


def _migrations(operations: Operations, revision: str | None) -> str:
    """The migrations check: "ok" at the head; "at 0015, expected 0016" when the schema is
    behind this code (not ready: the code needs what is missing); "newer: ..." when the schema
    is at a migration this code does not know: a rolling upgrade whose new release migrated
    first. Those replicas stay ready: taking every old replica out at once would leave nothing
    serving until the new ones are up."""
    if operations.head is None or revision == operations.head:
        return OK
    if revision is None or revision in operations.known:
        return f"at {revision or 'none'}, expected {operations.head}"
    return f"newer: at {revision}, this release knows up to {operations.head}"


def _first_cause(error: BaseException) -> BaseException:
    """The error at the bottom of SQLAlchemy's and the driver's wrappers (`orig`, `__cause__`):
    `ConnectionRefusedError` rather than `DBAPIError`."""
    cause: BaseException = getattr(error, "orig", None) or error
    for _ in range(10):  # a bounded walk: a cycle of causes cannot hang the probe
        if cause.__cause__ is None:
            break
        cause = cause.__cause__
    return cause

"""The REST API for integrations: thin routes over the same core services as the chat.

Every route needs an API key (`bots.api.auth`), answers errors as problem+json
(`bots.api.problems`), pages lists (`bots.api.pagination`) and, for writes, honours an
`Idempotency-Key` (`bots.api.idempotency`). A key acts as itself (`bots.api.principals`), and every
write it makes is recorded (`bots.api.audit`).
"""

from __future__ import annotations

from aiohttp import web

from bots.api.audit import audit_middleware
from bots.api.auth import auth_middleware
from bots.api.problems import problems_middleware
from bots.api.ratelimit import rate_limit_middleware


def setup(app: web.Application) -> None:
    from bots.api import (
        admin_actions_routes,
        export_routes,
        kudos_routes,
        openapi,
        privacy_routes,
        rewards_routes,
        shop_routes,
    )
    from bots.api.admin_routes import routes as admin_routes
    from bots.api.integrity_routes import routes as integrity_routes
    from bots.api.people_routes import routes as people_routes

    app.middlewares.append(audit_middleware)  # outermost: it sees every final status
    app.middlewares.append(problems_middleware)
    app.middlewares.append(auth_middleware)
    app.middlewares.append(rate_limit_middleware)  # per key: after auth has found it
    app.router.add_routes(rewards_routes.routes)
    app.router.add_routes(kudos_routes.routes)
    app.router.add_routes(people_routes)
    app.router.add_routes(admin_routes)
    app.router.add_routes(shop_routes.routes)
    app.router.add_routes(admin_actions_routes.routes)
    app.router.add_routes(privacy_routes.routes)
    app.router.add_routes(export_routes.routes)
    app.router.add_routes(integrity_routes)
    openapi.setup(app)

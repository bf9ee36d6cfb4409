"""An existing aiohttp application with the rewards engine embedded, as in the seed's Quick Start.

Run it from the repository root (after `bash scripts/run.sh` or `pip install -e .` created the
environment):

    DEMO_TOKENS="token-ana=ana@example.com" .venv/bin/python examples/embedded/app.py

It serves its own pages (`/` and `/hello`), and, through the engine, `/healthz`, the REST API
(`/rewards/api/v1/...`) and the bot endpoints (`/api/messages` for Teams and the Bot Framework
Emulator; Slack and Telegram when their settings are present). The catalogue comes from
`my_rewards/rewards.json` through `JsonStorage`; settings come from the environment and
`env/.env` like `rewards serve` (`DATABASE_URL`, `PORT`, `ENABLE_REWARDS`, `REWARD_MIDDLEWARE`...),
except the database: without `DATABASE_URL` (or `DBHOST`) the example keeps its own SQLite file,
`var/embedded-example.db`, instead of the `var/rewards.db` of `rewards serve`, whose catalogue it
would otherwise overwrite (both define reward 1005).

`demo_auth` stands in for the host's real authentication: it accepts `Authorization: Bearer
<token>` for the tokens listed in `DEMO_TOKENS` and stores the user on the request, where the
engine's login middleware finds them, so each member's first request of the day earns the
"Welcome Badge" (an Automated Badge listening to logins).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from rewards.engine import RewardsEngine
from rewards.settings import DEFAULT_SQLITE_PATH, Settings, load_settings
from rewards.storages import JsonStorage

HERE = Path(__file__).resolve().parent
ENGINE = web.AppKey("rewards_engine", RewardsEngine)
TOKENS = web.AppKey("demo_tokens", dict)
EXAMPLE_DATABASE = Path("var") / "embedded-example.db"

# Like most authentication middlewares, the demo stores the user as request["user"], where the
# engine's default `identify` looks; aiohttp would rather see a RequestKey there.
warnings.filterwarnings("ignore", "It is recommended to use web.RequestKey")


def demo_tokens() -> dict[str, str]:
    """`DEMO_TOKENS="token-ana=ana@example.com,token-li=li@example.com"` as a mapping."""
    pairs = (item.partition("=") for item in os.environ.get("DEMO_TOKENS", "").split(","))
    return {token.strip(): email.strip() for token, _, email in pairs if token.strip() and email}


@web.middleware
async def demo_auth(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    email = request.app[TOKENS].get(token.strip()) if scheme.lower() == "bearer" else None
    if email:
        request["user"] = {"email": email}
    return await handler(request)


async def index(request: web.Request) -> web.Response:
    return web.json_response(
        {"app": "my-company-portal", "rewards": "/rewards/api/v1/openapi.json"}
    )


async def hello(request: web.Request) -> web.Response:
    user = request.get("user")
    if user is None:
        raise web.HTTPUnauthorized(text="sign in first")
    return web.json_response({"hello": user["email"]})


def example_settings() -> Settings:
    """The settings `rewards serve` would use, but the example's own SQLite file when the
    database is the default one: trying the example must not rewrite the server's catalogue."""
    settings = load_settings()
    if settings.database_url == f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}":
        url = f"sqlite+aiosqlite:///{EXAMPLE_DATABASE}"
        settings = settings.model_copy(update={"database_url": url})
    return settings


def create_app() -> web.Application:
    # Create your aiohttp app
    app = web.Application(middlewares=[demo_auth])
    app[TOKENS] = demo_tokens()
    app.router.add_get("/", index)
    app.router.add_get("/hello", hello)

    # Initialize Rewards Engine
    rewards_engine = RewardsEngine(app, settings=example_settings())
    app[ENGINE] = rewards_engine

    # Setup routes and middleware
    rewards_engine.setup()

    # Register startup/shutdown handlers
    app.on_startup.append(rewards_engine.reward_startup)
    app.on_shutdown.append(rewards_engine.reward_shutdown)

    async def load_rewards(app: web.Application) -> None:
        if rewards_engine.enabled:
            json_storage = JsonStorage(json_file=HERE / "my_rewards" / "rewards.json")
            await rewards_engine.add_storage(json_storage)

    app.on_startup.append(load_rewards)
    return app


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    web.run_app(
        create_app(),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8080")),
    )

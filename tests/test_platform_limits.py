"""Platform limits (issue 15, item 6), each against the real SDKs and the fake platform servers:

- Slack's Web API answering 429 (`Retry-After`): the reply still arrives (slack_sdk retry handlers).
- Telegram's Bot API answering 429 (`retry_after`): the reply still arrives (PTB's rate limiter).
- The REST API past `API_RATE_LIMIT` for one key: 429 problem+json with `Retry-After`, nothing
  written, other keys unaffected; the key gets through again once it waited.
- Chat past `CHAT_RATE_LIMIT` for one member: a polite sentence, nothing of the turn written.
- Telegram failing at start (Bot API down, token rejected): the server starts, Slack and the API
  serve, `/healthz` says why, and Telegram is retried in the background until it works.
- A busy port: one line, exit status 2, and the database was not touched.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner
from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import create_async_engine

from bots.commands.serve import BIND_FAILED, serve
from bots.server import create_app
from bots.slack import SLACK
from bots.telegram import TELEGRAM
from bots.telegram import setup as setup_telegram
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.limits import RateLimiter, RateLimits, slow_down
from rewards.services.apikeys import create_key
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import ApiAudit, ConversationState, Kudos, MemberActivity
from tests.factories import add_member
from tests.support.slack_api import FakeSlackApi
from tests.support.telegram_api import TOKEN, FakeBotAPI
from tests.test_slack import BOB, BOT_TOKEN, LI, SECRET, Slack, slack_app
from tests.test_telegram import people, private_text, telegram_settings


class Ticker:
    """A monotonic clock for the rate limiters that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def count(database: Database, model: Any) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotAPI]:
    fake = await FakeBotAPI().start()
    yield fake
    await fake.close()


# --- the token bucket ----------------------------------------------------------------------------


def test_a_bucket_allows_a_minute_at_once_then_the_steady_rate() -> None:
    ticker = Ticker()
    limiter = RateLimiter(6, clock=ticker)  # 6 a minute: one token every 10 s
    assert [limiter.take("k") for _ in range(6)] == [0.0] * 6
    assert limiter.take("k") == pytest.approx(10.0)
    assert limiter.take("other") == 0.0  # every key has its own bucket
    ticker.now += 4
    assert limiter.take("k") == pytest.approx(6.0)  # a refused request spends nothing
    ticker.now += 6
    assert limiter.take("k") == 0.0
    assert RateLimiter(0).take("k") == 0.0  # 0 switches the limit off


def test_the_chat_sentence_rounds_up() -> None:
    assert slow_down(29.2) == "You're going a bit fast — try again in 30 seconds."
    assert slow_down(0.3) == "You're going a bit fast — try again in 1 second."


# --- Slack and Telegram answering 429 ------------------------------------------------------------


async def test_a_slack_reply_arrives_after_a_429(database: Database) -> None:
    async with slack_app(database) as slack:
        slack.api.rate_limit("chat.postMessage", retry_after=0)
        slack.bot.command_budget = 0  # answered after the ack, with chat.postMessage
        await slack.command("/kudos", f"<@{LI}> <@{BOB}|bob> great demo #teamwork")
        assert slack.api.limited == ["chat.postMessage"]
        [posted] = slack.api.of("chat.postMessage")  # retried after Retry-After, and delivered
        assert "Li Wei" in posted["text"]
        assert await count(database, Kudos) == 1


async def test_a_telegram_reply_arrives_after_a_429(
    database: Database, bot_api: FakeBotAPI
) -> None:
    await people(database)
    settings = telegram_settings(database, bot_api)
    app = create_app(settings, platforms=False)
    assert setup_telegram(app, settings)
    async with TestClient(TestServer(app)) as client:
        bot_api.rate_limit("sendMessage", retry_after=1)
        response = await client.post(
            "/telegram/webhook",
            json=private_text(700001, "/help"),
            headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token_for-tests"},
        )
        assert response.status == 200
        assert bot_api.limited == ["sendMessage"]
        [sent] = bot_api.params("sendMessage")  # waited retry_after, then sent
        assert "Here is what I can do" in sent["text"]


# --- the REST API: per key -----------------------------------------------------------------------


@asynccontextmanager
async def limited_api(
    database: Database, clock: FixedClock, **limits: int
) -> AsyncIterator[tuple[TestClient, Ticker, Callable[[str], dict[str, str]]]]:  # type: ignore[type-arg]
    settings = Settings(
        database_url=database.url, catalog_files=(), reward_scheduler=False, **limits
    )
    core = Core(settings=settings, db=Database(database.url), clock=clock)
    ticker = Ticker()
    core.limits = RateLimits.from_settings(settings, clock=ticker)
    keys = {name: (await create_key(database, name, "write", clock))[1] for name in ("a", "b")}

    def auth(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[name]}"}

    async with TestClient(TestServer(create_app(settings, core, platforms=False))) as client:
        yield client, ticker, auth
    await core.db.dispose()


async def test_an_api_key_past_its_rate_is_429_with_retry_after_and_writes_nothing(
    database: Database, clock: FixedClock
) -> None:
    await add_member(database, "Ana Lopez")
    await add_member(database, "Li Wei")
    kudos = {"giver": "ana.lopez@example.com", "receivers": ["li.wei@example.com"],
             "message": "Thanks for the demo"}  # fmt: skip
    async with limited_api(database, clock, api_rate_limit=3) as (client, ticker, auth):
        for _ in range(3):
            response = await client.get("/kudos/api/v1/kudos_tags", headers=auth("a"))
            assert response.status == 200
        audits = await count(database, ApiAudit)

        refused = await client.post("/kudos/api/v1/user_kudos", json=kudos, headers=auth("a"))
        assert refused.status == 429
        assert refused.content_type == "application/problem+json"
        assert refused.headers["Retry-After"] == "20"  # 3 a minute: the next token in 20 s
        body = await refused.json()
        assert body["status"] == 429 and "try again in 20 seconds" in body["detail"]
        assert await count(database, Kudos) == 0
        assert await count(database, ApiAudit) == audits  # not even an audit row

        other = await client.get("/kudos/api/v1/kudos_tags", headers=auth("b"))
        assert other.status == 200  # each key has its own allowance

        ticker.now += 20
        done = await client.post("/kudos/api/v1/user_kudos", json=kudos, headers=auth("a"))
        assert done.status == 201, await done.text()
        assert await count(database, Kudos) == 1

        spec = await (await client.get("/rewards/api/v1/openapi.json")).json()
        assert "429" in spec["paths"]["/kudos/api/v1/user_kudos"]["post"]["responses"]


# --- chat: per member ----------------------------------------------------------------------------


async def test_a_member_past_the_chat_rate_is_asked_to_slow_down_and_nothing_is_written(
    database: Database,
) -> None:
    async with slack_app(database, chat_rate_limit=2) as slack:
        ticker = Ticker()
        slack.bot.core.limits = RateLimits.from_settings(slack.bot.core.settings, clock=ticker)
        await slack.command("/help")
        await slack.command("/cancel")
        activity = await count(database, MemberActivity)

        await slack.command("/kudos", f"<@{LI}> great demo #teamwork")
        said = slack.api.of("response_url")[-1]
        assert said["response_type"] == "ephemeral"
        assert said["text"] == "You're going a bit fast — try again in 30 seconds."
        assert await count(database, Kudos) == 0
        assert await count(database, ConversationState) == 0
        assert await count(database, MemberActivity) == activity

        ticker.now += 30
        await slack.command("/kudos", f"<@{LI}> great demo #teamwork")
        assert await count(database, Kudos) == 1


# --- each platform starts on its own -------------------------------------------------------------


@asynccontextmanager
async def whole_server(
    database: Database, bot_api: FakeBotAPI, slack_api: FakeSlackApi, *, token: str = TOKEN
) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    """`create_app` with every platform mounted: Teams, Slack and Telegram (`token`)."""
    base = telegram_settings(database, bot_api, TELEGRAM_BOT_TOKEN=token)
    settings = Settings(
        database_url=database.url,
        catalog_files=(),
        reward_scheduler=False,
        telegram_allowed_chats=base.telegram_allowed_chats,
        extra={
            **base.extra,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack_api.api_url,
        },
    )
    app = create_app(settings)
    app[TELEGRAM].start_retry = 0.05
    async with TestClient(TestServer(app)) as client:
        yield client


async def health(client: TestClient) -> dict[str, Any]:  # type: ignore[type-arg]
    response = await client.get("/healthz")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def test_telegram_down_at_start_leaves_the_others_serving_and_is_retried(
    database: Database, bot_api: FakeBotAPI
) -> None:
    await people(database)
    bot_api.failures["getMe"] = (502, "Bad Gateway")
    async with FakeSlackApi() as slack_api:
        slack_api.add_user("U0ANA0001", "Ana Lopez", "ana.lopez@example.com")
        async with whole_server(database, bot_api, slack_api) as client:
            body = await health(client)
            assert body["status"] == "ok"
            assert body["platforms"]["teams"] == body["platforms"]["slack"] == "ok"
            assert body["platforms"]["telegram"].startswith(("failed: ", "starting"))
            webhook = await client.post(
                "/telegram/webhook",
                json=private_text(700002, "/help"),
                headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token_for-tests"},
            )
            assert webhook.status == 503  # Telegram resends it once the bot is up

            # Slack serves meanwhile (a signed /help gets its answer).
            slack = Slack(client, slack_api, client.app[SLACK], database)
            await slack.command("/help")  # private: answered through the command's response_url
            assert slack_api.of("response_url") or slack_api.of("chat.postEphemeral")

            del bot_api.failures["getMe"]  # the Bot API is back: the next attempt starts it
            for _ in range(200):  # retried every 0.05 s (doubling): ready well within 10 s
                if (await health(client))["platforms"]["telegram"] == "ok":
                    break
                await asyncio.sleep(0.05)
            assert (await health(client))["platforms"]["telegram"] == "ok"
            assert bot_api.params("setWebhook")
            webhook = await client.post(
                "/telegram/webhook",
                json=private_text(700003, "/help"),
                headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token_for-tests"},
            )
            assert webhook.status == 200
            assert "Here is what I can do" in bot_api.params("sendMessage")[-1]["text"]


async def test_a_rejected_telegram_token_is_reported_without_the_token(
    database: Database, bot_api: FakeBotAPI
) -> None:
    wrong = "999999:WRONG-token-never-shown"
    async with (
        FakeSlackApi() as slack_api,
        whole_server(database, bot_api, slack_api, token=wrong) as client,
    ):
        body = await health(client)
        assert body["platforms"]["telegram"] == "failed: the Bot API rejected TELEGRAM_BOT_TOKEN"
        assert wrong not in await (await client.get("/healthz")).text()
        assert (await client.get("/kudos/api/v1/kudos_tags")).status == 401  # the API serves


# --- a busy port ---------------------------------------------------------------------------------


async def test_a_busy_port_is_one_line_and_exit_2_before_any_migration(
    unmigrated_database_url: str,
) -> None:
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("0.0.0.0", 0))  # what `--host 0.0.0.0` binds
        taken.listen()
        port = taken.getsockname()[1]
        env = {"DATABASE_URL": unmigrated_database_url, "REWARDS_ENV_FILE": "/nonexistent"}
        args = ["--host", "0.0.0.0", "--port", str(port)]
        result = await asyncio.to_thread(CliRunner().invoke, serve, args, env=env)
    assert result.exit_code == BIND_FAILED
    assert result.output == f"rewards serve: port {port} on 0.0.0.0 is already in use\n"

    engine = create_async_engine(unmigrated_database_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()
    assert tables == []  # nothing was migrated

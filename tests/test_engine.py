"""The engine embedded in a host application (`examples/embedded/app.py`, the seed's Quick Start):
its own routes next to `/healthz`, the REST API and the bot endpoints; the catalogue from
`JsonStorage`; the seed's switches; the login middleware; and the app without the `events` extra.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import aio_pika
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bots.server import SCHEDULER
from rewards.catalog.problems import CatalogError
from rewards.clock import SystemClock
from rewards.engine import RewardsEngine
from rewards.services.apikeys import create_key
from rewards.services.catalog import list_definitions, load_catalog
from rewards.settings import Settings
from rewards.storages import DatabaseStorage, JsonStorage
from rewards.store.db import Database
from rewards.store.migrate import upgrade_async
from rewards.store.models import Award, Kudos
from tests.factories import add_member
from tests.support.rabbitmq import RabbitNode
from tests.support.teams_connector import FakeConnector
from tests.test_teams import payload as teams_payload
from tests.test_teams import profiles as teams_profiles

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "embedded" / "app.py"
EXAMPLE_CATALOG = ROOT / "examples" / "embedded" / "my_rewards" / "rewards.json"
WELCOME = 1001  # the example's "Welcome Badge", an Automated Badge listening to logins


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("embedded_example_app", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@asynccontextmanager
async def example_client(
    database: Database, monkeypatch: pytest.MonkeyPatch, **env: str
) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    """The example app, configured by the environment as a host would run it."""
    monkeypatch.setenv("DATABASE_URL", database.url)
    monkeypatch.setenv("REWARD_SCHEDULER", "false")
    monkeypatch.setenv("DEMO_TOKENS", "t-ana=ana@example.com,t-stranger=nobody@example.com")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    async with TestClient(TestServer(_example().create_app())) as client:
        yield client


async def _welcomes(db: Database) -> list[int]:
    async with db.read() as session:
        rows = await session.execute(
            select(Award.member_id).where(Award.reward_id == WELCOME)  # type: ignore[arg-type]
        )
        return [int(m) for (m,) in rows.all()]


async def test_the_example_app_serves_its_routes_the_api_and_the_bot_endpoints(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with example_client(database, monkeypatch) as client:
        own = await client.get("/")
        assert own.status == 200 and (await own.json())["app"] == "my-company-portal"
        assert (await client.get("/hello")).status == 401  # the host's own auth still rules

        health = await (await client.get("/healthz")).json()
        assert health["status"] == "ok"
        assert health["rewards"] == len(json.loads(EXAMPLE_CATALOG.read_text()))

        _, key = await create_key(database, "portal", "read")
        listed = await client.get(
            "/rewards/api/v1/rewards", headers={"Authorization": f"Bearer {key}"}
        )
        assert listed.status == 200
        ids = [r["reward_id"] for r in (await listed.json())["items"]]
        assert ids == [1001, 1005]  # from JsonStorage, nothing else
        assert (await client.get("/rewards/api/v1/rewards")).status == 401

        # Teams (Bot Framework Emulator on loopback): mounted, and a bad body is refused
        # cleanly rather than not found.
        teams = await client.post("/api/messages", data=b"not json")
        assert teams.status in (400, 415)
        assert (await client.get("/rewards/api/v1/docs")).status == 200


async def test_a_teams_conversation_runs_in_the_host_app(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dialogs answer through the host app's Teams endpoint as through `rewards serve`."""
    async with FakeConnector() as connector, example_client(database, monkeypatch) as client:
        teams_profiles(connector)
        answer = await client.post(
            "/api/messages", json=teams_payload("message_channel_kudos", connector)
        )
        assert answer.status == 200, await answer.text()
        [reply] = connector.posted()
        assert "Ana Lopez" in json.dumps(reply.cards)
    async with database.read() as session:
        assert len((await session.scalars(select(Kudos))).all()) == 1


async def test_the_login_middleware_awards_the_welcome_badge_once_a_day(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana = await add_member(database, "Ana")
    async with example_client(database, monkeypatch) as client:
        for _ in range(3):
            answer = await client.get("/hello", headers={"Authorization": "Bearer t-ana"})
            assert answer.status == 200
            assert await answer.json() == {"hello": "ana@example.com"}
        # A signed-in stranger (no member) and anonymous requests change nothing.
        stranger = await client.get("/hello", headers={"Authorization": "Bearer t-stranger"})
        assert stranger.status == 200
        assert (await client.get("/")).status == 200
    assert await _welcomes(database) == [ana]


async def test_the_example_app_with_the_event_manager_takes_logins_from_rabbitmq(
    database: Database, monkeypatch: pytest.MonkeyPatch, rabbitmq_node: RabbitNode
) -> None:
    """ENABLE_EVENT_MANAGER in the embedded engine: a `user.login` published by another system
    earns the Welcome Badge once, and the award goes out as `rewards.badge.awarded`."""
    ana = await add_member(database, "Ana")
    name = f"embedded-{uuid.uuid4().hex[:8]}"
    env = {
        "ENABLE_EVENT_MANAGER": "true",
        "RABBITMQ_HOST": "127.0.0.1",
        "RABBITMQ_PORT": str(rabbitmq_node.port),
        "RABBITMQ_EXCHANGE": name,
        "RABBITMQ_QUEUE": f"{name}.inbound",
    }
    connection = await aio_pika.connect(rabbitmq_node.url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
        tap = await channel.declare_queue(f"{name}.tap", exclusive=True)
        await tap.bind(exchange, "rewards.#")
        async with example_client(database, monkeypatch, **env) as client:
            assert (await (await client.get("/healthz")).json())["event_manager"].startswith("on")

            async def connected() -> bool:  # the queue is bound once the manager is connected
                return bool((await (await client.get("/healthz")).json())["broker"]["connected"])

            await _until(connected, True, within=15)
            login = json.dumps({"event_id": "sso-1", "member": "ana@example.com"}).encode()
            for _ in range(2):  # the identity provider sends it twice
                await exchange.publish(aio_pika.Message(login), routing_key="user.login")
            await _until(lambda: _welcomes(database), [ana], within=15)
            message = await _next(tap, within=10)
        assert await _welcomes(database) == [ana]
        body = json.loads(message.body)
        assert message.routing_key == "rewards.badge.awarded"
        assert body["payload"]["reward"] == "Welcome Badge"
        assert body["payload"]["member"]["email"] == "ana@example.com"
        await channel.queue_delete(f"{name}.inbound")
        await channel.queue_delete(f"{name}.inbound.dead")
        await channel.exchange_delete(name)
    finally:
        await connection.close()


async def _until(read: Any, expected: Any, *, within: float) -> None:
    deadline = time.monotonic() + within
    while (found := await read()) != expected:
        assert time.monotonic() < deadline, f"still {found!r}"
        await asyncio.sleep(0.1)


async def _next(queue: Any, *, within: float) -> Any:
    deadline = time.monotonic() + within
    while (message := await queue.get(fail=False, no_ack=True)) is None:
        assert time.monotonic() < deadline, "no message published"
        await asyncio.sleep(0.1)
    return message


async def test_a_failing_identify_never_fails_the_host_request(database: Database) -> None:
    def identify(request: web.Request) -> str:
        raise RuntimeError("the host's session store is down")

    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"pong": True})

    app = web.Application()
    app.router.add_get("/ping", ping)
    engine = RewardsEngine(
        app,
        settings=Settings(database_url=database.url, reward_scheduler=False),
        identify=identify,
        platforms=False,
    )
    engine.setup()
    app.on_startup.append(engine.reward_startup)
    app.on_shutdown.append(engine.reward_shutdown)
    async with TestClient(TestServer(app)) as client:
        answer = await client.get("/ping")
        assert answer.status == 200 and await answer.json() == {"pong": True}
        assert (await client.get("/missing")).status == 404  # the host's own 404, untouched


async def test_reward_middleware_false_records_no_logins(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_member(database, "Ana")
    async with example_client(database, monkeypatch, REWARD_MIDDLEWARE="false") as client:
        assert (await client.get("/hello", headers={"Authorization": "Bearer t-ana"})).ok
    assert await _welcomes(database) == []


async def test_enable_rewards_false_mounts_nothing_and_the_host_still_runs(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with example_client(database, monkeypatch, ENABLE_REWARDS="false") as client:
        assert (await client.get("/")).status == 200
        assert (await client.get("/healthz")).status == 404
        assert (await client.get("/rewards/api/v1/rewards")).status == 404
        assert (await client.post("/api/messages", json={})).status == 404


def _bare_engine(database: Database, **fields: Any) -> tuple[web.Application, RewardsEngine]:
    """An empty host app with the engine mounted the Quick Start way (no platforms)."""
    settings = Settings(database_url=database.url, **{"reward_scheduler": False, **fields})
    app = web.Application()
    engine = RewardsEngine(app, settings=settings, platforms=False)
    engine.setup()
    app.on_startup.append(engine.reward_startup)
    app.on_shutdown.append(engine.reward_shutdown)
    return app, engine


async def test_the_embedded_engine_runs_the_scheduler_with_the_storages_jobs(
    database: Database,
) -> None:
    seed_catalog = ROOT / "examples" / "rewards.json"
    app, engine = _bare_engine(database, reward_scheduler=True)
    await engine.add_storage(JsonStorage(json_file=seed_catalog))
    async with TestClient(TestServer(app)):
        scheduler = app[SCHEDULER]
        assert scheduler.running
        # The seed's lottery job, from the storage loaded at start-up, and the built-ins.
        assert {"monthly_mega_lottery", "rewards.sweep"} <= set(scheduler.next_run_times())
    assert not scheduler.running


async def test_add_storage_after_start_loads_at_once_and_a_broken_file_changes_nothing(
    database: Database, tmp_path: Path
) -> None:
    app, engine = _bare_engine(database)
    async with TestClient(TestServer(app)):
        # The settings' default catalogue file is not loaded without REWARDS_CATALOG.
        assert await list_definitions(database) == []
        report = await engine.add_storage(JsonStorage(json_file=EXAMPLE_CATALOG))
        assert report is not None and sorted(report.added) == [1001, 1005]

        broken = tmp_path / "broken.json"
        broken.write_text(json.dumps([{"reward_id": 1001, "reward": "Renamed"}]))
        with pytest.raises(CatalogError, match="reward_category"):
            await engine.add_storage(JsonStorage(json_file=broken))
        names = [d.reward for d in await list_definitions(database)]
        assert names == ["Welcome Badge", "Team Player"]

        again = await engine.add_storage(DatabaseStorage())  # this engine's own database
        assert again is not None and sorted(again.unchanged) == [1001, 1005]
        assert not again.added and not again.changed


async def test_database_storage_copies_a_catalogue_from_another_database(
    database: Database, tmp_path: Path
) -> None:
    central = f"sqlite+aiosqlite:///{tmp_path / 'central.db'}"
    await upgrade_async(central)
    source = Database(central)
    try:
        definitions = await JsonStorage(json_file=EXAMPLE_CATALOG).load_rewards()
        await load_catalog(source, definitions, clock=SystemClock())
    finally:
        await source.dispose()

    app, engine = _bare_engine(database)
    storage = DatabaseStorage(central)
    assert "central.db" in storage.name
    await engine.add_storage(storage)  # before start: loaded by reward_startup
    async with TestClient(TestServer(app)):
        assert [d.reward_id for d in await list_definitions(database)] == [1001, 1005]


def test_setup_twice_and_startup_without_setup_are_refused(database: Database) -> None:
    engine = RewardsEngine(web.Application(), settings=Settings(database_url=database.url))
    engine.setup()
    with pytest.raises(RuntimeError, match="already called"):
        engine.setup()
    lonely = RewardsEngine(web.Application(), settings=Settings(database_url=database.url))
    with pytest.raises(RuntimeError, match="setup"):
        asyncio.run(lonely.reward_startup(web.Application()))


# --- as a process, the way the seed's Quick Start runs it ----------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "DB", "REWARDS_", "RABBITMQ_", "ENABLE_", "REWARD_"))
    }
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'host.db'}",
        REWARDS_ENV_FILE=str(tmp_path / "none.env"),
        REWARD_SCHEDULER="false",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def _get(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
            if response.headers.get_content_type() != "application/json":
                return response.status, body.decode()
            return response.status, json.loads(body)
    except urllib.error.HTTPError as error:
        return error.code, None


def _send(url: str, body: dict[str, Any], token: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="PUT" if "/members/" in url else "POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@contextmanager
def running(
    command: list[str], env: dict[str, str], port: int
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
                    break
            except urllib.error.HTTPError:
                break  # answering (404 on / for the plain server)
            except OSError:
                time.sleep(0.2)
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"{command} exited: {output[-3000:]}")
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


def test_the_example_runs_as_the_quick_start_shows(tmp_path: Path) -> None:
    port = _free_port()
    env = _env(tmp_path, PORT=str(port), DEMO_TOKENS="t-ana=ana@example.com")
    key = _cli(env, "apikey", "create", "--name", "portal", "--scope", "write")
    with running([sys.executable, str(EXAMPLE)], env, port):
        base = f"http://127.0.0.1:{port}"
        assert _get(base + "/")[1]["app"] == "my-company-portal"
        status, health = _get(base + "/healthz")
        assert status == 200 and health["rewards"] == 2  # my_rewards/rewards.json
        assert health["event_manager"].startswith("off")
        assert _get(base + "/rewards/api/v1/docs")[0] == 200
        status, listed = _get(base + "/rewards/api/v1/rewards", key)
        assert status == 200 and [r["reward"] for r in listed["items"]] == [
            "Welcome Badge",
            "Team Player",
        ]
        assert _send(f"{base}/rewards/api/v1/members/ana@example.com", {}, key)[0] == 201
        assert _get(base + "/hello", "t-ana") == (200, {"hello": "ana@example.com"})
        # The login's badge is awarded by the event hooks, right after that response.
        deadline = time.monotonic() + 10
        while True:
            status, history = _get(base + "/rewards/api/v1/members/ana@example.com/history", key)
            if "Welcome Badge" in json.dumps(history) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert status == 200 and "Welcome Badge" in json.dumps(history)
        # The Teams endpoint answers (a body that is no activity is refused, not "not found").
        teams = urllib.request.Request(f"{base}/api/messages", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(teams, timeout=5)
        assert refused.value.code in (400, 415)


def _cli(env: dict[str, str], *args: str, prelude: str = "") -> str:
    """`rewards ARGS` in a fresh Python (after `prelude`), answering its standard output."""
    return subprocess.run(
        [sys.executable, "-c", prelude + CLI, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()


CLI = "import sys; from bots.cli import main; sys.argv = ['rewards', *sys.argv[1:]]; main()"
# A Python that cannot import aio_pika, as after `pip install nav-rewards` without [events].
WITHOUT_EXTRA = "import sys; sys.modules['aio_pika'] = None; sys.modules['aiormq'] = None; "


def test_without_the_events_extra_settings_say_off_and_kudos_still_work(tmp_path: Path) -> None:
    env = _env(tmp_path, ENABLE_EVENT_MANAGER="true", REWARDS_CATALOG=str(EXAMPLE_CATALOG))
    shown = _cli(env, "settings", prelude=WITHOUT_EXTRA)
    assert "events extra is not installed" in shown
    assert "pip install 'nav-rewards[events]'" in shown

    key = _cli(env, "apikey", "create", "--name", "t", "--scope", "write", prelude=WITHOUT_EXTRA)
    port = _free_port()
    env["PORT"] = str(port)
    with running([sys.executable, "-c", WITHOUT_EXTRA + CLI, "serve"], env, port):
        base = f"http://127.0.0.1:{port}"
        health = _get(base + "/healthz")[1]
        assert "events extra is not installed" in health["event_manager"]
        for name in ("ana", "li"):
            status, _ = _send(f"{base}/rewards/api/v1/members/{name}@example.com", {}, key)
            assert status == 201
        status, kudos = _send(
            base + "/kudos/api/v1/user_kudos",
            {"giver": "ana@example.com", "receivers": ["li@example.com"], "message": "Thanks!"},
            key,
        )
        assert status == 201, kudos

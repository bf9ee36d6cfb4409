"""The server: health check, catalogue loaded at start, and the README's run command."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bots.server import create_app
from rewards.errors import CatalogError
from rewards.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "rewards.json"


def example_count() -> int:
    return len(json.loads(EXAMPLES.read_text()))


async def test_healthz_reports_the_loaded_catalogue(database):
    settings = Settings(database_url=database.url, catalog_files=(str(EXAMPLES),))
    async with TestClient(TestServer(create_app(settings))) as client:
        response = await client.get("/healthz")
        assert response.status == 200
        assert await response.json() == {
            "status": "ok",
            "database": "ok",
            "rewards": example_count(),
            "event_manager": "off: ENABLE_EVENT_MANAGER is not true",
            "platforms": {"teams": "ok"},
        }


async def test_a_broken_catalogue_stops_the_start(database, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps(
            [{"reward_id": 1, "reward": "X", "reward_category": "C", "reward_type": "Badge Type"}]
        )
    )
    settings = Settings(database_url=database.url, catalog_files=(str(broken),))
    with pytest.raises(CatalogError, match="reward 1: reward_type"):
        async with TestClient(TestServer(create_app(settings))):
            pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_command_serves_healthz_on_the_sqlite_default(tmp_path):
    """`bash scripts/run.sh` with no settings: SQLite under var/, the examples loaded."""
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DB", "REWARDS_"))
    }
    env.update(PORT=str(port), REWARDS_ENV_FILE=str(tmp_path / "none.env"))
    process = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "run.sh")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        body = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/healthz", timeout=2
                ) as response:
                    body = json.loads(response.read())
                    break
            except OSError:
                time.sleep(0.3)
        assert body == {
            "status": "ok",
            "database": "ok",
            "rewards": example_count(),
            "event_manager": "off: ENABLE_EVENT_MANAGER is not true",
            "platforms": {"teams": "ok"},
        }, (
            process.stdout.read().decode()
            if process.poll() is not None and process.stdout
            else "no answer"
        )
        assert (ROOT / "var" / "rewards.db").is_file()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        if process.stdout:
            process.stdout.close()


def test_platforms_are_mounted_by_their_settings():
    def routes(settings: Settings) -> set[str]:
        app = create_app(settings)
        return {r.resource.canonical for r in app.router.routes() if r.resource is not None}

    bare = routes(Settings())
    assert "/api/messages" in bare  # Teams: loopback-only without an app id (Emulator)
    assert "/slack/events" not in bare and "/telegram/webhook" not in bare
    full = routes(
        Settings(
            extra={
                "SLACK_BOT_TOKEN": "xoxb-test",
                "SLACK_SIGNING_SECRET": "secret",
                "TELEGRAM_BOT_TOKEN": "123:abc",
                "TELEGRAM_WEBHOOK_SECRET": "s3cret",
            }
        )
    )
    assert {"/api/messages", "/slack/events", "/telegram/webhook", "/healthz"} <= full


@pytest.mark.parametrize("teams_sdk", ["botbuilder", "agents"], indirect=True)
async def test_teams_is_served_before_and_after_its_sdk_loads(database, teams_sdk):
    """`rewards serve` mounts Teams without importing its SDK (`TEAMS_SDK`): the first request
    loads it (and so does the warm-up shortly after start); refusals stay as they were, and the
    notifier sees the Teams gateway once it is loaded ("still starting" before)."""
    from bots import teams
    from bots.notifier import app_gateways

    settings = Settings(database_url=database.url, reward_scheduler=False, teams_sdk=teams_sdk)
    app = create_app(settings)
    lazy = app[teams.LAZY]
    assert not lazy.loaded
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert not lazy.loaded  # the warm-up waits until after the start
        assert app_gateways(app) == {"teams": None}  # still starting: deliveries wait
        forwarded = await client.post(
            "/api/messages", json={"type": "message"}, headers={"X-Forwarded-For": "203.0.113.9"}
        )
        assert forwarded.status == 401  # no app id and not a loopback client: refused
        assert lazy.loaded
        assert (await client.post("/api/messages", data=b"not json")).status in (400, 415)
        gateway = app_gateways(app)["teams"]
        assert gateway is not None and gateway.backend is lazy.adapter
        assert lazy.adapter is not None and lazy.adapter.name == teams_sdk


async def test_the_teams_warm_up_loads_the_sdk_without_a_request(database):
    from bots import teams

    app = create_app(Settings(database_url=database.url, reward_scheduler=False))
    lazy = app[teams.LAZY]
    async with TestClient(TestServer(app, host="127.0.0.1")):
        await lazy.warm_up(delay=0)
        assert lazy.loaded and lazy.gateway is not None

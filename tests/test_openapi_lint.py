"""Redocly CLI's recommended rules find nothing in the OpenAPI document the server serves.

The linter is the npm package @redocly/cli, installed by scripts/test.sh into tools/openapi-lint
(`npm ci`), which also sets REWARDS_TEST_REQUIRE_OPENAPI_LINT=1 so that there a missing linter
fails the run; elsewhere the test is skipped when it is not set up.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bots.server import create_app
from rewards.settings import Settings

LINT_DIR = Path(__file__).resolve().parents[1] / "tools" / "openapi-lint"
REDOCLY = LINT_DIR / "node_modules" / "@redocly" / "cli" / "bin" / "cli.js"


def _redocly() -> Path:
    problems = []
    if shutil.which("node") is None:
        problems.append("node is not on PATH")
    if not REDOCLY.is_file():
        problems.append(f"{REDOCLY} is missing (npm ci in {LINT_DIR})")
    if problems:
        reason = "openapi lint unavailable: " + "; ".join(problems)
        reason += " -- scripts/test.sh sets it up (ensure_openapi_lint in scripts/lib.sh)"
        if os.environ.get("REWARDS_TEST_REQUIRE_OPENAPI_LINT") == "1":
            pytest.fail(reason + " [REWARDS_TEST_REQUIRE_OPENAPI_LINT=1]")
        pytest.skip(reason)
    return REDOCLY


async def test_the_served_document_lints_clean(tmp_path: Path) -> None:
    redocly = _redocly()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'rewards.db'}",
        catalog_files=(),
        reward_scheduler=False,
    )
    async with TestClient(TestServer(create_app(settings, platforms=False))) as client:
        spec = await (await client.get("/rewards/api/v1/openapi.json")).json()
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(spec), encoding="utf-8")
    env = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
    done = await asyncio.to_thread(
        subprocess.run,
        ["node", str(redocly), "lint", str(document), "--config", "redocly.yaml", "--format=json"],
        cwd=LINT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(done.stdout)
    problems = [
        f"{p['severity']} {p['ruleId']}: {p['message']} at {p['location'][0]['pointer']}"
        for p in report["problems"]
    ]
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, problems
    assert done.returncode == 0, done.stderr[-2000:]

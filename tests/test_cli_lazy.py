"""The `rewards` CLI imports a sub-command's module only when that command runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from bots.cli import COMMANDS, cli, load_command

ROOT = Path(__file__).resolve().parents[1]


def test_the_table_matches_every_command() -> None:
    for entry in COMMANDS:
        command = load_command(entry)
        assert command.name == entry.name or entry.name == "settings", entry
        assert command.get_short_help_str(limit=1000) == entry.short_help, entry.name


def test_help_lists_every_command() -> None:
    shown = CliRunner().invoke(cli, ["--help"]).output
    for entry in COMMANDS:
        assert f"  {entry.name} " in shown


def _modules_after(code: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REWARDS_ENV_FILE": os.devnull}
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_help_imports_no_command_module_and_no_sdk() -> None:
    loaded = _modules_after("from bots.cli import cli\ncli.main(['--help'], standalone_mode=False)")
    heavy = {"bots.server", "sqlalchemy", "alembic", "aiohttp", "botbuilder.core", "slack_sdk"}
    heavy |= {"slack_bolt", "telegram", "aio_pika", "apscheduler"}
    assert not heavy & loaded
    assert not {m for m in loaded if m.startswith("bots.commands.")}


def test_a_server_without_slack_or_telegram_settings_does_not_import_their_sdks() -> None:
    loaded = _modules_after(
        "from bots.server import create_app\n"
        "from rewards.settings import Settings\n"
        "create_app(Settings(database_url='sqlite+aiosqlite://'))"
    )
    assert "bots.teams" in loaded  # mounted, with its SDK (TEAMS_SDK) imported after start
    assert not {"bots.teams.adapter", "botbuilder.core", "msrest", "microsoft_agents"} & loaded
    assert "alembic" not in loaded  # imported only when a migration has to run
    assert not {"bots.slack", "slack_bolt", "slack_sdk", "bots.telegram", "telegram"} & loaded
    assert "aio_pika" not in loaded

"""Loading the catalogue into the store (SQLite and PostgreSQL), and the `rewards catalog` CLI."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from bots.commands.catalog import catalog
from rewards.catalog.loader import RewardDefinition, load_file, parse_catalog
from rewards.catalog.model import RewardKind
from rewards.clock import FixedClock
from rewards.errors import CatalogError, UnknownReward
from rewards.services.catalog import (
    get_definition,
    list_categories,
    list_definitions,
    list_groups,
    list_reward_types,
    load_catalog,
)
from rewards.store.db import Database
from rewards.store.models import Reward

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "rewards.json"
INVALID = Path(__file__).resolve().parent / "data" / "catalog" / "invalid"


def examples_json() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(EXAMPLES.read_text(encoding="utf-8"))
    return data


async def test_load_reload_and_change(database: Database, clock: FixedClock) -> None:
    definitions = load_file(EXAMPLES)
    ids = sorted(d.reward_id for d in definitions)

    first = await load_catalog(database, definitions, clock=clock)
    assert first.added == ids
    assert first.changed == first.unchanged == first.not_in_file == []
    assert sorted(first.created_types) == sorted(kind.value for kind in RewardKind)
    assert "Lottery" in first.created_categories and "Monthly Awards" in first.created_groups

    again = await load_catalog(database, load_file(EXAMPLES), clock=clock)
    assert again.unchanged == ids
    assert again.added == again.changed == []
    assert again.created_categories == again.created_groups == again.created_types == []

    edited = examples_json()
    for reward in edited:
        if reward["reward_id"] == 1013:
            reward["points"] = 6000
            reward["job"]["cron"]["hour"] = 17
    clock.advance(timedelta(hours=1))
    changed = await load_catalog(database, parse_catalog(edited), clock=clock)
    assert changed.changed == [1013]
    assert changed.unchanged == [i for i in ids if i != 1013]

    stored = await get_definition(database, 1013)
    assert stored.points == 6000
    assert stored.job is not None and stored.job.cron is not None and stored.job.cron.hour == 17
    async with database.read() as session:
        row = await session.get(Reward, 1013)
        assert row is not None
        assert row.points == 6000 and row.fingerprint == stored.fingerprint()
        assert row.updated_at == clock.now() and row.created_at < row.updated_at
        assert row.definition == stored.to_json()


async def test_rewards_missing_from_a_file_are_kept_and_reported(
    database: Database, clock: FixedClock
) -> None:
    definitions = load_file(EXAMPLES)
    await load_catalog(database, definitions, clock=clock)
    subset = [d for d in definitions if d.reward_id in (1001, 1005)]
    report = await load_catalog(database, subset, clock=clock)
    assert report.unchanged == [1001, 1005]
    assert report.not_in_file == sorted(
        d.reward_id for d in definitions if d.reward_id not in (1001, 1005)
    )
    async with database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Reward)) == len(definitions)


async def test_vocabularies_and_listing(database: Database, clock: FixedClock) -> None:
    definitions = load_file(EXAMPLES)
    await load_catalog(database, definitions, clock=clock)
    assert await list_reward_types(database) == sorted(kind.value for kind in RewardKind)
    assert await list_categories(database) == sorted({d.reward_category for d in definitions})
    assert await list_groups(database) == sorted(
        {d.reward_group for d in definitions if d.reward_group}
    )

    everything = await list_definitions(database)
    assert everything == sorted(definitions, key=lambda d: d.reward_id)
    computed = await list_definitions(database, kind=RewardKind.COMPUTED)
    assert [d.reward_id for d in computed] == [1010, 1013, 9010, 9011, 9014]
    assert all(isinstance(d, RewardDefinition) for d in computed)

    disabled = [
        d.model_copy(update={"enabled": False}) if d.reward_id == 1001 else d for d in definitions
    ]
    report = await load_catalog(database, disabled, clock=clock)
    assert report.changed == [1001]
    assert 1001 not in [d.reward_id for d in await list_definitions(database)]
    assert 1001 in [d.reward_id for d in await list_definitions(database, enabled=None)]
    assert [d.reward_id for d in await list_definitions(database, enabled=False)] == [1001]

    with pytest.raises(UnknownReward):
        await get_definition(database, 424242)


async def test_the_stored_definition_is_the_whole_reward(
    database: Database, clock: FixedClock
) -> None:
    await load_catalog(database, load_file(EXAMPLES), clock=clock)
    workflow = await get_definition(database, 7002)
    assert workflow.auto_enroll is True
    assert [s.step for s in workflow.workflow] == [
        "Product Knowledge",
        "Sales Techniques",
        "First Sale",
    ]
    assert workflow.completion_callbacks == ("rewards.callbacks.training.send_certificate",)
    nomination = await get_definition(database, 8001)
    assert nomination.nomination_config is not None
    assert nomination.nomination_config.eligible_nominees.departments == ("Sales",)
    user_badge = await get_definition(database, 1005)
    assert [e.job_code for e in user_badge.assigner] == [("MANAGER", "DIRECTOR")]


async def test_duplicate_definitions_are_refused_before_writing(
    database: Database, clock: FixedClock
) -> None:
    (one,) = [d for d in load_file(EXAMPLES) if d.reward_id == 1001]
    with pytest.raises(CatalogError, match="duplicate reward_id"):
        await load_catalog(database, [one, one], clock=clock)
    async with database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Reward)) == 0


# --------------------------------------------------------------------------------------------
# The CLI, against a SQLite file.


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "REWARDS_ENV_FILE": str(tmp_path / "no.env"),
        "REWARDS_FUNCTION_MODULES": "",
    }


def test_cli_validate_reports_a_summary(cli_env: dict[str, str]) -> None:
    result = CliRunner(env=cli_env).invoke(catalog, ["validate", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{EXAMPLES}: 26 rewards, all valid"
    assert "  Computed Badge     5" in lines
    assert "  User Badge         3" in lines
    assert lines[-1] == "  jobs               9 (cron 7, interval 1, date 1)"


def test_cli_validate_prints_every_problem(cli_env: dict[str, str]) -> None:
    result = CliRunner(env=cli_env).invoke(
        catalog, ["validate", str(INVALID / "several_problems.json")]
    )
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        '2102  points  Input should be a valid integer, got "100"',
        "2102  rules[0][1].count  Input should be greater than or equal to 1, got 0",
        "2102  job  a Computed Badge needs a job (when to run); "
        "without one it would never be awarded",
        "#3  reward_id  required",
        '#3  multiple  Input should be a valid boolean, got "yes"',
        "2101  reward_id  duplicate reward_id 2101 (also reward #1)",
    ]
    assert "6 problems" in result.stderr


def test_cli_load_adds_then_reports_unchanged(tmp_path: Path, cli_env: dict[str, str]) -> None:
    runner = CliRunner(env=cli_env)
    first = runner.invoke(catalog, ["load", str(EXAMPLES)])
    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()
    assert lines[0].startswith("added (26): 1001, 1005, 1007, 1010, 1013, 3000")
    assert lines[1:3] == ["changed (0): -", "unchanged (0): -"]
    assert any(line.startswith("created categories: ") and "Lottery" in line for line in lines)

    edited = tmp_path / "edited.json"
    rewards = examples_json()
    rewards[0]["points"] = 11
    edited.write_text(json.dumps(rewards[:5]))
    second = runner.invoke(catalog, ["load", str(edited)])
    assert second.exit_code == 0, second.output
    assert second.stdout.splitlines()[:3] == [
        "added (0): -",
        f"changed (1): {rewards[0]['reward_id']}",
        "unchanged (4): "
        + ", ".join(
            str(r["reward_id"]) for r in sorted(rewards[1:5], key=lambda r: r["reward_id"])
        ),
    ]
    assert second.stdout.splitlines()[3].startswith("not in file, left as they are (21): ")


def test_cli_load_refuses_an_invalid_file_and_loads_nothing(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    bad = tmp_path / "mixed.json"
    rewards = examples_json()[:3] + json.loads((INVALID / "bad_cron_field.json").read_text())
    bad.write_text(json.dumps(rewards))
    runner = CliRunner(env=cli_env)
    result = runner.invoke(catalog, ["load", str(bad)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["2004  job.cron.hour  24 is outside 0-23"]
    assert "Nothing was loaded." in result.stderr
    assert not (tmp_path / "cli.db").exists()  # validation fails before the database is touched

    ok = runner.invoke(catalog, ["load", str(EXAMPLES)])
    assert ok.exit_code == 0
    before = _stored(tmp_path / "cli.db")
    again = runner.invoke(catalog, ["load", str(bad)])
    assert again.exit_code == 1
    assert _stored(tmp_path / "cli.db") == before


def _stored(path: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT id, fingerprint, updated_at FROM reward ORDER BY id").fetchall()


def test_cli_reports_unreadable_files(tmp_path: Path, cli_env: dict[str, str]) -> None:
    runner = CliRunner(env=cli_env)
    result = runner.invoke(catalog, ["validate", str(tmp_path / "missing.json")])
    assert result.exit_code == 1
    assert result.stdout.startswith("-  (file)  cannot read")
    broken = tmp_path / "broken.json"
    broken.write_text("[{]")
    result = runner.invoke(catalog, ["validate", str(broken)])
    assert result.exit_code == 1
    assert result.stdout.startswith("-  line 1, column 3  invalid JSON")

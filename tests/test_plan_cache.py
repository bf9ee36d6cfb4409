"""PostgreSQL plans a turn's statements once, and the rule evaluations' for their values.

A turn's look-ups and writes by key run under PostgreSQL's default plan cache mode (a statement
run five times may switch to its generic plan, planning once); the rule evaluations run over
date windows and the whole population, where the generic plan was 2-5x slower, so every
transaction inside `custom_plans` (the sweep, a reward's evaluation) asks for custom plans.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from rewards.core import Core
from rewards.rules import evaluate
from rewards.settings import Settings
from rewards.store.db import Database, custom_plans


async def _mode(database: Database, how: str) -> str:
    if how == "write":
        async with database.write() as session:
            return str(await session.scalar(text("SHOW plan_cache_mode")))
    if how == "unit":
        async with database.unit(), database.read() as session:
            return str(await session.scalar(text("SHOW plan_cache_mode")))
    async with database.read() as session:
        return str(await session.scalar(text("SHOW plan_cache_mode")))


@pytest.fixture
def postgresql(database: Database) -> Database:
    if database.is_sqlite:
        pytest.skip("PostgreSQL's plan cache")
    return database


@pytest.mark.parametrize("how", ["read", "write", "unit"])
async def test_a_turn_plans_by_default_and_a_rule_evaluation_for_its_values(
    postgresql: Database, how: str
) -> None:
    assert await _mode(postgresql, how) == "auto"
    with custom_plans():
        assert await _mode(postgresql, how) == "force_custom_plan"
    assert await _mode(postgresql, how) == "auto"  # SET LOCAL: gone with its transaction


async def test_the_sweep_evaluates_with_custom_plans(
    postgresql: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    async def definitions(db: Database) -> list[Any]:
        seen.append(await _mode(db, "read"))
        return []

    monkeypatch.setattr(evaluate, "list_definitions", definitions)
    settings = Settings(database_url=postgresql.url, reward_scheduler=False)
    core = Core(settings=settings, db=postgresql)
    await evaluate.sweep(core, now=datetime(2026, 12, 7, 9, tzinfo=UTC))
    assert seen == ["force_custom_plan"]
    assert await _mode(postgresql, "read") == "auto"

"""Storing the catalogue: upsert validated definitions, read them back, list the vocabularies.

`load_catalog` is the only writer. It runs in one transaction, so a load either applies the whole
file or nothing, and it never deletes: rewards in the database that the file does not mention are
left as they are and reported as `not_in_file` (awards point at them, and a file that forgot a
reward must not erase its history). Loads are serialised (PostgreSQL advisory lock; SQLite's
write lock), so two replicas starting together do not race on the same rows.

Each stored reward keeps the whole normalised definition (`Reward.definition`) and its sha256
(`Reward.fingerprint`), which is how a reload tells changed rewards from unchanged ones; the
columns next to it (name, points, type...) are copies for queries and joins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.catalog.loader import RewardDefinition, definition_from_json
from rewards.catalog.model import RewardKind
from rewards.clock import Clock
from rewards.errors import CatalogError, CatalogProblem, UnknownReward
from rewards.store.db import Database
from rewards.store.models import Reward, RewardCategory, RewardGroup, RewardType

# Any constant works; it only has to be the same in every process that loads catalogues.
_LOAD_LOCK = 0x5EED_CA7A


@dataclass(frozen=True)
class LoadReport:
    """What a load did, by reward id (sorted), plus the names it had to create."""

    added: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    not_in_file: list[int] = field(default_factory=list)
    created_categories: list[str] = field(default_factory=list)
    created_groups: list[str] = field(default_factory=list)
    created_types: list[str] = field(default_factory=list)


async def _ensure_names(
    session: AsyncSession, model: Any, names: set[str]
) -> tuple[dict[str, int], list[str]]:
    """Ids of `names` in a name table, inserting the missing ones (without racing other writers)."""
    if not names:
        return {}, []
    existing = {
        row.name: row.id
        for row in (
            await session.execute(select(model.id, model.name).where(col(model.name).in_(names)))
        )
    }
    missing = sorted(names - set(existing))
    if missing:
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = (
            insert(model).values([{"name": name} for name in missing]).on_conflict_do_nothing()
        )
        await session.execute(statement)
        existing = {
            row.name: row.id
            for row in (
                await session.execute(
                    select(model.id, model.name).where(col(model.name).in_(names))
                )
            )
        }
    return {name: int(ident) for name, ident in existing.items()}, missing


def _columns(
    definition: RewardDefinition, ids: dict[str, dict[str, int]], fingerprint: str
) -> dict[str, Any]:
    return {
        "name": definition.reward,
        "description": definition.description,
        "points": definition.points,
        "reward_type_id": ids["types"][definition.reward_type.value],
        "category_id": ids["categories"][definition.reward_category],
        "group_id": ids["groups"][definition.reward_group] if definition.reward_group else None,
        "multiple": definition.multiple,
        "timeframe": definition.timeframe.value if definition.timeframe else None,
        "icon": definition.icon,
        "definition": definition.to_json(),
        "fingerprint": fingerprint,
        "enabled": definition.enabled,
    }


async def seed_reward_types(session: AsyncSession) -> list[str]:
    """Make sure the six reward types exist; return the ones created."""
    _, created = await _ensure_names(session, RewardType, {kind.value for kind in RewardKind})
    return created


async def load_catalog(
    db: Database, definitions: Sequence[RewardDefinition], *, clock: Clock
) -> LoadReport:
    """Upsert `definitions` by reward_id in one transaction and report what happened."""
    seen: dict[int, int] = {}
    problems = []
    for position, definition in enumerate(definitions, start=1):
        if definition.reward_id in seen:
            problems.append(
                CatalogProblem(
                    definition.reward_id,
                    "reward_id",
                    f"duplicate reward_id (also definition #{seen[definition.reward_id]})",
                )
            )
        seen.setdefault(definition.reward_id, position)
    if problems:
        raise CatalogError(problems)
    now = clock.now()
    added: list[int] = []
    changed: list[int] = []
    unchanged: list[int] = []
    async with db.write() as session:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOAD_LOCK})
        types, created_types = await _ensure_names(
            session, RewardType, {kind.value for kind in RewardKind}
        )
        categories, created_categories = await _ensure_names(
            session, RewardCategory, {d.reward_category for d in definitions}
        )
        groups, created_groups = await _ensure_names(
            session, RewardGroup, {d.reward_group for d in definitions if d.reward_group}
        )
        ids = {"types": types, "categories": categories, "groups": groups}
        rows = {
            row.id: row
            for row in (
                await session.scalars(select(Reward).where(col(Reward.id).in_(list(seen))))
            ).all()
        }
        for definition in definitions:
            fingerprint = definition.fingerprint()
            values = _columns(definition, ids, fingerprint)
            row = rows.get(definition.reward_id)
            if row is None:
                session.add(
                    Reward(id=definition.reward_id, created_at=now, updated_at=now, **values)
                )
                added.append(definition.reward_id)
            elif row.fingerprint == fingerprint:
                unchanged.append(definition.reward_id)
            else:
                for name, value in values.items():
                    setattr(row, name, value)
                row.updated_at = now
                changed.append(definition.reward_id)
        others = await session.scalars(
            select(col(Reward.id)).where(col(Reward.id).not_in(list(seen)))
        )
        not_in_file = sorted(int(ident) for ident in others.all())
    return LoadReport(
        added=sorted(added),
        changed=sorted(changed),
        unchanged=sorted(unchanged),
        not_in_file=not_in_file,
        created_categories=created_categories,
        created_groups=created_groups,
        created_types=created_types,
    )


async def get_definition(db: Database, reward_id: int) -> RewardDefinition:
    """The stored definition of one reward, rebuilt (and re-validated) from its JSON."""
    async with db.read() as session:
        stored = await session.scalar(
            select(col(Reward.definition)).where(col(Reward.id) == reward_id)
        )
    if stored is None:
        raise UnknownReward(f"There is no reward with id {reward_id}.")
    return definition_from_json(stored)


async def list_definitions(
    db: Database, *, kind: RewardKind | None = None, enabled: bool | None = True
) -> list[RewardDefinition]:
    """Stored definitions by reward id; `kind` filters by type, `enabled=None` includes all."""
    query = select(col(Reward.definition)).order_by(col(Reward.id))
    if kind is not None:
        query = query.join(RewardType, col(RewardType.id) == col(Reward.reward_type_id)).where(
            col(RewardType.name) == kind.value
        )
    if enabled is not None:
        query = query.where(col(Reward.enabled) == enabled)
    async with db.read() as session:
        stored = (await session.scalars(query)).all()
    return [definition_from_json(data) for data in stored]


async def _names(db: Database, model: Any) -> list[str]:
    async with db.read() as session:
        return [
            str(name)
            for name in (await session.scalars(select(model.name).order_by(model.name))).all()
        ]


async def list_categories(db: Database) -> list[str]:
    return await _names(db, RewardCategory)


async def list_groups(db: Database) -> list[str]:
    return await _names(db, RewardGroup)


async def list_reward_types(db: Database) -> list[str]:
    return await _names(db, RewardType)

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
from rewards.store.db import CATALOG, Database, Fixed, run_fixed, turn_cache
from rewards.store.models import CatalogVersion, Reward, RewardCategory, RewardGroup, RewardType

VERSION_TABLE = CatalogVersion.__table__  # type: ignore[attr-defined]

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
        version = select(VERSION_TABLE.c.version).where(VERSION_TABLE.c.id == 1)
        if added or changed or await session.scalar(version) is None:
            await bump_version(session)
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


async def bump_version(session: AsyncSession) -> None:
    """Tell every process that the stored catalogue changed (in the caller's transaction).

    Whatever writes `reward` rows must call it: the cached definitions are only re-read when
    this number moves."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(VERSION_TABLE).values(id=1, version=1)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[VERSION_TABLE.c.id], set_={"version": VERSION_TABLE.c.version + 1}
        )
    )


@dataclass(frozen=True)
class _Stored:
    """One stored reward as the cache keeps it."""

    reward_id: int
    kind: str
    enabled: bool
    definition: RewardDefinition


@dataclass(frozen=True)
class _Snapshot:
    version: int
    rewards: tuple[_Stored, ...]


# Built once: every turn and every batch of event hooks runs it, and a statement built per call is
# cache-keyed anew each time.
_READ_VERSION = Fixed(
    select(VERSION_TABLE.c.version).where(VERSION_TABLE.c.id == 1),
    writes=False,
    returns_rows=True,
)


async def _version(session: AsyncSession) -> int | None:
    """The stored catalogue version, read once per turn (inside a unit); None when the row is
    missing, in which case nothing is cached."""
    turn = turn_cache(session, CATALOG)
    if turn is not None and "version" in turn:
        known: int | None = turn["version"]
        return known
    rows = await run_fixed(session, _READ_VERSION, {})
    version = rows[0][0] if rows else None
    if turn is not None:
        turn["version"] = version
    return None if version is None else int(version)


async def _stored(db: Database) -> tuple[_Stored, ...]:
    """Every stored reward, by id: from the process's cache while the version stands, else read
    (and parsed) once and cached under the version that was read before the rows."""
    async with db.read() as session:
        version = await _version(session)
        cached = db.memo.get(CATALOG)
        if version is not None and isinstance(cached, _Snapshot) and cached.version == version:
            return cached.rewards
        rows = (
            await session.execute(
                select(
                    col(Reward.id),
                    col(Reward.definition),
                    col(Reward.enabled),
                    col(RewardType.name),
                )
                .join(RewardType, col(RewardType.id) == col(Reward.reward_type_id))
                .order_by(col(Reward.id))
            )
        ).all()
    rewards = tuple(
        _Stored(int(ident), str(kind), bool(enabled), definition_from_json(data))
        for ident, data, enabled, kind in rows
    )
    if version is not None:
        db.memo[CATALOG] = _Snapshot(version, rewards)
    return rewards


async def get_definition(db: Database, reward_id: int) -> RewardDefinition:
    """The stored definition of one reward, rebuilt (and re-validated) from its JSON."""
    for stored in await _stored(db):
        if stored.reward_id == reward_id:
            return stored.definition
    raise UnknownReward(f"There is no reward with id {reward_id}.")


async def list_definitions(
    db: Database, *, kind: RewardKind | None = None, enabled: bool | None = True
) -> list[RewardDefinition]:
    """Stored definitions by reward id; `kind` filters by type, `enabled=None` includes all.

    Served from the process's cache, checked against the catalogue version once per turn."""
    return [
        stored.definition
        for stored in await _stored(db)
        if (kind is None or stored.kind == kind.value)
        and (enabled is None or stored.enabled == enabled)
    ]


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

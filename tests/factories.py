"""Test data builders that write straight to the store, so core tests do not depend on the
catalogue loader or the member import (which have their own tests)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from rewards.services.catalog import bump_version
from rewards.store.db import Database
from rewards.store.models import Award, Member, MemberGroup, Reward, RewardCategory, RewardType

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def add_member(
    db: Database,
    name: str,
    *,
    job_code: str | None = "EMPLOYEE",
    department: str | None = "Engineering",
    groups: tuple[str, ...] = (),
    timezone: str | None = None,
    opt_out: bool = False,
    active: bool = True,
    birthday: tuple[int, int] | None = None,
    hired: date | None = None,
    celebrations_opt_out: bool = False,
) -> int:
    """A member; `birthday` is (month, day), `hired` the hire date (celebration rules)."""
    async with db.write() as session:
        member = Member(
            email=f"{name.lower().replace(' ', '.')}@example.com",
            display_name=name,
            job_code=job_code,
            department=department,
            timezone=timezone,
            leaderboard_opt_out=opt_out,
            active=active,
            birthday_month=birthday[0] if birthday else None,
            birthday_day=birthday[1] if birthday else None,
            hire_date=hired,
            celebrations_opt_out=celebrations_opt_out,
            created_at=T0,
            updated_at=T0,
        )
        session.add(member)
        await session.flush()
        assert member.id is not None
        session.add_all(MemberGroup(member_id=member.id, name=g) for g in groups)
        return member.id


async def _named(session: Any, model: Any, name: str) -> int:
    found = await session.scalar(select(model.id).where(model.name == name))
    if found is not None:
        return int(found)
    row = model(name=name)
    session.add(row)
    await session.flush()
    return int(row.id)


async def add_reward(db: Database, **definition: Any) -> int:
    """Store a reward from catalogue-style fields (defaults: a User Badge worth 10 points)."""
    definition.setdefault("reward", f"Badge {definition['reward_id']}")
    definition.setdefault("reward_category", "Recognition")
    definition.setdefault("reward_type", "User Badge")
    definition.setdefault("points", 10)
    async with db.write() as session:
        category = await _named(session, RewardCategory, definition["reward_category"])
        kind = await _named(session, RewardType, definition["reward_type"])
        session.add(
            Reward(
                id=definition["reward_id"],
                name=definition["reward"],
                points=definition["points"],
                reward_type_id=kind,
                category_id=category,
                multiple=definition.get("multiple", False),
                timeframe=definition.get("timeframe"),
                definition=definition,
                fingerprint=hashlib.sha256(
                    json.dumps(definition, sort_keys=True).encode()
                ).hexdigest(),
                created_at=T0,
                updated_at=T0,
            )
        )
        await bump_version(session)
    return int(definition["reward_id"])


async def add_welcome(db: Database, **fields: Any) -> int:
    """The seed's "Welcome to Navigator": an Automated Badge paying 10 points per login day."""
    return await add_reward(
        db,
        reward_id=1007,
        reward="Welcome to Navigator",
        reward_type="Automated Badge",
        multiple=True,
        points=10,
        **fields,
    )


async def award_points(db: Database) -> list[tuple[int, int, int]]:
    """(reward id, member id, points) of every award, in order."""
    query = select(Award.reward_id, Award.member_id, Award.points).order_by(Award.id)  # type: ignore[arg-type]
    async with db.read() as session:
        return [(int(r), int(m), int(p)) for r, m, p in (await session.execute(query)).all()]

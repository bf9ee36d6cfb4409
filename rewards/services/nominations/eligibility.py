"""Who may nominate, be nominated and vote: a member's facts checked against one of the
`MemberCriteria` of the reward's `nomination_config` (`eligible_nominators`, `eligible_nominees`,
`eligible_voters`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.catalog.rules import MemberCriteria
from rewards.store.models import Member, MemberGroup


@dataclass(frozen=True)
class MemberFacts:
    """What the criteria look at in a member."""

    id: int
    name: str
    active: bool
    job_code: str | None
    department: str | None
    groups: frozenset[str]
    hire_date: date | None
    giving_locked: bool = False  # an admin's `/lock`: may be nominated, not nominate or vote


async def load_members(session: AsyncSession, ids: list[int]) -> dict[int, MemberFacts]:
    """The facts of the members with these ids (the unknown left out), read in the caller's
    transaction."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = (await session.execute(select(Member).where(col(Member.id).in_(wanted)))).scalars().all()
    groups: dict[int, set[str]] = {}
    for member_id, name in await session.execute(
        select(col(MemberGroup.member_id), col(MemberGroup.name)).where(
            col(MemberGroup.member_id).in_(wanted)
        )
    ):
        groups.setdefault(member_id, set()).add(name)
    found = {}
    for row in rows:
        assert row.id is not None
        found[row.id] = MemberFacts(
            id=row.id,
            name=row.display_name,
            active=row.active,
            job_code=row.job_code,
            department=row.department,
            groups=frozenset(groups.get(row.id, ())),
            hire_date=row.hire_date,
            giving_locked=row.giving_locked_at is not None,
        )
    return found


def matches(criteria: MemberCriteria, who: MemberFacts, today: date) -> bool:
    """Whether an active member is in the population `criteria` describes (empty: everyone)."""
    if not who.active:
        return False
    if criteria.job_codes and (who.job_code or "").casefold() not in {
        j.casefold() for j in criteria.job_codes
    }:
        return False
    if criteria.departments and (who.department or "").casefold() not in {
        d.casefold() for d in criteria.departments
    }:
        return False
    if criteria.groups and not {g.casefold() for g in who.groups} & {
        g.casefold() for g in criteria.groups
    }:
        return False
    if criteria.min_tenure_days:
        latest = today - timedelta(days=criteria.min_tenure_days)
        if who.hire_date is None or who.hire_date > latest:
            return False
    return True

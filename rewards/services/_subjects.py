"""Loading the member attributes that permissions, time zones and messages need, in one query."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.catalog.permissions import Subject
from rewards.errors import UnknownMember
from rewards.services.members import MemberView, cached_member
from rewards.store.models import Member, MemberGroup


@dataclass(frozen=True)
class Person:
    """A member as the award and kudos pipelines see them."""

    subject: Subject
    display_name: str
    timezone: str | None
    active: bool
    # An admin locked their giving (`rewards.admin.locks`): they may receive, not give.
    giving_locked: bool = False

    @property
    def id(self) -> int:
        return self.subject.id

    def template_vars(self) -> dict[str, object]:
        """What a message template may read as `user` (never the birthday or manager)."""
        return {
            "id": self.subject.id,
            "display_name": self.display_name,
            "first_name": self.display_name.split(" ")[0],
            "email": self.subject.email,
            "job_code": self.subject.job_code,
            "department": self.subject.department,
        }


def _from_view(view: MemberView) -> Person:
    return Person(
        subject=Subject(
            id=view.id,
            email=view.email,
            job_code=view.job_code,
            department=view.department,
            groups=frozenset(view.groups),
        ),
        display_name=view.display_name,
        timezone=view.timezone,
        active=view.active,
        giving_locked=view.giving_locked_at is not None,
    )


async def load_people(session: AsyncSession, ids: Iterable[int]) -> dict[int, Person]:
    """The people with these ids (absent: unknown). Members this turn already looked up (the
    adapter vetted them) are taken from the turn's cache: they are not read twice."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    cached = {m: cached_member(session, m) for m in wanted}
    if all(view is not None for view in cached.values()):
        return {m: _from_view(view) for m, view in cached.items() if view is not None}
    rows = (await session.execute(select(Member).where(col(Member.id).in_(wanted)))).scalars().all()
    groups: dict[int, set[str]] = {}
    for member_id, name in await session.execute(
        select(col(MemberGroup.member_id), col(MemberGroup.name)).where(
            col(MemberGroup.member_id).in_(wanted)
        )
    ):
        groups.setdefault(member_id, set()).add(name)
    people = {}
    for row in rows:
        assert row.id is not None
        people[row.id] = Person(
            subject=Subject(
                id=row.id,
                email=row.email,
                job_code=row.job_code,
                department=row.department,
                groups=frozenset(groups.get(row.id, ())),
            ),
            display_name=row.display_name,
            timezone=row.timezone,
            active=row.active,
            giving_locked=row.giving_locked_at is not None,
        )
    return people


async def load_person(session: AsyncSession, member_id: int) -> Person:
    people = await load_people(session, [member_id])
    if member_id not in people:
        raise UnknownMember(f"I don't know a member with id {member_id}.")
    return people[member_id]

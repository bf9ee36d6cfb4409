"""Reciprocity rings: pairs and small cycles of members who mostly give to each other.

Three steps, the heavy one in SQL:

1. the heavy edges, in one statement: a (giver, receiver) pair of the window carrying at least
   `edge_share` of what the receiver got from people and at least `ring_min_kudos` gifts;
2. cycles of two to `ring_max_size` members over those few edges, in memory (a depth-first walk
   from each member through larger ids only, so each cycle is found once);
3. each cycle's member set judged on exact figures read for those members only: every member
   received at least `ring_share` of their points from the others and gave at least
   `ring_share` of theirs to them. The largest qualifying sets are reported; a set inside a
   reported ring is not reported again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from rewards.integrity.model import Thresholds
from rewards.integrity.sql import edges


@dataclass(frozen=True)
class Flow:
    """Gifts and points, one way or in total."""

    gifts: int = 0
    points: int = 0


@dataclass(frozen=True)
class RingFigures:
    """A qualifying ring's figures per member: received (total, from the ring) and given
    (total, to the ring)."""

    members: tuple[int, ...]
    received: dict[int, Flow]
    from_ring: dict[int, Flow]
    given: dict[int, Flow]
    to_ring: dict[int, Flow]


def share_of(part: Flow, whole: Flow) -> float:
    """The share `part` is of `whole`: by points, or by gifts where no points were involved."""
    if whole.points > 0:
        return part.points / whole.points
    return part.gifts / whole.gifts if whole.gifts else 0.0


async def heavy_edges(
    session: AsyncSession, since: datetime, until: datetime, limits: Thresholds
) -> list[tuple[int, int]]:
    """(giver, receiver) pairs that carry a large share of what the receiver got."""
    edge = edges(since, until)
    received = (
        select(
            edge.c.receiver.label("member"),
            func.sum(edge.c.gifts).label("gifts"),
            func.sum(edge.c.points).label("points"),
        )
        .group_by(edge.c.receiver)
        .subquery("received")
    )
    share = limits.edge_share
    query = (
        select(edge.c.giver, edge.c.receiver)
        .join(received, received.c.member == edge.c.receiver)
        .where(
            edge.c.gifts >= limits.ring_min_kudos,
            case(
                (received.c.points > 0, edge.c.points >= received.c.points * share),
                else_=edge.c.gifts >= received.c.gifts * share,
            ),
        )
    )
    return [(int(g), int(r)) for g, r in (await session.execute(query)).all()]


def cycles(pairs: Iterable[tuple[int, int]], max_size: int) -> set[frozenset[int]]:
    """The member sets of the directed cycles of 2..`max_size` members among `pairs`."""
    edges = set(pairs)
    # Only members with a heavy edge in and one out can be on a cycle: drop the others until
    # none is left to drop, so a giver who is heavy for a hundred receivers (a manager thanking
    # the team) is not walked from at all unless someone gives back.
    while True:
        givers = {g for g, _ in edges}
        receivers = {r for _, r in edges}
        kept = {(g, r) for g, r in edges if g in receivers and r in givers}
        if kept == edges:
            break
        edges = kept
    following: dict[int, set[int]] = {}
    for giver, receiver in edges:
        following.setdefault(giver, set()).add(receiver)
    found: set[frozenset[int]] = set()

    def walk(start: int, path: list[int]) -> Iterator[frozenset[int]]:
        for nxt in following.get(path[-1], ()):
            if nxt == start and len(path) >= 2:
                yield frozenset(path)
            elif nxt > start and nxt not in path and len(path) < max_size:
                yield from walk(start, [*path, nxt])

    for start in sorted(following):
        found.update(walk(start, [start]))
    return found


async def _figures(
    session: AsyncSession, since: datetime, until: datetime, members: set[int]
) -> tuple[dict[int, Flow], dict[int, Flow], dict[tuple[int, int], Flow]]:
    """For `members` only: what each received and gave in the window, and the edges among
    them."""
    edge = edges(since, until)
    ids = sorted(members)
    rows = (
        await session.execute(
            select(edge.c.giver, edge.c.receiver, edge.c.gifts, edge.c.points).where(
                or_(edge.c.giver.in_(ids), edge.c.receiver.in_(ids))
            )
        )
    ).all()
    received: dict[int, Flow] = {}
    given: dict[int, Flow] = {}
    among: dict[tuple[int, int], Flow] = {}
    for giver, receiver, gifts, points in rows:
        flow = Flow(int(gifts), int(points or 0))
        if receiver in members:
            was = received.get(receiver, Flow())
            received[receiver] = Flow(was.gifts + flow.gifts, was.points + flow.points)
        if giver in members:
            was = given.get(giver, Flow())
            given[giver] = Flow(was.gifts + flow.gifts, was.points + flow.points)
        if giver in members and receiver in members:
            among[(int(giver), int(receiver))] = flow
    return received, given, among


def _judge(
    ring: frozenset[int],
    received: dict[int, Flow],
    given: dict[int, Flow],
    among: dict[tuple[int, int], Flow],
    limits: Thresholds,
) -> RingFigures | None:
    from_ring: dict[int, Flow] = {}
    to_ring: dict[int, Flow] = {}
    for member in ring:
        inbound = [among.get((other, member), Flow()) for other in ring if other != member]
        outbound = [among.get((member, other), Flow()) for other in ring if other != member]
        from_ring[member] = Flow(sum(f.gifts for f in inbound), sum(f.points for f in inbound))
        to_ring[member] = Flow(sum(f.gifts for f in outbound), sum(f.points for f in outbound))
        if from_ring[member].gifts < limits.ring_min_kudos:
            return None
        if share_of(from_ring[member], received.get(member, Flow())) < limits.ring_share:
            return None
        if share_of(to_ring[member], given.get(member, Flow())) < limits.ring_share:
            return None
    return RingFigures(tuple(sorted(ring)), received, from_ring, given, to_ring)


async def find_rings(
    session: AsyncSession, since: datetime, until: datetime, limits: Thresholds
) -> list[RingFigures]:
    """The reciprocity rings of the window, largest first."""
    candidates = cycles(await heavy_edges(session, since, until, limits), limits.ring_max_size)
    if not candidates:
        return []
    received, given, among = await _figures(session, since, until, set().union(*candidates))
    rings: list[RingFigures] = []
    for ring in sorted(candidates, key=lambda s: (-len(s), sorted(s))):
        if any(ring <= set(kept.members) for kept in rings):
            continue
        judged = _judge(ring, received, given, among, limits)
        if judged is not None:
            rings.append(judged)
    return rings


__all__ = ["Flow", "RingFigures", "cycles", "find_rings", "heavy_edges", "share_of"]

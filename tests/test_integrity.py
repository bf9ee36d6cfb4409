"""The integrity report on a generated organisation of 10,000 members with a quarter of ordinary
activity (teams of ten, most kudos inside the team, a heavy tail of keen givers, a few
colleagues who thank each other now and then, an open campaign with votes spread over three
days): nothing stands out. Then a ring of three, a pair, a giver's burst and a vote burst are
planted, and the report finds exactly them. Generated with bulk inserts, on SQLite and
PostgreSQL."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from rewards.integrity import build_report
from rewards.store.db import Database
from rewards.store.models import (
    Kudos,
    KudosReceiver,
    LedgerEntry,
    Member,
    Nomination,
    NominationCampaign,
    NominationVote,
)
from tests.factories import T0, add_reward

MEMBERS = 10_000
TEAM = 10
DAYS = 90
NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=DAYS)
POINTS = 5
REWARD = 7100
CAMPAIGN = 1
NOMINEES = (11, 22, 33, 44, 55)
VOTING_STARTS = NOW - timedelta(days=3)


@dataclass
class Org:
    """What was inserted, so plants continue the ids."""

    kudos: int = 0
    votes: int = 0
    voters: set[int] = field(default_factory=set)
    kudos_rows: list[dict[str, Any]] = field(default_factory=list)
    receiver_rows: list[dict[str, Any]] = field(default_factory=list)
    ledger_rows: list[dict[str, Any]] = field(default_factory=list)
    vote_rows: list[dict[str, Any]] = field(default_factory=list)

    def give(self, giver: int, receivers: list[int], at: datetime) -> None:
        self.kudos += 1
        self.kudos_rows.append(
            {
                "id": self.kudos,
                "giver_id": giver,
                "message": "thanks",
                "visibility": "public",
                "created_at": at,
            }
        )
        for receiver in receivers:
            self.receiver_rows.append(
                {"kudos_id": self.kudos, "member_id": receiver, "created_at": at}
            )
            self.ledger_rows.append(
                {
                    "member_id": receiver,
                    "points": POINTS,
                    "kind": "kudos",
                    "kudos_id": self.kudos,
                    "created_at": at,
                }
            )

    def vote(self, voter: int, nominee: int, at: datetime) -> None:
        assert voter not in self.voters
        self.voters.add(voter)
        self.votes += 1
        self.vote_rows.append(
            {
                "id": self.votes,
                "campaign_id": CAMPAIGN,
                "voter_id": voter,
                "slot": 0,
                "nominee_id": nominee,
                "cast_at": at,
            }
        )

    async def flush(self, db: Database) -> None:
        async with db.write() as session:
            await bulk(session, Kudos, self.kudos_rows)
            await bulk(session, KudosReceiver, self.receiver_rows)
            await bulk(session, LedgerEntry, self.ledger_rows)
            await bulk(session, NominationVote, self.vote_rows)
        self.kudos_rows, self.receiver_rows, self.ledger_rows, self.vote_rows = [], [], [], []


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy stores it in SQLite: naive UTC text for `UTCDateTime`, 0/1."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


async def bulk(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (every NOT NULL column given) through the raw driver, in the session's
    transaction: a binary COPY on PostgreSQL, one executemany on SQLite. (SQLAlchemy's own
    executemany spent most of the generation converting 120,000 rows' values.)"""
    if not rows:
        return
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    columns = list(rows[0])
    if connection.dialect.name == "postgresql":
        records = [tuple(row[c] for c in columns) for row in rows]
        await raw.copy_records_to_table(model.__tablename__, records=records, columns=columns)
        return
    marks = ", ".join("?" for _ in columns)
    sql = f"INSERT INTO {model.__tablename__} ({', '.join(columns)}) VALUES ({marks})"
    await raw.executemany(sql, [tuple(_sqlite_value(row[c]) for c in columns) for row in rows])


def _work_time(rng: random.Random) -> datetime:
    day = SINCE + timedelta(days=rng.randrange(DAYS))
    return day.replace(hour=rng.randrange(8, 18), minute=rng.randrange(60))


async def ordinary_organisation(db: Database) -> Org:
    rng = random.Random(2026)
    org = Org()
    async with db.write() as session:
        rows = [
            {
                "id": m,
                "email": f"member{m}@example.com",
                "display_name": f"Member {m}",
                "department": f"Team {(m - 1) // TEAM}",
                "active": True,
                "leaderboard_opt_out": False,
                "celebrations_opt_out": False,
                "created_at": T0,
                "updated_at": T0,
            }
            for m in range(1, MEMBERS + 1)
        ]
        await bulk(session, Member, rows)
    for giver in range(1, MEMBERS + 1):
        team = (giver - 1) // TEAM * TEAM
        mates = [team + i for i in range(1, TEAM + 1) if team + i != giver]
        # Most give a few kudos a quarter; a heavy tail gives dozens.
        for _ in range(int(rng.expovariate(1 / 4))):
            count = 2 if rng.random() < 0.1 else 1
            pool = mates if rng.random() < 0.7 else None
            receivers: set[int] = set()
            while len(receivers) < count:
                pick = rng.choice(pool) if pool else rng.randrange(1, MEMBERS + 1)
                if pick != giver:
                    receivers.add(pick)
            org.give(giver, sorted(receivers), _work_time(rng))
    # Colleagues who thank each other now and then (one to three times each way).
    for _ in range(300):
        a, b = rng.sample(range(1, MEMBERS + 1), 2)
        for _ in range(rng.randint(1, 3)):
            org.give(a, [b], _work_time(rng))
            org.give(b, [a], _work_time(rng))
    # An open campaign: five candidates, 240 votes spread over three days of voting.
    await add_reward(
        db, reward_id=REWARD, reward="Star of the Quarter", reward_type="Nomination Badge"
    )
    async with db.write() as session:
        await session.execute(
            insert(NominationCampaign),
            [
                {
                    "id": CAMPAIGN,
                    "key": "generated",
                    "reward_id": REWARD,
                    "status": "voting",
                    "opened_at": NOW - timedelta(days=10),
                    "nominations_close_at": VOTING_STARTS,
                    "voting_close_at": NOW + timedelta(days=4),
                    "outcome": {},
                    "messages": [],
                }
            ],
        )
        await session.execute(
            insert(Nomination),
            [
                {
                    "campaign_id": CAMPAIGN,
                    "nominator_id": 1000 + n,
                    "nominee_id": nominee,
                    "reason": "great quarter",
                    "created_at": NOW - timedelta(days=5),
                }
                for n, nominee in enumerate(NOMINEES)
            ],
        )
    for voter in rng.sample(range(1, 5001), 240):
        at = VOTING_STARTS + timedelta(seconds=rng.randrange(3 * 24 * 3600 - 3600))
        org.vote(voter, rng.choice(NOMINEES), at)
    await org.flush(db)
    return org


RING = (5001, 6502, 8003)  # in three different teams
PAIR = (7004, 9105)
BURSTER = 4321
BURST_DAY = (NOW - timedelta(days=12)).replace(hour=9, minute=0)
VOTE_BURST = (NOW - timedelta(days=1)).replace(hour=3, minute=0)  # 03:00 UTC, a quiet hour


async def plant(db: Database, org: Org) -> None:
    rng = random.Random(7)
    a, b, c = RING
    for giver, receiver, times in ((a, b, 12), (b, c, 12), (c, a, 12), (b, a, 4), (c, b, 4)):
        for _ in range(times):
            org.give(giver, [receiver], _work_time(rng))
    for _ in range(8):
        org.give(PAIR[0], [PAIR[1]], _work_time(rng))
        org.give(PAIR[1], [PAIR[0]], _work_time(rng))
    for n in range(30):  # one giver thanks thirty people in one morning
        org.give(BURSTER, [(BURSTER + 37 * (n + 1)) % MEMBERS + 1], BURST_DAY.replace(minute=n))
    # Forty accounts that never voted before all vote for the same candidate within an hour.
    fresh = [v for v in range(5001, MEMBERS + 1) if v not in org.voters][:40]
    for n, voter in enumerate(fresh):
        org.vote(voter, NOMINEES[3], VOTE_BURST + timedelta(seconds=80 * n))
    await org.flush(db)


async def test_a_generated_organisation_shows_only_what_was_planted(database: Database) -> None:
    started = time.perf_counter()
    org = await ordinary_organisation(database)
    generated = time.perf_counter() - started
    assert org.kudos > 30_000

    started = time.perf_counter()
    clean = await build_report(database, SINCE, NOW)
    took = time.perf_counter() - started
    assert clean.rings == () and clean.bursts == ()
    [campaign] = clean.campaigns
    assert campaign.reward_name == "Star of the Quarter" and campaign.status == "voting"
    assert sum(b.votes for b in campaign.buckets) == 240 and campaign.bursts == ()
    assert clean.clean

    await plant(database, org)
    found = await build_report(database, SINCE, NOW)
    assert not found.clean
    rings = [tuple(m.member_id for m in ring.members) for ring in found.rings]
    assert rings == [RING, PAIR]
    three = found.rings[0]
    assert [m.name for m in three.members] == [f"Member {m}" for m in RING]
    for member in three.members:
        # Most of what each received came from the ring, and most of what each gave went to it.
        assert member.received_share > 0.6 and member.given_share > 0.6
        assert member.from_ring_kudos >= 12
        assert member.received_points >= member.from_ring_points == member.from_ring_kudos * 5
    assert three.kudos == 44

    [burst] = found.bursts
    assert (burst.member_id, burst.day, burst.count) == (BURSTER, BURST_DAY.date(), 30)
    assert burst.usual <= 2

    [campaign] = found.campaigns
    [hour] = campaign.bursts
    assert hour.start == VOTE_BURST and hour.votes >= 40 and hour.voters == hour.votes
    assert hour.top_nominee == f"Member {NOMINEES[3]}" and hour.top_votes >= 40
    assert sum(b.votes for b in campaign.buckets) == 280
    print(f"\n{database.dialect}: {org.kudos} kudos in {generated:.1f}s, report {took:.2f}s")


def test_cycles_are_found_once_and_dead_ends_are_dropped() -> None:
    from rewards.integrity.rings import cycles

    manager = [(1, r) for r in range(100, 200)]  # heavy for a hundred people, none gives back
    ring = [(2, 3), (3, 4), (4, 2), (3, 2)]
    pair = [(5, 6), (6, 5)]
    square = [(7, 8), (8, 9), (9, 10), (10, 7)]
    five = [(11, 12), (12, 13), (13, 14), (14, 15), (15, 11)]  # too big a cycle
    found = cycles([*manager, *ring, *pair, *square, *five], 4)
    assert found == {
        frozenset({2, 3, 4}),
        frozenset({2, 3}),
        frozenset({5, 6}),
        frozenset({7, 8, 9, 10}),
    }

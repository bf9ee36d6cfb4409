"""The rows one kudos writes: the kudos, its receivers, new tags and tag links, the receivers'
ledger credits, the leaderboard counters and the event hooks of its giver and receivers.

On PostgreSQL they are ONE statement (`_ONE_STATEMENT`): data-modifying CTEs that all take the
new kudos id from the first, their rows as arrays (``unnest``), so the text is the same whatever
the number of receivers and tags and the statement goes straight to the driver (`run_fixed`).
A kudos was seven statements, each a round trip with its own client-side work; the turn is
CPU-bound, so round trips are what a kudos costs. Foreign keys still hold: PostgreSQL checks
them when the whole statement ends, when every CTE's rows exist. On SQLite, where a round trip
is a function call, one statement per table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, bindparam, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from rewards import hooks
from rewards.leaderboards import counters
from rewards.services.sql import insert_ignoring_duplicates
from rewards.store.db import HELD_MARKER_SQL, HOOKS_STAGED, Fixed, run_claiming
from rewards.store.models import Kudos, KudosReceiver, KudosTag, KudosTagLink, LedgerEntry
from rewards.store.types import JSONType, UTCDateTime

KUDOS_TAG_TABLE = KudosTag.__table__  # type: ignore[attr-defined]
KUDOS_TABLE = Kudos.__table__  # type: ignore[attr-defined]
RECEIVER_TABLE = KudosReceiver.__table__  # type: ignore[attr-defined]
TAG_LINK_TABLE = KudosTagLink.__table__  # type: ignore[attr-defined]
LEDGER_TABLE = LedgerEntry.__table__  # type: ignore[attr-defined]

# SQLite's statements, built once: executed with their rows as parameters (a list of dicts for
# several rows), each is one compiled statement from SQLAlchemy's cache, where `.values([...])`
# would compile anew for every kudos.
_INSERT_KUDOS = insert(KUDOS_TABLE).returning(KUDOS_TABLE.c.id)
_INSERT_RECEIVERS = insert(RECEIVER_TABLE)
_INSERT_TAG_LINKS = insert(TAG_LINK_TABLE)
_INSERT_LEDGER = insert(LEDGER_TABLE)


def _one_statement(claiming: bool) -> Fixed:
    """The kudos' statement; `claiming`: it also writes the turn's held delivery marker
    (`run_claiming`) as its first CTE, deletes the conversation's pending dialog, and writes
    every row only if that marker was new."""
    if claiming:
        # The command this kudos finishes replaces the conversation's pending dialog, if any
        # (`DialogEngine` clears it when a command finishes): deleted here, nothing was read.
        claim = (
            f"claim AS ({HELD_MARKER_SQL.replace(':', ':claim_')}), "  # noqa: S608 (constants)
            "forgotten AS (DELETE FROM conversation_state "
            "WHERE platform = :claim_k_platform AND tenant = :claim_k_tenant "
            "AND chat = :claim_k_chat AND user_id = :claim_k_user "
            "AND EXISTS (SELECT 1 FROM claim)), "
        )
        kudos = (
            "SELECT CAST(:giver_id AS integer), CAST(:message AS varchar), "
            "CAST(:visibility AS varchar), CAST(:channel AS jsonb), "
            "CAST(:created_at AS timestamptz), CAST(:api_key_id AS integer) FROM claim "
        )
        gate = "claim CROSS JOIN "
    else:
        claim = ""
        kudos = "VALUES (:giver_id, :message, :visibility, :channel, :created_at, :api_key_id) "
        gate = ""
    statement = text(
        # The interpolated texts are this module's and the counters' constants, not input.
        f"WITH {claim}k AS ("  # noqa: S608
        "INSERT INTO kudos (giver_id, message, visibility, channel, created_at, api_key_id) "
        f"{kudos}RETURNING id), "
        "new_tags AS (INSERT INTO kudos_tag (name, label, predefined, created_at) "
        "SELECT t.name, t.label, false, CAST(:created_at AS timestamptz) "
        f"FROM {gate}unnest(CAST(:new_tags AS varchar[]), CAST(:new_labels AS varchar[])) "
        "AS t(name, label) ON CONFLICT DO NOTHING), "
        "receivers AS (INSERT INTO kudos_receiver (kudos_id, member_id, created_at) "
        "SELECT k.id, r.member_id, CAST(:created_at AS timestamptz) "
        "FROM k, unnest(CAST(:receivers AS integer[])) AS r(member_id)), "
        "links AS (INSERT INTO kudos_tag_link (kudos_id, tag, created_at) "
        "SELECT k.id, t.tag, CAST(:created_at AS timestamptz) "
        "FROM k, unnest(CAST(:tags AS varchar[])) AS t(tag)), "
        "credits AS (INSERT INTO ledger_entry (member_id, points, kind, kudos_id, created_at) "
        "SELECT r.member_id, CAST(:points_each AS integer), 'kudos', k.id, "
        "CAST(:created_at AS timestamptz) "
        "FROM k, unnest(CAST(:credited AS integer[])) AS r(member_id)), "
        f"boards AS ({counters.kudos_upsert_sql(gate)}), "
        "staged AS (INSERT INTO event_hook "
        "(name, member_id, payload, occurrence, created_at, attempts) "
        "SELECT h.name, h.member_id, jsonb_build_object('kudos_id', k.id), 'k' || k.id, "
        "CAST(:created_at AS timestamptz), 0 "
        "FROM k, unnest(CAST(:hook_names AS varchar[]), CAST(:hook_members AS integer[])) "
        "AS h(name, member_id)) "
        "SELECT id FROM k"
    ).bindparams(
        bindparam("channel", type_=JSONType),
        bindparam("created_at", type_=UTCDateTime()),
        bindparam("points_each", type_=Integer),
    )
    if claiming:
        statement = statement.bindparams(
            bindparam("claim_received_at", type_=UTCDateTime()),
            bindparam("claim_members_version", type_=BigInteger),
        )
    return Fixed(statement, writes=True, returns_rows=True)


_ONE_STATEMENT = _one_statement(claiming=False)
_CLAIMING_STATEMENT = _one_statement(claiming=True)


@dataclass(frozen=True)
class KudosRows:
    """What one kudos writes, checked and decided by `KudosService.give`."""

    giver_id: int
    receivers: Sequence[int]
    message: str
    visibility: str
    channel: dict[str, Any] | None
    api_key_id: int | None
    tags: dict[str, str]  # key -> label, in the order given
    new_tags: bool  # open tags: those not known yet are created
    points_each: int
    stage_hooks: bool
    tz_name: str
    at: datetime

    def hook_events(self) -> list[tuple[str, int]]:
        if not self.stage_hooks:
            return []
        return [("kudos.given", self.giver_id)] + [("kudos.received", r) for r in self.receivers]

    def counted(self) -> dict[str, Any]:
        """What the leaderboard counters take of the kudos (`counters.kudos_deltas` as rows,
        `counters.kudos_arrays` as PostgreSQL's arrays)."""
        return {
            "giver_id": self.giver_id,
            "receivers": self.receivers,
            "tags": self.tags,
            "points_each": self.points_each,
            "at": self.at,
        }


async def write_kudos(session: AsyncSession, rows: KudosRows, *, last: bool = False) -> int:
    """Write the rows of one kudos in the session's transaction; returns the kudos id.

    `last`: the caller writes nothing after them, so on PostgreSQL, in a turn that holds its
    delivery marker and only read so far, the marker, the rows and the commit are one
    statement (`run_claiming`)."""
    if session.get_bind().dialect.name == "postgresql":
        return await _in_one_statement(session, rows, last)
    return await _table_by_table(session, rows)


async def _in_one_statement(session: AsyncSession, rows: KudosRows, last: bool) -> int:
    events = rows.hook_events()
    if events:
        session.info[HOOKS_STAGED] = True  # the runner is woken when the transaction commits
    new_tags = list(rows.tags.items()) if rows.new_tags else []
    [(kudos_id,)] = await run_claiming(
        session,
        _CLAIMING_STATEMENT,
        _ONE_STATEMENT,
        {
            "giver_id": rows.giver_id,
            "message": rows.message,
            "visibility": rows.visibility,
            "channel": rows.channel,
            "created_at": rows.at,
            "api_key_id": rows.api_key_id,
            "new_tags": [key for key, _ in new_tags],
            "new_labels": [label for _, label in new_tags],
            "receivers": list(rows.receivers),
            "tags": list(rows.tags),
            "points_each": rows.points_each,
            "credited": list(rows.receivers) if rows.points_each else [],
            "hook_names": [name for name, _ in events],
            "hook_members": [member for _, member in events],
            **counters.kudos_arrays(rows.tz_name, **rows.counted()),
        },
        last=last,
    )
    return int(kudos_id)


async def _table_by_table(session: AsyncSession, rows: KudosRows) -> int:
    at = rows.at
    kudos_id = int(
        (
            await session.execute(
                _INSERT_KUDOS,
                {
                    "giver_id": rows.giver_id,
                    "message": rows.message,
                    "visibility": rows.visibility,
                    "channel": rows.channel,
                    "created_at": at,
                    "api_key_id": rows.api_key_id,
                },
            )
        ).scalar_one()
    )
    if rows.new_tags and rows.tags:
        await insert_ignoring_duplicates(
            session,
            KUDOS_TAG_TABLE,
            [
                {"name": key, "label": label, "predefined": False, "created_at": at}
                for key, label in rows.tags.items()
            ],
        )
    await session.execute(
        _INSERT_RECEIVERS,
        [{"kudos_id": kudos_id, "member_id": r, "created_at": at} for r in rows.receivers],
    )
    if rows.tags:
        await session.execute(
            _INSERT_TAG_LINKS,
            [{"kudos_id": kudos_id, "tag": t, "created_at": at} for t in rows.tags],
        )
    if rows.points_each:
        await session.execute(
            _INSERT_LEDGER,
            [
                {
                    "member_id": r,
                    "points": rows.points_each,
                    "kind": "kudos",
                    "kudos_id": kudos_id,
                    "created_at": at,
                }
                for r in rows.receivers
            ],
        )
    await counters.apply(session, counters.kudos_deltas(rows.tz_name, **rows.counted()))
    events = rows.hook_events()
    if events:
        await hooks.stage_many(
            session, events, {"kudos_id": kudos_id}, occurrence=f"k{kudos_id}", at=at
        )
    return kudos_id

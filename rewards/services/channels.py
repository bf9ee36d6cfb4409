"""Where the bot can post outside a conversation turn, and which deliveries it already handled.

Both live in the database so that any replica can post into a channel captured by another, and a
webhook retried by the platform (Slack's `X-Slack-Retry-Num`, a re-sent Telegram update) is
processed once, whichever replica receives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, bindparam, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from rewards.clock import Clock, SystemClock, as_utc
from rewards.services.conversations import ConversationKey, note_absent
from rewards.store.db import HELD_MARKER_SQL, Claim, Database, Fixed, Unit, run_fixed
from rewards.store.models import ChannelReference, InboundEvent
from rewards.store.types import UTCDateTime

CHANNEL_TABLE = ChannelReference.__table__  # type: ignore[attr-defined]
INBOUND_TABLE = InboundEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ChannelView:
    platform: str
    tenant: str
    chat_id: str
    kind: str
    name: str | None
    member_id: int | None
    reference: dict[str, Any]
    updated_at: datetime


def _view(row: ChannelReference) -> ChannelView:
    return ChannelView(
        row.platform,
        row.tenant,
        row.chat_id,
        row.kind,
        row.name,
        row.member_id,
        dict(row.reference),
        as_utc(row.updated_at),
    )


async def remember_channel(
    db: Database,
    platform: str,
    chat_id: str,
    reference: dict[str, Any],
    *,
    tenant: str = "",
    kind: str = "channel",
    name: str | None = None,
    member_id: int | None = None,
    clock: Clock | None = None,
) -> None:
    """Store (or refresh) how to reach a chat; one statement, safe under concurrent turns.

    A chat this process stored the same way less than `REFRESH_AFTER` ago is not written again:
    a busy channel would otherwise cost every turn an upsert that changes nothing but the time
    it was last seen, which only needs to be roughly right (announcements by name pick the most
    recently seen of several channels called the same)."""
    now = (clock or SystemClock()).now()
    memo = _remembered(db)
    shape = repr(sorted(reference.items()))
    fingerprint = (platform, tenant, chat_id, kind, name, member_id, shape)
    seen_at = memo.get(fingerprint)
    if seen_at is not None and now - seen_at < REFRESH_AFTER:
        return
    row = {
        "platform": platform,
        "tenant": tenant,
        "chat_id": chat_id,
        "kind": kind,
        "name": name,
        "member_id": member_id,
        "reference": reference,
        "updated_at": now,
    }
    async with db.write(savepoint=False) as session:
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(CHANNEL_TABLE).values(row)
        statement = statement.on_conflict_do_update(
            index_elements=["platform", "tenant", "chat_id"],
            set_={k: statement.excluded[k] for k in ("kind", "name", "reference", "updated_at")}
            | ({"member_id": statement.excluded.member_id} if member_id is not None else {}),
        )
        await session.execute(statement)
    db.after_commit(lambda: memo.__setitem__(fingerprint, now))  # only once it is stored


# A chat seen again within this time keeps its stored row; a process remembers this many chats.
REFRESH_AFTER = timedelta(minutes=10)
_REMEMBERED_MAX = 50_000


def _remembered(db: Database) -> dict[tuple[Any, ...], datetime]:
    memo: dict[tuple[Any, ...], datetime] | None = db.memo.get("channels")
    if memo is None or len(memo) > _REMEMBERED_MAX:
        memo = db.memo["channels"] = {}
    return memo


async def find_channel(
    db: Database, platform: str, chat_id: str, *, tenant: str = ""
) -> ChannelView | None:
    async with db.read() as session:
        row = (
            await session.execute(
                select(ChannelReference).where(
                    col(ChannelReference.platform) == platform,
                    col(ChannelReference.tenant) == tenant,
                    col(ChannelReference.chat_id) == chat_id,
                )
            )
        ).scalar_one_or_none()
        return _view(row) if row else None


async def personal_channel(db: Database, platform: str, member_id: int) -> ChannelView | None:
    """The member's one-to-one chat with the bot on `platform`, most recently seen first."""
    async with db.read() as session:
        row = (
            await session.execute(
                select(ChannelReference)
                .where(
                    col(ChannelReference.platform) == platform,
                    col(ChannelReference.member_id) == member_id,
                    col(ChannelReference.kind) == "personal",
                )
                .order_by(col(ChannelReference.updated_at).desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        return _view(row) if row else None


async def list_channels(db: Database, platform: str | None = None) -> list[ChannelView]:
    query = select(ChannelReference).order_by(col(ChannelReference.id))
    if platform:
        query = query.where(col(ChannelReference.platform) == platform)
    async with db.read() as session:
        return [_view(r) for r in (await session.execute(query)).scalars()]


async def first_delivery(
    db: Database,
    platform: str,
    event_id: str,
    *,
    clock: Clock | None = None,
    conversation: ConversationKey | None = None,
    hold: bool = False,
    keyed: bool = False,
) -> bool:
    """True the first time `(platform, event_id)` is seen, False for every repeat.

    With the `conversation` the delivery belongs to, on PostgreSQL the same statement tells
    whether that conversation has a state at all, and the turn remembers when it has none
    (`conversations.note_absent`): a command then ends without the DELETE that clears a pending
    dialog (a round trip of the four a Slack kudos made).

    `hold` (PostgreSQL, inside a unit that has not written yet): the marker is not inserted now
    but held by the unit (`Unit.hold`) and written with the turn's first write, inside a kudos'
    own statement (`run_claiming`); this call only reads whether the conversation has a state,
    and returns True. A repeat, whether it races the first delivery or comes after it, is found
    when its marker is written: the unit is rolled back and `DuplicateDelivery` raised (for
    slash commands, which Slack never retries, a repeat is rare enough to run its reads again).

    `keyed` (with `hold`: a kudos command, `KEYED_COMMANDS`): not even the state is read. The
    kudos' statement deletes the conversation's pending dialog as it writes the marker (the
    command replaces it), so the turn is the people's look-up and that one statement; a kudos
    that is refused, or asks a question, clears or saves the state as any command does.
    """
    now = (clock or SystemClock()).now()
    row = {"platform": platform, "event_id": event_id[:200], "received_at": now}
    unit = db.current_unit() if hold and not db.is_sqlite else None
    if (
        unit is not None
        and conversation is not None
        and unit.claim is None
        and not await unit.begun()
    ):
        return await _held(db, unit, row, conversation, read_state=not keyed)
    async with db.write(savepoint=False) as session:
        if conversation is None or db.is_sqlite:
            # A row comes back only when this call inserted it: exactly one caller wins.
            return bool(await run_fixed(session, _FIRST_DELIVERY[not db.is_sqlite], row))
        [(marker, has_state)] = await run_fixed(
            session, _FIRST_DELIVERY_AND_STATE, row | conversation.values()
        )
    if not has_state:
        note_absent(db, conversation)
    return marker is not None


async def _held(
    db: Database,
    unit: Unit,
    row: dict[str, Any],
    conversation: ConversationKey,
    *,
    read_state: bool,
) -> bool:
    has_state = False
    if read_state:
        async with db.read() as session:
            [(has_state,)] = await run_fixed(session, _HAS_STATE, conversation.values())
    unit.hold(delivery_claim(row, db, conversation), may_seal=not has_state)
    if read_state and not has_state:
        note_absent(db, conversation)
    return True


def delivery_claim(row: dict[str, Any], db: Database, conversation: ConversationKey) -> Claim:
    """The delivery marker `row` (platform, event_id, received_at) of a turn in `conversation`
    as a unit holds it (PostgreSQL). A statement that carries it also deletes the conversation's
    pending dialog (`run_claiming`); the turn then knows it has none."""
    return Claim(
        _HELD_MARKER,
        row,
        conversation.values(),
        forgotten=lambda: note_absent(db, conversation),
    )


def _first_delivery(insert: Any) -> Any:
    return insert(INBOUND_TABLE).on_conflict_do_nothing().returning(INBOUND_TABLE.c.id)


# A held marker's own insert (`rewards.store.db.HELD_MARKER_SQL`), when no statement carried it.
_HELD_MARKER = Fixed(
    text(HELD_MARKER_SQL).bindparams(
        bindparam("received_at", type_=UTCDateTime()),
        bindparam("members_version", type_=BigInteger),
    ),
    writes=True,
    returns_rows=True,
)
# PostgreSQL's delivery marker with the state check of its conversation (`first_delivery`).
_FIRST_DELIVERY_AND_STATE = Fixed(
    text(
        "WITH marker AS (INSERT INTO inbound_event (platform, event_id, received_at) "
        "VALUES (:platform, :event_id, :received_at) ON CONFLICT DO NOTHING RETURNING id) "
        "SELECT (SELECT id FROM marker), EXISTS (SELECT 1 FROM conversation_state "
        "WHERE platform = :k_platform AND tenant = :k_tenant AND chat = :k_chat "
        "AND user_id = :k_user)"
    ).bindparams(bindparam("received_at", type_=UTCDateTime())),
    writes=True,
    returns_rows=True,
)
# PostgreSQL's question of a held marker (`first_delivery(hold=True)`): a state pending? Not
# whether the delivery was seen: a lookup planned on `inbound_event`, which grows by a row a
# turn, went to a sequential scan whenever its statistics were older than its last few thousand
# rows (0.23 ms a turn instead of 0.02 after an ANALYZE of the young table); the marker's own
# insert finds a repeat through the unique index whatever the statistics say.
_HAS_STATE = Fixed(
    text(
        "SELECT EXISTS (SELECT 1 FROM conversation_state "
        "WHERE platform = :k_platform AND tenant = :k_tenant AND chat = :k_chat "
        "AND user_id = :k_user)"
    ),
    writes=False,
    returns_rows=True,
)
# {is PostgreSQL: the delivery marker's insert}, built once (every turn runs it).
_FIRST_DELIVERY = {
    postgresql: Fixed(_first_delivery(insert), writes=True, returns_rows=True)
    for postgresql, insert in ((True, pg_insert), (False, sqlite_insert))
}

"""Conversation state in the database, so a restart or another replica continues a conversation.

A conversation is keyed by (platform, tenant, chat, user): the same person in two chats holds two
conversations. The state is plain JSON (dialog, step, values) plus a `nonce`: a short random
string that changes on every step and travels in the card's action tokens, so a click on an old
card (or the second of a double click) is recognised and refused without changing anything.

Writes are single statements (an upsert, a compare-and-swap update, a delete), so concurrent
replicas never interleave a read and a write of the same conversation.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import SQLModel

from rewards.clock import as_utc
from rewards.store.db import Database, Fixed, run_fixed
from rewards.store.models import ConversationState

STATE = SQLModel.metadata.tables[ConversationState.__tablename__]
KEY_COLUMNS = ("platform", "tenant", "chat", "user_id")


@dataclass(frozen=True)
class ConversationKey:
    """Who is talking where. `tenant` is empty on platforms without workspaces (Telegram)."""

    platform: str
    tenant: str
    chat: str
    user: str

    def stored(self) -> tuple[str, str, str, str]:
        """The key as it is stored (each part cut to its column)."""
        return (self.platform[:20], self.tenant[:100], self.chat[:200], self.user[:200])

    def values(self) -> dict[str, str]:
        """The stored key as the values of the statements that name a conversation by
        ``:k_platform``, ``:k_tenant``, ``:k_chat`` and ``:k_user``."""
        platform, tenant, chat, user = self.stored()
        return {"k_platform": platform, "k_tenant": tenant, "k_chat": chat, "k_user": user}

    def _where(self) -> tuple[Any, ...]:
        return (
            STATE.c.platform == self.platform[:20],
            STATE.c.tenant == self.tenant[:100],
            STATE.c.chat == self.chat[:200],
            STATE.c.user_id == self.user[:200],
        )


@dataclass(frozen=True)
class State:
    """Where a dialog stands: its name, its step, the values collected so far, and the nonce."""

    dialog: str
    step: str
    values: dict[str, Any] = field(default_factory=dict)
    nonce: str = field(default_factory=lambda: new_nonce())
    expires_at: datetime | None = None


def new_nonce() -> str:
    """Eight URL-safe characters: short enough for a 64-byte Telegram callback token."""
    return secrets.token_urlsafe(6)


# `turn_cache` name: what this turn learnt of each conversation it read or cleared, by stored
# key: its live State, or None (no state).
_KNOWN = "conversations"


def _known(db: Database) -> dict[tuple[str, str, str, str], State | None]:
    """The running turn's knowledge of its conversations, read from its unit without opening a
    block (a block costs more than the statement it would spare); empty after any block of the
    unit that wrote in a savepoint (the unit's cache is dropped then: see `turn_cache`), and
    outside a unit a new dict every time (nothing is kept)."""
    unit = db.current_unit()
    if unit is None:
        return {}
    known: dict[tuple[str, str, str, str], State | None] = unit.cache.setdefault(_KNOWN, {})
    return known


def note_absent(db: Database, key: ConversationKey) -> None:
    """The running turn learned that the conversation has no state (its first statement asked,
    `channels.first_delivery`): `load` and `clear` need not ask again. Nothing outside a unit."""
    _known(db)[key.stored()] = None


async def load(db: Database, key: ConversationKey, now: datetime) -> State | None:
    """The live state of the conversation, or None. An expired state is deleted and not returned.

    Inside a unit, a conversation this turn already read (or cleared) is not read again: the
    adapter and the dialog engine may both look at it in one turn. Each step is still claimed
    with the compare-and-swap on its nonce (`claim`), so knowing the state from earlier in the
    turn never lets a step run twice."""
    known, stored = _known(db), key.stored()
    if stored in known:
        state = known[stored]
        if state is None:
            return None
        if state.expires_at is not None and state.expires_at > as_utc(now):
            return replace(state, values=copy.deepcopy(state.values))
    async with db.read() as session:
        row = (
            await session.execute(
                select(
                    STATE.c.dialog,
                    STATE.c.step,
                    STATE.c["values"],
                    STATE.c.nonce,
                    STATE.c.expires_at,
                ).where(*key._where())
            )
        ).first()
    if row is None:
        known[stored] = None
        return None
    expires_at = as_utc(row.expires_at)
    if expires_at <= as_utc(now):
        async with db.write(savepoint=False) as session:
            await session.execute(
                delete(STATE).where(*key._where(), STATE.c.expires_at <= as_utc(now))
            )
        known[stored] = None
        return None
    values = dict(row[2] or {})
    known[stored] = State(row.dialog, row.step, copy.deepcopy(values), row.nonce, expires_at)
    return State(row.dialog, row.step, values, row.nonce, expires_at)


async def save(
    db: Database, key: ConversationKey, state: State, now: datetime, ttl: timedelta
) -> State:
    """Insert or replace the conversation's state (one upsert statement); returns it as stored."""
    expires_at = as_utc(now) + ttl
    values = {
        "platform": key.platform[:20],
        "tenant": key.tenant[:100],
        "chat": key.chat[:200],
        "user_id": key.user[:200],
        "dialog": state.dialog,
        "step": state.step,
        "values": state.values,
        "nonce": state.nonce,
        "expires_at": expires_at,
        "updated_at": as_utc(now),
    }
    _known(db).pop(key.stored(), None)
    async with db.write(savepoint=False) as session:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        statement = insert(STATE).values(values)
        changed = {name: statement.excluded[name] for name in values if name not in KEY_COLUMNS}
        await session.execute(
            statement.on_conflict_do_update(index_elements=list(KEY_COLUMNS), set_=changed)
        )
    return State(state.dialog, state.step, dict(state.values), state.nonce, expires_at)


async def claim(db: Database, key: ConversationKey, nonce: str, new: str, now: datetime) -> bool:
    """Swap the nonce from `nonce` to `new` if it still is `nonce` and the state is live.

    Exactly one of two concurrent clicks on the same card wins; the other gets False and must
    change nothing.
    """
    _known(db).pop(key.stored(), None)
    async with db.write(savepoint=False) as session:
        result = await session.execute(
            update(STATE)
            .where(*key._where(), STATE.c.nonce == nonce, STATE.c.expires_at > as_utc(now))
            .values(nonce=new, updated_at=as_utc(now))
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


# `clear`'s statement, built once and run as a fixed statement (`run_fixed`): every completed
# dialog runs it, a kudos among them. It returns the row it deleted, if any: a statement sent
# straight to the driver reports no row count.
_CLEAR = Fixed(
    delete(STATE)
    .where(
        STATE.c.platform == bindparam("k_platform"),
        STATE.c.tenant == bindparam("k_tenant"),
        STATE.c.chat == bindparam("k_chat"),
        STATE.c.user_id == bindparam("k_user"),
    )
    .returning(STATE.c.id),
    writes=True,
    returns_rows=True,
)


async def clear(db: Database, key: ConversationKey) -> bool:
    """Forget the conversation's state; True if there was one.

    Inside a unit, a conversation this turn found without a state (`load`), or cleared already,
    is not cleared again: nothing in the turn has saved one since (`save` and `claim` forget
    what the turn knew)."""
    known, stored = _known(db), key.stored()
    if stored in known and known[stored] is None:
        return False
    async with db.write(savepoint=False) as session:
        cleared = bool(await run_fixed(session, _CLEAR, key.values()))
    known[stored] = None  # (a block without a savepoint leaves the unit's cache as it was)
    return cleared

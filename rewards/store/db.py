"""Engine and transactions for SQLite (embedded default) and PostgreSQL (asyncpg).

SQLite specifics, set once here so services need not care:
- WAL journal and a busy timeout, so readers never block the single writer;
- foreign keys on;
- write transactions start with `BEGIN IMMEDIATE`, taking the write lock up front. A deferred
  transaction that reads and then writes can fail with "database is locked" without waiting, which
  would turn concurrent clicks into errors instead of orderly retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from sqlalchemy import ARRAY, any_, bindparam, event
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.util.concurrency import greenlet_spawn

log = logging.getLogger(__name__)
T = TypeVar("T")

# Connections are recycled after this many seconds instead of being pinged before every checkout
# (a ping is a round trip per checkout); a connection the server dropped anyway surfaces as a
# disconnect error, and `Database.transact` runs the turn once more on a fresh one.
POOL_RECYCLE = 1800


def ensure_sqlite_dir(url: str) -> None:
    """Create the directory of a SQLite file URL (the default lives under `var/`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


class _HintingSQLiteCompiler(SQLiteCompiler):
    """Renders `select().with_hint(table, "INDEXED BY ix", "sqlite")`, which SQLAlchemy drops.

    Without statistics SQLite prefers an index that returns rows already grouped by member over
    the time-range index, so a one-week leaderboard scans the whole ledger. Leaderboards name the
    covering time index explicitly instead.
    """

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
        return text


def _prepare_sqlite(engine: AsyncEngine) -> None:
    engine.sync_engine.dialect.statement_compiler = _HintingSQLiteCompiler

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


# PostgreSQL's `plan_cache_mode` of the two pools (`Database.__init__`).
CUSTOM_PLANS = "force_custom_plan"
PLANS_CACHED = "auto"
# Set in a write session's `info` by `rewards.services.outbox.stage`.
OUTBOX_STAGED = "outbox_staged"
# Set in a write session's `info` by `rewards.hooks.stage`.
HOOKS_STAGED = "hooks_staged"
# Counted on each connection (`Connection.info`) by `_count_writes`: how many INSERT, UPDATE and
# DELETE statements it ran, so a unit can tell whether a failed block left writes behind.
_WRITES = "rewards_writes"


def _count_writes(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _after(conn: Any, _cursor: Any, _stmt: Any, _params: Any, context: Any, _many: Any) -> None:
        if context is not None and (context.isinsert or context.isupdate or context.isdelete):
            conn.info[_WRITES] = conn.info.get(_WRITES, 0) + 1


class UnitAborted(Exception):
    """A block inside a unit failed after writing, without a savepoint to undo just that block:
    the whole unit was rolled back (the turn must not report writes that did not happen)."""


class ClaimRefused(Exception):
    """The unit's held claim (`Unit.hold`) was not written, so neither was anything of the turn
    (`DuplicateDelivery`, `StaleLookup`): raised through the dialogs to the unit's owner."""


class DuplicateDelivery(ClaimRefused):
    """The unit's held claim (`Unit.hold`) found its delivery already handled: a concurrent
    turn of the same delivery committed first. The unit was rolled back; the turn is a repeat
    and must not answer."""


class StaleLookup(ClaimRefused):
    """The unit's held claim was not written because the turn used people kept from an earlier
    turn (`Claim.members_version`) and a member, group or account changed since: nothing was
    written, and `Database.transact` runs the turn once more with a fresh look-up."""


# The held delivery marker's insert (`Claim`): a row only when the delivery is new and, if the
# turn used people kept from an earlier turn (`members_version` not null), only while the
# membership version is still the one they were read with (migration 0023: every change to a
# member, their groups or accounts bumps it). A statement carrying the claim (`run_claiming`)
# embeds this text with its names prefixed ``claim_``.
HELD_MARKER_SQL = (
    "INSERT INTO inbound_event (platform, event_id, received_at) "
    "SELECT CAST(:platform AS varchar), CAST(:event_id AS varchar), "
    "CAST(:received_at AS timestamptz) "
    "WHERE CAST(:members_version AS bigint) IS NULL OR CAST(:members_version AS bigint) = "
    "(SELECT version FROM membership_version WHERE id = 1) "
    "ON CONFLICT DO NOTHING RETURNING id"
)


@dataclass(frozen=True)
class Claim:
    """A delivery marker a unit holds back instead of writing it first (`Unit.hold`).

    `statement` inserts it and returns a row only when it was not there yet; `values` are its
    parameters. A statement written to carry the claim (`run_claiming`) takes the same values
    with the prefix ``claim_``, and `conversation` likewise: the keys of the turn's
    conversation, whose pending dialog, if any, that statement deletes (the command it finishes
    replaces it), after which `forgotten` is called. `members_version`: set when the turn used
    people kept from an earlier turn (`Unit.guard_members`); the marker, and so every row the
    turn writes, is then written only if no member changed since (`HELD_MARKER_SQL`)."""

    statement: Fixed
    values: dict[str, Any]
    conversation: dict[str, Any] = field(default_factory=dict)
    forgotten: Callable[[], None] | None = None
    members_version: int | None = None

    def parameters(self) -> dict[str, Any]:
        """The marker's values with the membership guard (`HELD_MARKER_SQL`)."""
        return self.values | {"members_version": self.members_version}

    def refused(self) -> Exception:
        """Why the marker was not written: a stale look-up, or a delivery seen already."""
        if self.members_version is not None:
            return StaleLookup("a member changed since the turn's people were read")
        return DuplicateDelivery("this delivery was handled by a concurrent turn")


class Unit:
    """One turn's transaction: every `Database.read()` / `write()` of the task that opened it runs
    on one connection, checked out at the first statement and committed once at the end.

    The blocks share one `AsyncSession` bound to that connection (`block`): a turn opens a dozen
    blocks, and a session of its own for each cost its construction, its transaction's begin and
    its close (~0.1 ms a block). Each outermost block still starts with an empty identity map (it
    is emptied when the block ends), and a block that fails gives the session up, so the next one
    starts afresh, as with a session of its own. `cache` holds what a turn looks up once (members
    by account, the catalogue version): see `turn_cache`.
    """

    def __init__(
        self, db: Database, *, planned_once: bool = False, kept_people: bool = False
    ) -> None:
        self.db = db
        # Checked out of the pool whose statements are planned once (`Database.unit`).
        self.planned_once = planned_once
        # May use the people an earlier turn looked up (`kept_people`), under a guard.
        self.kept_people = kept_people
        self.task = asyncio.current_task()
        self.connection: AsyncConnection | None = None
        self.cache: dict[Any, Any] = {}
        self.doomed = False
        self.outbox_staged = False
        self.hooks_staged = False
        self.committed: list[Callable[[], None]] = []
        self.deferred: list[Callable[[], Awaitable[None]]] = []
        # Writes of rows many turns share, sent as the unit's last statements (`write_last`).
        self.last_writes: list[Callable[[AsyncSession], Awaitable[None]]] = []
        self.committing = False
        self._shared: AsyncSession | None = None
        self._depth = 0  # blocks open on the shared session (a service may call another)
        self._driver: Any = None
        self._listeners: tuple[tuple[Any, ...], tuple[Any, ...]] | None = None
        # A held delivery marker (`hold`), whether the unit may end with one statement in
        # autocommit (`run_claiming`), and whether it did: then it has committed already.
        self.claim: Claim | None = None
        self.may_seal = False
        self.sealed = False
        self._writes_at_seal = 0

    def hold(self, claim: Claim, *, may_seal: bool) -> None:
        """Hold the turn's delivery marker back instead of inserting it first (PostgreSQL).

        It is written with the unit's first write: inside that write's own statement when the
        statement is made to carry it (`run_claiming`: a Slack kudos is then one statement, its
        marker, its rows and its commit), else just before it (`settle_claim`), or when the unit
        ends. Until then the unit's statements are reads, sent without BEGIN: at PostgreSQL's
        READ COMMITTED each statement sees the latest committed rows anyway, so a read before
        the transaction's first write sees what it would have seen inside it. A repeated
        delivery is found when the marker is written: the unit is rolled back and
        `DuplicateDelivery` raised.

        `may_seal`: nothing the turn knows of will write after its main write (the conversation
        has no pending dialog to clear), so that write may be the unit's one autocommitted
        statement."""
        self.claim = claim
        self.may_seal = may_seal

    async def begun(self) -> bool:
        """Whether the unit's transaction has begun on the server (BEGIN was sent)."""
        if self.connection is None:
            return False
        return (await self.driver())._transaction is not None

    async def settle_claim(self, session: AsyncSession, *, last: bool = False) -> None:
        """Write the held delivery marker now: inside the unit's transaction, before a write
        that cannot carry it; or, `last`, as the unit ends (in autocommit when it wrote
        nothing, so a turn that only read costs no BEGIN and COMMIT)."""
        claim, self.claim = self.claim, None
        if claim is None:
            return
        alone = last and not await self.begun()
        rows = await run_fixed(session, claim.statement, claim.parameters(), autocommit=alone)
        if not rows:
            raise claim.refused()

    def guard_members(self, version: int) -> bool:
        """Make the held claim write nothing unless the membership version is still `version`,
        the one the turn's people were read under (kept from an earlier turn, or just looked
        up). False when the unit holds no claim, may not use kept people, or its claim is
        guarded by another version already: people read under `version` may not be used then
        (the turn must look them up)."""
        if self.claim is None or not self.kept_people:
            return False
        if self.claim.members_version is None:
            self.claim = replace(self.claim, members_version=version)
        return self.claim.members_version == version

    def seal(self) -> None:
        self.sealed = True
        self._writes_at_seal = self.writes()

    def wrote_after_seal(self) -> bool:
        return self.sealed and self.writes() != self._writes_at_seal

    async def connect(self) -> AsyncConnection:
        """The unit's connection, in its transaction (begun on first use: on SQLite with
        `BEGIN IMMEDIATE`, so a unit that reads and then writes never fails on a lock upgrade;
        every statement of the turn then runs on this one connection, so it cannot wait on
        itself)."""
        if self.connection is None:
            engine = self.db._turn_engine if self.planned_once else self.db._write_engine
            connection = await engine.connect()
            try:
                await connection.begin()
            except BaseException:
                await connection.close()
                raise
            self.connection = connection
        return self.connection

    async def driver(self) -> Any:
        """The DB-API adapter of the unit's connection (`run_fixed`), looked up once."""
        if self._driver is None:
            assert self.connection is not None
            self._driver = (await self.connection.get_raw_connection()).dbapi_connection
        return self._driver

    def cursor_listeners(self) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """The engine's `before_cursor_execute` and `after_cursor_execute` listeners, for
        `run_fixed`: read once per unit (the dispatcher builds the joined lists on every read)."""
        if self._listeners is None:
            assert self.connection is not None and self.connection.sync_connection is not None
            dispatch = self.connection.sync_connection.dispatch
            self._listeners = (
                tuple(dispatch.before_cursor_execute),
                tuple(dispatch.after_cursor_execute),
            )
        return self._listeners

    def writes(self) -> int:
        if self.connection is None:
            return 0
        try:
            return int(self.connection.sync_connection.info.get(_WRITES, 0))  # type: ignore[union-attr]
        except Exception:  # the connection is gone: count that as "wrote", the unit is lost
            return -1

    @asynccontextmanager
    async def block(self) -> AsyncIterator[AsyncSession]:
        """The session of one `read()` / `write()` block of the unit (see the class)."""
        connection = await self.connect()
        if self._shared is None:
            self._shared = self.session(connection)
        session = self._shared
        self._depth += 1
        failed = False
        try:
            yield session
        except BaseException:
            failed = True
            raise
        finally:
            self._depth -= 1
            if self._depth == 0:
                if failed:  # whatever state it is in now, no later block inherits it
                    self._shared = None
                    await session.close()
                elif _holds_objects(session):  # (expunging an empty session is not free)
                    session.expunge_all()

    async def release(self) -> None:
        """Close the shared session (the unit's transaction is the unit's to end)."""
        session, self._shared = self._shared, None
        if session is not None:
            await session.close()

    def session(self, connection: AsyncConnection) -> AsyncSession:
        # "rollback_only": a block's session never commits the unit's transaction; the unit does.
        session = AsyncSession(
            bind=connection, expire_on_commit=False, join_transaction_mode="rollback_only"
        )
        session.info[_SESSION_UNIT] = self
        return session


def _holds_objects(session: AsyncSession) -> bool:
    """Whether the session holds any object (loaded, new or deleted) a later block must not
    inherit; most of a turn's blocks run Core statements only, and hold none."""
    sync = session.sync_session
    return bool(len(sync.identity_map) or sync._new or sync._deleted)


_UNIT: ContextVar[Unit | None] = ContextVar("rewards_unit", default=None)
# `AsyncSession.info` key of the unit a block's session belongs to.
_SESSION_UNIT = "rewards_unit"
# `Unit.cache` keys: the member look-ups a turn makes once (`rewards.services.members`), the
# catalogue version it checked (`rewards.services.catalog`).
MEMBERS = "members"
CATALOG = "catalog"
# `Database.memo` key of the people kept across Slack kudos (`rewards.services.members`).
PEOPLE = "people"


def turn_cache(session: AsyncSession, name: str) -> dict[Any, Any] | None:
    """The unit's cache `name` for a session of a unit (None outside a unit: nothing cached).

    Look-ups cached here are dropped whenever a block writes in a savepoint (any service but the
    turn's own hot path, which never changes members or the catalogue): a turn never sees a
    look-up older than its last such write."""
    unit = session.info.get(_SESSION_UNIT)
    if unit is None:
        return None
    cache: dict[Any, Any] = unit.cache.setdefault(name, {})
    return cache


async def write_last(
    session: AsyncSession, work: Callable[[AsyncSession], Awaitable[None]]
) -> None:
    """Run `work` (a write of rows that many turns share: the leaderboard counters) as one of
    the unit's last statements, just before its COMMIT, or now outside a unit.

    PostgreSQL holds a written row's lock until the commit, and a concurrent writer of the same
    row waits for it. A unit that wrote a hot row early and then ran on (the event hooks' batch:
    200 hooks, their awards, then every workflow, 0.3 s when the server is busy) held every
    concurrent kudos of those members for as long: `bench/e2e.py` saw the server's eight
    connections wait 50-95 ms on one batch, five times a second. Queued to the end, the rows
    are held for one round trip and the commit.

    Run in the order queued. Dropped with a savepoint block that fails, as its other writes
    are. Now instead when the unit is to end with one autocommitted statement (a held claim
    that may seal: nothing may follow it). A reader of such rows inside a unit calls
    `write_now` first, so it sees what its own unit wrote."""
    unit: Unit | None = session.info.get(_SESSION_UNIT)
    if unit is None or unit.sealed or (unit.claim is not None and unit.may_seal):
        await work(session)
        return
    unit.last_writes.append(work)


async def write_now(session: AsyncSession) -> None:
    """Send the unit's queued last writes (`write_last`) now: before a read of the rows they
    change, and as the unit ends."""
    unit: Unit | None = session.info.get(_SESSION_UNIT)
    while unit is not None and unit.last_writes:
        if unit.claim is not None:  # the held marker goes first, as before any write
            await unit.settle_claim(session)
        queued, unit.last_writes = unit.last_writes, []
        for work in queued:
            await work(session)


class Fixed:
    """A Core statement a turn runs every time, with the same text whatever its values.

    `run_fixed` sends it on PostgreSQL inside a unit straight to the unit's asyncpg connection:
    compiled here once per process (per set of parameter names), its values bound in order, with
    none of SQLAlchemy's per-execution work (execution context, cache key, result object, ~0.1 ms
    of CPU a statement). It stays an ordinary statement to everything else: the engine's
    `before_cursor_execute` / `after_cursor_execute` listeners see it (statement counts), it counts
    as a write of the unit (`Unit.writes`), and a failure is raised as SQLAlchemy raises it (the
    same exception classes, a lost connection invalidated and flagged for `Database.transact`).
    Elsewhere (SQLite, outside a unit) it runs through the session as before.

    Only statements SQLAlchemy would send as they are qualify: no Python-side column defaults to
    compute and no result type to convert (checked when compiled; such a statement always takes
    the session path)."""

    __slots__ = ("_compiled", "returns_rows", "statement", "writes")

    def __init__(self, statement: Any, *, writes: bool, returns_rows: bool) -> None:
        self.statement = statement
        self.writes = writes
        self.returns_rows = returns_rows
        self._compiled: dict[tuple[frozenset[str], bool], _Compiled | None] = {}

    def compiled(self, dialect: Any, names: frozenset[str], many: bool) -> _Compiled | None:
        key = (names, many)
        if key not in self._compiled:
            self._compiled[key] = _compile_fixed(self.statement, dialect, names, many)
        return self._compiled[key]


# (SQL text, parameter names in order, their bind processors, values bound in the statement)
_Compiled = tuple[str, tuple[str, ...], tuple[Callable[[Any], Any] | None, ...], dict[str, Any]]


def _compile_fixed(
    statement: Any, dialect: Any, names: frozenset[str], many: bool
) -> _Compiled | None:
    compiled = statement.compile(dialect=dialect, column_keys=sorted(names), for_executemany=many)
    if compiled.insert_prefetch or compiled.update_prefetch or compiled.literal_execute_params:
        return None  # values SQLAlchemy computes or renders per execution
    if compiled.positiontup is None or any(p.expanding for p in compiled.binds.values()):
        return None  # pragma: no cover - every dialect used here is positional
    for column in compiled._result_columns:
        if column[3]._cached_result_processor(dialect, None) is not None:
            return None
    order = tuple(compiled.positiontup)
    constants: dict[str, Any] = {}
    for name in order:
        if name not in names:  # a value of the statement itself (a LIMIT, a literal)
            bind = compiled.binds[name]
            if bind.callable is not None or bind.value is None:
                return None
            constants[name] = bind.value
    processors = compiled._bind_processors
    return compiled.string, order, tuple(processors.get(name) for name in order), constants


async def run_fixed(
    session: AsyncSession,
    fixed: Fixed,
    parameters: dict[str, Any] | list[dict[str, Any]],
    *,
    autocommit: bool = False,
) -> Sequence[Sequence[Any]]:
    """Execute `fixed` with `parameters` (a list: executemany) in the session's unit; the rows
    it returns (none for a list, or a statement without rows). See `Fixed`.

    On PostgreSQL a read sent before the unit's first write goes without BEGIN (see
    `Unit.hold`); a write first writes the unit's held delivery marker, if any. `autocommit`
    (a unit's last write, `run_claiming`): the write is sent without BEGIN, so it commits as it
    runs, and the unit is sealed: it may not write again."""
    unit: Unit | None = session.info.get(_SESSION_UNIT)
    if unit is not None and fixed.writes:
        if unit.sealed:
            raise UnitAborted("a write after the turn's autocommitted statement")
        if unit.claim is not None:
            await unit.settle_claim(session)
    many = isinstance(parameters, list)
    sample: dict[str, Any] = {}
    if isinstance(parameters, dict):
        sample = parameters
    elif parameters:
        sample = parameters[0]
    compiled = None
    direct = unit is not None and not unit.db.is_sqlite and unit.connection is not None
    if direct and (sample or not many):  # (an empty executemany is SQLAlchemy's to refuse)
        assert unit is not None
        compiled = fixed.compiled(unit.db.engine.dialect, frozenset(sample), many)
    if compiled is None or unit is None or unit.connection is None:
        result = await session.execute(fixed.statement, parameters)
        return result.all() if fixed.returns_rows and not many else []
    sql, order, processors, constants = compiled

    def values(row: dict[str, Any]) -> tuple[Any, ...]:  # as SQLAlchemy passes them on
        if constants:
            row = constants | row
        return tuple(
            row[name] if process is None else process(row[name])
            for name, process in zip(order, processors, strict=True)
        )

    arguments: Any = (
        [values(row) for row in parameters] if isinstance(parameters, list) else values(sample)
    )
    connection = unit.connection.sync_connection
    assert connection is not None
    adapted = await unit.driver()
    before, after = unit.cursor_listeners()
    for listener in before:
        listener(connection, None, sql, arguments, None, many)
    rows: Sequence[Sequence[Any]] = []
    failed: BaseException | None = None
    if autocommit:
        unit.committing = True  # it may have been applied, whatever happens: never run it twice
    async with adapted._execute_mutex:
        try:
            if adapted._transaction is None and fixed.writes and not autocommit:
                await adapted._start_transaction()
            if many:
                await adapted._connection.executemany(sql, arguments)
            else:
                rows = await adapted._connection.fetch(sql, *arguments)
        except Exception as problem:
            failed = problem
    if failed is not None:
        await _raise_as_sqlalchemy(connection, adapted, failed, sql, arguments)
    if fixed.writes:
        connection.info[_WRITES] = connection.info.get(_WRITES, 0) + 1
    for listener in after:
        listener(connection, None, sql, arguments, None, many)
    if autocommit:
        unit.seal()
    return rows if fixed.returns_rows else []


async def run_claiming(
    session: AsyncSession,
    claiming: Fixed,
    plain: Fixed,
    parameters: dict[str, Any],
    *,
    last: bool,
) -> Sequence[Sequence[Any]]:
    """Run a write that can carry the unit's held delivery marker (`Unit.hold`).

    `claiming` is `plain` with the marker's insert as its first CTE (values ``claim_*``), the
    delete of the conversation's pending dialog (`Claim.conversation`), and every row it writes
    conditional on that insert: a repeated delivery then writes nothing and
    returns no row, and `DuplicateDelivery` is raised. Without a held marker (another platform,
    the API, SQLite, or it was written already) `plain` runs as usual.

    `last`: the caller writes nothing after this statement. When the unit has not begun a
    transaction either (it only read so far), has nothing pending in the session and knows of
    no dialog to clear (`may_seal`), the statement is sent without BEGIN: the marker, the
    writes and the commit are one round trip."""
    unit: Unit | None = session.info.get(_SESSION_UNIT)
    if unit is None or unit.claim is None or unit.db.is_sqlite:
        return await run_fixed(session, plain, parameters)
    if unit.sealed:
        raise UnitAborted("a write after the turn's autocommitted statement")
    claim, unit.claim = unit.claim, None
    claimed = claim.parameters() | claim.conversation
    values = parameters | {f"claim_{name}": value for name, value in claimed.items()}
    alone = (
        last
        and unit.may_seal
        and unit._depth == 1
        and not (session.new or session.dirty or session.deleted)
        and not await unit.begun()
    )
    rows = await run_fixed(session, claiming, values, autocommit=alone)
    if not rows:
        raise claim.refused()
    if claim.forgotten is not None:
        claim.forgotten()
    return rows


async def _raise_as_sqlalchemy(
    connection: Any, adapted: Any, problem: BaseException, sql: str, arguments: Any
) -> NoReturn:
    """Raise `problem` (asyncpg's) as SQLAlchemy would have: translated to the DB-API class by
    the dialect's adapter, then wrapped (`sqlalchemy.exc`), the connection invalidated when it
    is gone."""
    try:
        if isinstance(problem, Exception):
            adapted._handle_exception(problem)
        raise problem
    except BaseException as translated:
        await greenlet_spawn(
            connection._handle_dbapi_exception, translated, sql, arguments, None, None
        )
    raise AssertionError("unreachable")  # pragma: no cover


def among(column: Any, name: str, item: Any, *, postgresql: bool) -> Any:
    """``column IN (:name)`` for a statement built once per dialect, `name` bound to a list: on
    PostgreSQL ``column = ANY(:name)``, the list sent as one array, so the statement is compiled
    once and its text never changes (an expanding IN is rendered anew on every execution, and is
    a different prepared statement for every length); elsewhere an expanding IN."""
    if postgresql:
        return column == any_(bindparam(name, type_=ARRAY(item)))
    return column.in_(bindparam(name, expanding=True))


def is_disconnect(problem: BaseException) -> bool:
    """Whether `problem` is the database connection going away (retrying may help)."""
    return isinstance(problem, DBAPIError) and bool(problem.connection_invalidated)


def _postgresql_engine(url: str, echo: bool, pool_size: int, plan_cache_mode: str) -> AsyncEngine:
    """A pooled asyncpg engine whose connections use `plan_cache_mode` (`Database.__init__`)."""
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_recycle=POOL_RECYCLE,
        connect_args={"server_settings": {"plan_cache_mode": plan_cache_mode}},
        # A failed statement's error (logged, or kept as a delivery's last error) names the
        # statement but not its values: those are what members typed.
        hide_parameters=True,
    )
    _count_writes(engine)
    return engine


class Database:
    """One engine per process; `read()` and `write()` hand out sessions bound to a transaction."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        self.outbox_listeners: list[Callable[[], None]] = []
        # What a process keeps between turns, each entry checked against the database once per
        # turn (the catalogue's definitions, under its version number).
        self.memo: dict[str, Any] = {}
        self.hook_listeners: list[Callable[[], None]] = []
        # Awaited by `dispose` before the engine closes: the hook runners of the cores on this
        # database finish their queue (a CLI command's hooks run before it exits).
        self.before_dispose: list[Callable[[], Awaitable[None]]] = []
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            ensure_sqlite_dir(url)
            # Pooled: opening an aiosqlite connection starts a thread and runs the PRAGMAs,
            # several milliseconds that a small query should not pay every time.
            self.engine = create_async_engine(
                url,
                echo=echo,
                pool_size=5,
                max_overflow=10,
                connect_args={"timeout": 30},
                hide_parameters=True,  # as for PostgreSQL below
            )
            _prepare_sqlite(self.engine)
            _count_writes(self.engine)
            self._write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
            self._turn_engine = self._write_engine  # SQLite has no plan cache to choose
        else:
            # asyncpg prepares every statement; after five runs PostgreSQL may switch a prepared
            # statement to a generic plan that ignores the actual values: the rule queries
            # (attendance windows, login streaks) then became 2-5x slower from the sixth sweep on
            # one pooled connection (bench/sweep.py), and the integrity report's graph query ran
            # for minutes instead of a third of a second. Custom plans keep every statement
            # planned for its values.
            self.engine = _postgresql_engine(url, echo, pool_size, CUSTOM_PLANS)
            self._write_engine = self.engine
            # The pool of the turns that touch only the members they name (`unit(planned_once=
            # True)`: a kudos): their statements are the same few by key on every turn, and
            # planning them on every execution was about a third of PostgreSQL's CPU per kudos.
            # Its connections keep PostgreSQL's default plan cache mode, under which a statement
            # run five times keeps its generic plan when that costs no more than the custom ones.
            # Connections are opened when a turn first needs one.
            self._turn_engine = _postgresql_engine(url, echo, pool_size, PLANS_CACHED)

    def engines(self) -> list[AsyncEngine]:
        """The engines of this database: one on SQLite, two on PostgreSQL (see `__init__`). For
        whatever must see every statement or every pool (statement counts, the metrics)."""
        return [self.engine] if self.is_sqlite else [self.engine, self._turn_engine]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def current_unit(self) -> Unit | None:
        """The unit of the running task, if it opened one on this database."""
        unit = _UNIT.get()
        if unit is None or unit.db is not self or unit.task is not asyncio.current_task():
            return None  # a task spawned inside a unit inherits the variable, not the unit
        return unit

    @asynccontextmanager
    async def unit(
        self, *, planned_once: bool = False, kept_people: bool = False
    ) -> AsyncIterator[Unit]:
        """A turn's unit of work: `read()` and `write()` inside it share one connection and one
        transaction, committed once when the block ends (rolled back if it raises). Nested
        `unit()` calls join the outer unit.

        `planned_once` (PostgreSQL): the turn only looks up and writes the members it names (a
        kudos), so its connection comes from the pool whose statements keep a generic plan once
        PostgreSQL finds it as cheap as a custom one. Any other turn may run a statement over a
        population or a date window (a leaderboard, the integrity report, a rule's evaluation),
        whose generic plan can be far slower than one made for its values.

        `kept_people`: the turn may use the people an earlier turn looked up, under the guard of
        its held claim (`Unit.guard_members`); `transact` allows it for a kudos' first attempt."""
        outer = self.current_unit()
        if outer is not None:
            yield outer
            return
        unit = Unit(self, planned_once=planned_once, kept_people=kept_people)
        token = _UNIT.set(unit)
        try:
            try:
                yield unit
                if unit.last_writes:
                    async with self._unit_write(unit, savepoint=False) as session:
                        await write_now(session)
                if unit.claim is not None:  # nothing wrote it: it is the unit's last write
                    async with unit.block() as session:
                        await unit.settle_claim(session, last=True)
            except BaseException:
                await unit.release()
                if unit.connection is not None:
                    await unit.connection.rollback()
                raise
            await unit.release()
            if unit.connection is not None:
                if unit.doomed:
                    await unit.connection.rollback()
                    raise UnitAborted("a block of the turn failed after writing")
                if unit.wrote_after_seal():  # a second transaction: the turn is not one
                    await unit.connection.rollback()
                    raise UnitAborted("a write after the turn's autocommitted statement")
                unit.committing = True
                await unit.connection.commit()
        finally:
            _UNIT.reset(token)
            if unit.connection is not None:
                await unit.connection.close()
        for callback in unit.committed:
            callback()
        if unit.outbox_staged:
            self._staged()
        if unit.hooks_staged:
            self._hooks_staged()
        for work in unit.deferred:  # outside the unit now: each in its own transactions
            try:
                await work()
            except Exception:
                log.exception("work deferred to after a unit's commit failed")

    def defer(self, work: Callable[[], Awaitable[None]]) -> bool:
        """Inside a unit: run `work` once the unit has committed (in order, in the same task,
        outside the unit), and return True; dropped if the unit rolls back. Outside a unit:
        False, and the caller runs it now. For work that must see the turn's rows committed
        (the event hooks read them from other connections)."""
        unit = self.current_unit()
        if unit is None:
            return False
        unit.deferred.append(work)
        return True

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once what the caller wrote is committed: at the end of the running
        task's unit, or now outside a unit (a `write()` block commits as it ends). Dropped if
        the unit rolls back. For process caches that must only remember committed rows."""
        unit = self.current_unit()
        if unit is None:
            callback()
        else:
            unit.committed.append(callback)

    async def transact(self, work: Callable[[], Awaitable[T]], *, planned_once: bool = False) -> T:
        """Run `work` in a unit (`planned_once`: see `unit`); when the connection turns out to be
        dead (the server restarted, a recycled connection dropped), run it once more on a fresh
        one. `work` must not have
        sent anything before it touches the database (a turn's replies go out after it).

        A kudos' first attempt (`planned_once`) may use the people kept from an earlier kudos
        (`kept_people`); when one of them changed meanwhile its claim writes nothing
        (`StaleLookup`), and it runs once more, looking them up."""
        if self.current_unit() is not None:  # already inside a turn: it is the turn's work
            return await work()
        for attempt in (1, 2):
            opened: Unit | None = None
            kept = planned_once and attempt == 1
            try:
                async with self.unit(planned_once=planned_once, kept_people=kept) as unit:
                    opened = unit
                    return await work()
            except StaleLookup:
                self.memo.pop(PEOPLE, None)  # every person kept was read under an older version
                if attempt == 2:
                    raise  # pragma: no cover - the second attempt keeps no one
                log.info("a member changed since the people were read; running the turn again")
            except DBAPIError as problem:
                # Once COMMIT was sent the turn may have been applied: never run it twice.
                lost_before_commit = opened is not None and not opened.committing
                if attempt == 2 or not is_disconnect(problem) or not lost_before_commit:
                    raise
                log.warning("database connection lost; running the turn once more")
        raise AssertionError("unreachable")

    def _staged(self) -> None:
        for listener in list(self.outbox_listeners):
            listener()

    def _hooks_staged(self) -> None:
        for listener in list(self.hook_listeners):
            listener()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for queries; closing it rolls back, so it must not be used to write.

        Inside a unit it runs on the unit's connection and transaction (and sees its writes)."""
        unit = self.current_unit()
        if unit is None:
            async with AsyncSession(self.engine, expire_on_commit=False) as session:
                yield session
            return
        async with unit.block() as session:
            try:
                yield session
            except DBAPIError:
                unit.doomed = True  # PostgreSQL refuses every further statement of the transaction
                raise

    @asynccontextmanager
    async def write(self, *, savepoint: bool = True) -> AsyncIterator[AsyncSession]:
        """A session whose work commits as one transaction, or not at all.

        A transaction that staged outbox events (`rewards.services.outbox.stage` marks the
        session) calls every `outbox_listeners` callback once it has committed: the event
        manager's relay is woken at once instead of at its next poll.

        Inside a unit the work joins the unit's transaction. By default it runs in a SAVEPOINT,
        so a block that fails is undone alone, as its own transaction would have been (services
        that catch an IntegrityError and carry on rely on it). The turn's hot path passes
        `savepoint=False` (two statements fewer): a failure there after it wrote anything
        rolls the whole unit back (`UnitAborted`), a failure before any write costs nothing.
        A transaction that staged event hooks (`rewards.hooks.stage`) calls every
        `hook_listeners` callback likewise, so the hook runner drains them right after the commit
        (inside a unit: after the unit's commit).
        """
        unit = self.current_unit()
        if unit is not None:
            async with self._unit_write(unit, savepoint) as session:
                yield session
            return
        async with (
            AsyncSession(self._write_engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session
        if session.info.pop(OUTBOX_STAGED, False):
            self._staged()
        if session.info.pop(HOOKS_STAGED, False):
            self._hooks_staged()

    @asynccontextmanager
    async def _unit_write(self, unit: Unit, savepoint: bool) -> AsyncIterator[AsyncSession]:
        async with unit.block() as session, self._unit_block_write(unit, session, savepoint):
            yield session

    @asynccontextmanager
    async def _unit_block_write(
        self, unit: Unit, session: AsyncSession, savepoint: bool
    ) -> AsyncIterator[None]:
        try:
            if savepoint:
                if unit.claim is not None:  # the marker before the savepoint, in the transaction
                    await unit.settle_claim(session)
                queued = len(unit.last_writes)
                try:
                    async with session.begin_nested():
                        yield
                except BaseException:
                    del unit.last_writes[queued:]  # undone with the block that queued them
                    raise
                finally:
                    unit.cache.clear()
            else:
                before = unit.writes()
                try:
                    yield
                    if session.new or session.deleted or session.identity_map.check_modified():
                        await session.flush()  # a flush with nothing to write is a greenlet trip
                except BaseException as problem:
                    pending = bool(session.new or session.dirty or session.deleted)
                    if pending or unit.writes() != before or isinstance(problem, DBAPIError):
                        unit.doomed = True
                    raise
        finally:
            if session.info.pop(OUTBOX_STAGED, False):
                unit.outbox_staged = True
            if session.info.pop(HOOKS_STAGED, False):
                unit.hooks_staged = True

    async def dispose(self) -> None:
        for step in list(self.before_dispose):
            try:
                await step()
            except Exception:
                logging.getLogger(__name__).exception("a step before closing the database failed")
        await self.engine.dispose()
        if not self.is_sqlite:
            await self._turn_engine.dispose()

"""Bulk loaders: put a `Dataset` into a migrated database in seconds, bypassing the ORM.

Loading millions of rows through SQLAlchemy sessions would take longer than the benchmark
itself, and the load is setup, not the thing measured. Both loaders therefore use the fastest
path of the raw driver and the classic bulk-load recipe:

1. the schema comes from the project's own migration (so indexes are exactly the real ones);
2. secondary indexes are dropped (their definitions saved), rows are inserted in primary-key
   order, and the indexes are rebuilt from the saved definitions in one sorted pass each;
3. statistics are gathered the way a running deployment would have them (PostgreSQL's
   autovacuum does VACUUM ANALYZE on its own; SQLite only if asked, as the app never runs
   ANALYZE).

SQLite uses the stdlib `sqlite3` module on the same file (executemany in one big transaction
per table); PostgreSQL uses asyncpg's `copy_records_to_table` (binary COPY). Values are written
in the exact representation SQLAlchemy would write (SQLite: 'YYYY-MM-DD HH:MM:SS.ffffff' text for
`UTCDateTime`, 0/1 for booleans, JSON as text), so the service reads them back unchanged.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.dataset import DAY, Dataset

# Every table the data set fills, in foreign-key order.
TABLES = (
    "member",
    "member_group",
    "reward_type",
    "reward_category",
    "reward",
    "kudos_tag",
    "award",
    "kudos",
    "kudos_receiver",
    "kudos_tag_link",
    "ledger_entry",
)
# Tables with a serial id whose PostgreSQL sequence must move past the loaded ids.
SERIAL_TABLES = ("member", "reward_type", "reward_category", "award", "kudos", "ledger_entry")
COLUMNS: dict[str, tuple[str, ...]] = {
    "member": (
        "id",
        "email",
        "display_name",
        "job_code",
        "department",
        "manager_id",
        "birthday_month",
        "birthday_day",
        "birth_year",
        "hire_date",
        "timezone",
        "locale",
        "active",
        "leaderboard_opt_out",
        "celebrations_opt_out",
        "created_at",
        "updated_at",
    ),
    "member_group": ("member_id", "name"),
    "reward_type": ("id", "name"),
    "reward_category": ("id", "name"),
    "reward": (
        "id",
        "name",
        "description",
        "points",
        "reward_type_id",
        "category_id",
        "group_id",
        "multiple",
        "timeframe",
        "icon",
        "definition",
        "fingerprint",
        "enabled",
        "created_at",
        "updated_at",
    ),
    "kudos_tag": ("name", "label", "description", "predefined", "created_at"),
    "award": (
        "id",
        "reward_id",
        "member_id",
        "giver_id",
        "message",
        "points",
        "source",
        "award_key",
        "context",
        "awarded_at",
        "revoked_at",
        "revoked_by_id",
        "revoke_reason",
    ),
    "kudos": ("id", "giver_id", "message", "visibility", "channel", "created_at"),
    "kudos_receiver": ("kudos_id", "member_id", "created_at"),
    "kudos_tag_link": ("kudos_id", "tag", "created_at"),
    "ledger_entry": (
        "id",
        "member_id",
        "points",
        "kind",
        "award_id",
        "kudos_id",
        "note",
        "created_at",
    ),
}


@dataclass
class LoadReport:
    """Wall-clock seconds of each load phase, for the 'setup' line of the results."""

    phases: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.phases.values())

    def describe(self) -> str:
        parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.phases.items())
        return f"{self.total:.1f} s ({parts})"


class _Phase:
    """`with phase(report, "copy"):` adds the block's duration to the report."""

    def __init__(self, report: LoadReport, name: str) -> None:
        self.report, self.name = report, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        elapsed = time.perf_counter() - self.start
        self.report.phases[self.name] = self.report.phases.get(self.name, 0.0) + elapsed


def _rows(
    ds: Dataset, when: Callable[[int], Any], flag: Callable[[bool], Any], day: Any
) -> dict[str, Callable[[], Iterable[tuple[Any, ...]]]]:
    """Row generators per table, with times, booleans and dates converted by the callbacks.

    Generators rather than lists: the converted copy of two million ledger rows would double
    the memory for no benefit, as both drivers consume iterables in batches.
    """
    epoch = when(ds.epoch)
    type_ids = {name: i for i, name in enumerate(sorted({r.type_name for r in ds.rewards}), 1)}
    category_ids = {name: i for i, name in enumerate(sorted({r.category for r in ds.rewards}), 1)}

    def member() -> Iterator[tuple[Any, ...]]:
        for m in ds.members:
            yield (
                m.id,
                m.email,
                m.display_name,
                m.job_code,
                m.department,
                m.manager_id,
                m.birthday.month,
                m.birthday.day,
                m.birthday.year,
                day(m.hire_date),
                m.timezone,
                None,
                flag(m.active),
                flag(m.opt_out),
                flag(False),
                epoch,
                epoch,
            )

    def member_group() -> Iterator[tuple[Any, ...]]:
        for m in ds.members:
            for name in m.groups:
                yield (m.id, name)

    def reward() -> Iterator[tuple[Any, ...]]:
        for r in ds.rewards:
            yield (
                r.id,
                r.name,
                None,
                r.points,
                type_ids[r.type_name],
                category_ids[r.category],
                None,
                flag(r.multiple),
                r.timeframe,
                None,
                r.definition,
                r.fingerprint,
                flag(True),
                epoch,
                epoch,
            )

    def award() -> Iterator[tuple[Any, ...]]:
        revocations = ds.revocations
        for a in ds.awards:
            award_id = a[0]
            revoked = revocations.get(award_id)
            if revoked is None:
                yield (*a[:7], a[7], "{}", when(a[8]), None, None, None)
            else:
                key = f"{a[7]}#revoked{award_id}"
                yield (*a[:7], key, "{}", when(a[8]), when(revoked[0]), revoked[1], revoked[2])

    return {
        "member": member,
        "member_group": member_group,
        "reward_type": lambda: [(i, name) for name, i in type_ids.items()],
        "reward_category": lambda: [(i, name) for name, i in category_ids.items()],
        "reward": reward,
        "kudos_tag": lambda: [(n, label, None, flag(p), epoch) for n, label, p in ds.tags],
        "award": award,
        "kudos": lambda: ((k[0], k[1], k[2], k[3], None, when(k[4])) for k in ds.kudos),
        "kudos_receiver": lambda: ((r[0], r[1], when(r[2])) for r in ds.receivers),
        "kudos_tag_link": lambda: ((t[0], t[1], when(t[2])) for t in ds.tag_links),
        "ledger_entry": lambda: ((*e[:7], when(e[7])) for e in ds.ledger),
    }


def _sqlite_time_formatter() -> Callable[[int], str]:
    """Epoch seconds -> SQLAlchemy's SQLite DATETIME text, with a per-day prefix cache.

    strftime for eight million values costs more than the inserts; formatting the day once
    and the time of day with integer arithmetic is several times faster.
    """
    days: dict[int, str] = {}

    def fmt(ts: int) -> str:
        day_number, second = divmod(ts, DAY)
        prefix = days.get(day_number)
        if prefix is None:
            prefix = datetime.fromtimestamp(day_number * DAY, UTC).strftime("%Y-%m-%d ")
            days[day_number] = prefix
        hour, rest = divmod(second, 3600)
        minute, sec = divmod(rest, 60)
        return f"{prefix}{hour:02d}:{minute:02d}:{sec:02d}.000000"

    return fmt


def load_sqlite(path: str, ds: Dataset, *, analyze: bool = False) -> LoadReport:
    """Fill the migrated SQLite file at `path` with `ds`."""
    report = LoadReport()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-524288")  # 512 MiB for the index builds
        conn.execute("PRAGMA temp_store=MEMORY")
        placeholders = ",".join("?" for _ in TABLES)
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({placeholders})",
            TABLES,
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        rows = _rows(
            ds,
            _sqlite_time_formatter(),
            lambda value: 1 if value else 0,
            lambda value: None if value is None else value.isoformat(),
        )
        with _Phase(report, "insert"):
            for table in TABLES:
                columns = COLUMNS[table]
                sql = (
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' for _ in columns)})"
                )
                conn.execute("BEGIN")
                conn.executemany(sql, rows[table]())
                conn.execute("COMMIT")
        with _Phase(report, "indexes"):
            for _, sql in indexes:
                conn.execute(sql)
        if analyze:
            with _Phase(report, "analyze"):
                conn.execute("ANALYZE")
        with _Phase(report, "checkpoint"):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return report


def _pg_time(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def load_postgresql(dsn: str, ds: Dataset) -> LoadReport:
    """Fill the migrated PostgreSQL database at `dsn` (a plain libpq URL) with `ds`."""
    report = LoadReport()
    conn = await asyncpg.connect(dsn)
    try:
        # Foreign keys are enforced by triggers; a superuser may skip them for a load of data
        # that is consistent by construction. Others pay for the checks, which is only slower.
        superuser = await conn.fetchval(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        )
        if superuser:
            await conn.execute("SET session_replication_role = replica")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = ANY($1::text[]) "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            list(TABLES),
        )
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["indexname"]}"')
        rows = _rows(ds, _pg_time, bool, lambda value: value)
        with _Phase(report, "copy"):
            for table in TABLES:
                batch: list[tuple[Any, ...]] = []
                for row in rows[table]():
                    batch.append(row)
                    if len(batch) >= 200_000:
                        await conn.copy_records_to_table(
                            table, records=batch, columns=list(COLUMNS[table])
                        )
                        batch = []
                if batch:
                    await conn.copy_records_to_table(
                        table, records=batch, columns=list(COLUMNS[table])
                    )
        with _Phase(report, "indexes"):
            for index in indexes:
                await conn.execute(index["indexdef"])
        for table in SERIAL_TABLES:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        with _Phase(report, "vacuum analyze"):
            await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return report


async def copy_rows_postgresql(
    dsn: str, table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]
) -> int:
    """COPY `rows` into `table` of the database at `dsn` in batches, then ANALYZE it; the count.

    For tables `load_postgresql` does not fill (the sweep benchmark's attendance and activity).
    Indexes are kept: the rows come in primary-key order, which keeps index maintenance cheap.
    """
    conn = await asyncpg.connect(dsn)
    count = 0
    try:
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 200_000:
                await conn.copy_records_to_table(table, records=batch, columns=list(columns))
                count += len(batch)
                batch = []
        if batch:
            await conn.copy_records_to_table(table, records=batch, columns=list(columns))
            count += len(batch)
        await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()
    return count

"""Leaderboard benchmark: the real services against raw SQL and a naive Python baseline.

    .venv/bin/python -m bench.leaderboards [--members 100000] [--entries 2000000]
        [--db sqlite,postgresql] [--pg-url URL]

Why these three columns (DESIGN: "tables with ratios against a naive baseline and against raw
database speed on the same machine"):

- service: `LeaderboardService.leaderboard()` exactly as the bot calls it, through the project's
  `Database` (SQLAlchemy, aiosqlite/asyncpg, a session per call);
- raw SQL: the very statements the service sent, captured from SQLAlchemy's cursor events and
  replayed on one persistent raw-driver connection (stdlib sqlite3 / asyncpg), so the ratio
  service/raw is what the Python stack costs on top of the database;
- naive: what a first implementation would do, fetching every row of the window through the
  same session and summing per member in a dict, then sorting; naive/service is what pushing
  the aggregation into SQL buys.

The data set is generated deterministically (see `bench.dataset`), loaded with bulk paths that
bypass the ORM (`bench.loaders`; reported as setup time), and the members import is timed on
an empty database and again with nothing to change. Results are printed and written to
`bench/results/leaderboards-<db>.md`.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import hashlib
import os
import shlex
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event, func, or_, select
from sqlalchemy.engine import make_url

from bench.dataset import DEFAULT_SEED, NOW, Dataset, generate
from bench.loaders import LoadReport, load_postgresql, load_sqlite
from bench.pgserver import SERVER_SETTINGS, throwaway_postgres
from bench.timing import Budget, Sample, fmt_ms, fmt_ratio, machine_lines, measure
from rewards.clock import FixedClock, period_start
from rewards.leaderboards.rebuild import rebuild
from rewards.services import ledger
from rewards.services.leaderboards import LeaderboardFilter, LeaderboardService, Metric
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.migrate import upgrade_async
from rewards.store.models import (
    Award,
    Kudos,
    KudosReceiver,
    KudosTagLink,
    LedgerEntry,
    Member,
    MemberGroup,
    Reward,
    RewardCategory,
)

TIMEZONE = "America/New_York"
LIMIT = 10
RESULTS_DIR = Path(__file__).parent / "results"
BIG_TABLES = (
    "ledger_entry",
    "award",
    "kudos",
    "kudos_receiver",
    "kudos_tag_link",
    "leaderboard_counter",
)
CSV_COLUMNS = (
    "email",
    "display_name",
    "job_code",
    "department",
    "groups",
    "manager_email",
    "birthday",
    "hire_date",
    "timezone",
)


def _col(model: Any, name: str) -> Any:
    return getattr(model, name)


@dataclass(frozen=True)
class Board:
    """One leaderboard to time; `explain` boards get their full plan printed."""

    metric: str
    period: str
    filters: LeaderboardFilter = field(default_factory=LeaderboardFilter)
    explain: bool = False

    @property
    def label(self) -> str:
        parts = [f"{self.metric} · {self.period}"]
        for name in ("department", "group", "category", "tag"):
            value = getattr(self.filters, name)
            if value:
                parts.append(f"{name}={value}")
        return " ".join(parts)


BOARDS: tuple[Board, ...] = (
    *(
        Board(
            metric,
            period,
            explain=(metric, period) in {("points", "week"), ("kudos", "month")},
        )
        for metric in ("points", "badges", "kudos", "kudos_given")
        for period in ("week", "month", "quarter", "year", "all")
    ),
    Board("points", "month", LeaderboardFilter(department="Engineering")),
    Board("points", "quarter", LeaderboardFilter(group="Mentors")),
    Board("kudos", "month", LeaderboardFilter(tag="teamwork")),
    Board("points", "year", LeaderboardFilter(tag="teamwork")),
    Board("kudos_given", "week", LeaderboardFilter(tag="teamwork")),
    Board("points", "month", LeaderboardFilter(category="Recognition")),
    Board("badges", "year", LeaderboardFilter(category="Leadership")),
)


@dataclass
class Row:
    """One line of the results table."""

    label: str
    service: Sample
    raw: Sample | None
    naive: Sample | None
    note: str = ""


# --- SQL capture and raw replay -----------------------------------------------------------------


class StatementRecorder:
    """Records the SQL and driver parameters SQLAlchemy sends, while `recording()` is open.

    Capturing at the cursor rather than compiling `LeaderboardService._query` ourselves means
    the raw baseline can never drift from what the service really executes, bind processing
    (SQLite's datetime text, PostgreSQL's `$n` placeholders) included.
    """

    def __init__(self, db: Database) -> None:
        self.active: list[tuple[str, Any]] | None = None
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._on_execute)

    def _on_execute(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any
    ) -> None:
        if self.active is not None and not statement.lstrip().upper().startswith("BEGIN"):
            self.active.append((statement, parameters))

    @contextmanager
    def recording(self) -> Iterator[list[tuple[str, Any]]]:
        self.active = []
        try:
            yield self.active
        finally:
            self.active = None


class RawSQLite:
    """One persistent stdlib connection: the fastest a Python program can ask SQLite."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path)

    async def run(self, statements: Sequence[tuple[str, Any]]) -> list[Any]:
        rows: list[Any] = []
        for sql, params in statements:
            rows = self.conn.execute(sql, tuple(params or ())).fetchall()
        return rows

    async def explain(self, sql: str, params: Any, *, analyze: bool) -> list[str]:
        del analyze  # SQLite has no EXPLAIN ANALYZE; the query plan is what there is
        plan = self.conn.execute(f"EXPLAIN QUERY PLAN {sql}", tuple(params or ())).fetchall()
        depth: dict[int, int] = {0: -1}
        lines = []
        for node, parent, _, detail in plan:
            depth[node] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node] + detail)
        return lines

    async def close(self) -> None:
        self.conn.close()


class RawPostgres:
    """One persistent asyncpg connection (asyncpg prepares and caches statements itself)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, dsn: str) -> RawPostgres:
        return cls(await asyncpg.connect(dsn))

    async def run(self, statements: Sequence[tuple[str, Any]]) -> list[Any]:
        rows: list[Any] = []
        for sql, params in statements:
            rows = list(await self.conn.fetch(sql, *(params or ())))
        return rows

    async def explain(self, sql: str, params: Any, *, analyze: bool) -> list[str]:
        options = "ANALYZE, BUFFERS" if analyze else "COSTS OFF"
        rows = await self.conn.fetch(f"EXPLAIN ({options}) {sql}", *(params or ()))
        return [row[0] for row in rows]

    async def close(self) -> None:
        await self.conn.close()


Raw = RawSQLite | RawPostgres


# --- the naive baseline -------------------------------------------------------------------------


async def naive_leaderboard(db: Database, board: Board) -> list[tuple[int, int]]:
    """Fetch every row of the window, sum per member in Python, sort, keep the top `LIMIT`.

    Filters that select rows (the tag join) stay in SQL; eligibility (opted out, inactive,
    department, group) is applied in Python from id sets, as a first implementation would.
    Ties are broken like the service (value, then display name, then id), so the results can
    be compared row for row.
    """
    since = period_start(board.period, NOW, TIMEZONE)
    metric, filters = Metric(board.metric), board.filters
    query: Any
    if metric is Metric.POINTS:
        query = select(_col(LedgerEntry, "member_id"), _col(LedgerEntry, "points"))
        time_col, kudos_id = _col(LedgerEntry, "created_at"), _col(LedgerEntry, "kudos_id")
    elif metric is Metric.BADGES:
        query = select(_col(Award, "member_id")).where(_col(Award, "revoked_at").is_(None))
        time_col, kudos_id = _col(Award, "awarded_at"), None
    elif metric is Metric.KUDOS_RECEIVED:
        query = select(_col(KudosReceiver, "member_id"))
        time_col, kudos_id = _col(KudosReceiver, "created_at"), _col(KudosReceiver, "kudos_id")
    else:
        query = select(_col(Kudos, "giver_id"))
        time_col, kudos_id = _col(Kudos, "created_at"), _col(Kudos, "id")
    if since is not None:
        query = query.where(time_col >= since)
    if filters.tag and kudos_id is not None:
        query = query.join(
            KudosTagLink,
            (_col(KudosTagLink, "kudos_id") == kudos_id)
            & (_col(KudosTagLink, "tag") == filters.tag.lower()),
        )
    if filters.category and metric in (Metric.POINTS, Metric.BADGES):
        if metric is Metric.POINTS:
            query = query.join(Award, _col(Award, "id") == _col(LedgerEntry, "award_id"))
        query = query.join(Reward, _col(Reward, "id") == _col(Award, "reward_id")).join(
            RewardCategory,
            (_col(RewardCategory, "id") == _col(Reward, "category_id"))
            & (func.lower(_col(RewardCategory, "name")) == filters.category.lower()),
        )
    async with db.read() as session:
        totals: defaultdict[int, int] = defaultdict(int)
        for row in (await session.execute(query)).all():
            totals[row[0]] += row[1] if len(row) > 1 else 1
        excluded = set(
            await session.scalars(
                select(_col(Member, "id")).where(
                    or_(_col(Member, "active").is_(False), _col(Member, "leaderboard_opt_out"))
                )
            )
        )
        allowed: set[int] | None = None
        if filters.department:
            allowed = set(
                await session.scalars(
                    select(_col(Member, "id")).where(
                        func.lower(_col(Member, "department")) == filters.department.lower()
                    )
                )
            )
        if filters.group:
            allowed = set(
                await session.scalars(
                    select(_col(MemberGroup, "member_id")).where(
                        func.lower(_col(MemberGroup, "name")) == filters.group.lower()
                    )
                )
            )
        ranking = sorted(
            (
                (value, member)
                for member, value in totals.items()
                if value > 0 and member not in excluded and (allowed is None or member in allowed)
            ),
            reverse=True,
        )
        if not ranking:
            return []
        cutoff = ranking[min(LIMIT, len(ranking)) - 1][0]
        candidates = [(value, member) for value, member in ranking if value >= cutoff]
        names: dict[int, str] = dict(
            (
                await session.execute(
                    select(_col(Member, "id"), _col(Member, "display_name")).where(
                        _col(Member, "id").in_([m for _, m in candidates])
                    )
                )
            ).all()
        )
    candidates.sort(key=lambda vm: (-vm[0], names[vm[1]], vm[1]))
    return [(member, value) for value, member in candidates[:LIMIT]]


# --- members import -----------------------------------------------------------------------------


def write_members_csv(ds: Dataset, path: Path) -> None:
    """The HR export the importer is timed on: one row per member of the data set."""
    email = {m.id: m.email for m in ds.members}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for m in ds.members:
            writer.writerow(
                (
                    m.email,
                    m.display_name,
                    m.job_code,
                    m.department,
                    ";".join(m.groups),
                    email[m.manager_id] if m.manager_id else "",
                    m.birthday.isoformat(),
                    m.hire_date.isoformat(),
                    m.timezone,
                )
            )


def _file_version(path: Path) -> str:
    """Which revision of a file was measured (the tree may be edited between runs)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{path.name} sha256 {digest}, modified {modified}"


def _module_version(function: Any) -> str:
    return _file_version(Path(sys.modules[function.__module__].__file__ or ""))


def code_versions() -> str:
    """The measured code: the services, the models and the migrations that made the indexes."""
    files = [
        Path(sys.modules[module].__file__ or "")
        for module in ("rewards.services.leaderboards", "rewards.services.ledger")
    ]
    files.append(Path(sys.modules["rewards.store.models"].__file__ or ""))
    versions = Path(sys.modules["rewards.store.migrate"].__file__ or "").parent / "migrations"
    files += sorted((versions / "versions").glob("0*.py"))
    return "; ".join(_file_version(f) for f in files)


@dataclass
class ImportTiming:
    version: str = ""
    created_s: float | None = None
    created_report: str = ""
    unchanged_s: float | None = None
    unchanged_report: str = ""
    note: str = ""

    def lines(self, rows: int) -> list[str]:
        if self.created_s is None or self.unchanged_s is None:
            return [f"- members import ({rows:,} CSV rows): n/a — {self.note}"]
        return [
            f"- members import ({self.version}) into an empty database ({rows:,} CSV rows): "
            f"{self.created_s:.1f} s ({rows / self.created_s:,.0f} rows/s) — {self.created_report}",
            f"- members import again, nothing to change: {self.unchanged_s:.1f} s "
            f"({rows / self.unchanged_s:,.0f} rows/s) — {self.unchanged_report}",
        ]


def _describe_report(report: Any) -> str:
    rejected = list(getattr(report, "rejected", []))
    counts = {name: getattr(report, name, 0) for name in ("created", "updated", "unchanged")}
    text = ", ".join(f"{name} {n:,}" for name, n in counts.items())
    text += f", rejected {len(rejected):,}"
    if rejected:
        text += f" (first: {rejected[0]})"
    return text


async def time_import(url: str, csv_path: Path) -> ImportTiming:
    """Import the CSV into the (empty, migrated) database at `url`, twice."""
    try:
        from rewards.services.members_import import import_members
    except ImportError as problem:
        return ImportTiming(note=f"rewards.services.members_import is not importable ({problem})")
    db = Database(url)
    timing = ImportTiming(version=_module_version(import_members))
    try:
        clock = FixedClock(NOW)
        start = time.perf_counter()
        report = await import_members(db, csv_path, clock=clock)
        timing.created_s = time.perf_counter() - start
        timing.created_report = _describe_report(report)
        start = time.perf_counter()
        report = await import_members(db, csv_path, clock=clock)
        timing.unchanged_s = time.perf_counter() - start
        timing.unchanged_report = _describe_report(report)
    except Exception as problem:  # the importer is new: report its failure, keep benchmarking
        timing.note = f"the import failed: {type(problem).__name__}: {problem}"
        timing.created_s = timing.unchanged_s = None
    finally:
        await db.dispose()
    return timing


# --- one database -------------------------------------------------------------------------------


@dataclass
class Backend:
    """Where one database lives and how to reach it with SQLAlchemy and with the raw driver."""

    name: str  # "sqlite" | "postgresql"
    url: str  # SQLAlchemy URL
    raw_target: str  # SQLite path or libpq DSN
    version: str = ""

    @property
    def title(self) -> str:
        return "SQLite" if self.name == "sqlite" else "PostgreSQL"


async def build_counters(backend: Backend) -> tuple[int, float]:
    """Fill the leaderboard counters from the bulk-loaded facts, as `rewards leaderboard
    rebuild` does (the loaders bypass the services that keep them), then let the database
    gather statistics on them as it did for the loaded tables."""
    start = time.perf_counter()
    db = Database(backend.url)
    try:
        rows = await rebuild(db, TIMEZONE, NOW)
    finally:
        await db.dispose()
    if backend.name == "postgresql":
        conn = await asyncpg.connect(backend.raw_target)
        try:
            await conn.execute("VACUUM ANALYZE leaderboard_counter")
        finally:
            await conn.close()
    return rows, time.perf_counter() - start


async def _open_raw(backend: Backend) -> Raw:
    if backend.name == "sqlite":
        return RawSQLite(backend.raw_target)
    return await RawPostgres.connect(backend.raw_target)


def _scan_notes(board: Board, plan: Sequence[str]) -> list[str]:
    """Whole-table work in a windowed query: the sign of a missing or unusable index.

    A windowed (not `all`) leaderboard should touch only the window's rows. A sequential scan
    (PostgreSQL) or a SQLite `SCAN` of a big table or of one of its indexes reads all of it;
    a non-covering index scan also fetches the table row of every index entry.
    """
    if board.period == "all":
        return []
    notes = []
    for line in plan:
        text = line.strip().removeprefix("->").strip()
        for table in BIG_TABLES:
            if f"Seq Scan on {table} " in f"{text} " or text in (
                f"SCAN {table}",
                f"SCAN TABLE {table}",
            ):
                notes.append(f"full scan of {table}")
            elif text.startswith(f"SCAN {table} USING COVERING INDEX "):
                index = text.rsplit(" ", 1)[1]
                notes.append(f"full scan of covering index {index} of {table}")
            elif text.startswith(f"SCAN {table} USING INDEX "):
                index = text.rsplit(" ", 1)[1]
                notes.append(
                    f"full scan of index {index} of {table}, not covering: "
                    "a table-row lookup for every entry the window keeps"
                )
    return list(dict.fromkeys(notes))


async def _timed_call(
    recorder: StatementRecorder, call: Callable[[], Awaitable[Any]], budget: Budget
) -> tuple[Sample, list[tuple[str, Any]]]:
    """Time a service call; the SQL of its warm-up run is what the raw baseline replays."""
    statements: list[tuple[str, Any]] = []

    @contextmanager
    def record() -> Iterator[None]:
        with recorder.recording() as recorded:
            yield
        statements.extend(recorded)

    return await measure(call, budget, record), statements


async def bench_backend(
    backend: Backend, ds: Dataset, args: argparse.Namespace, csv_path: Path, header: list[str]
) -> list[str]:
    """Set up one database, run every measurement and return its markdown section."""
    out: list[str] = [f"## {backend.title} {backend.version}".rstrip(), ""]
    print(f"[{backend.name}] migrating", file=sys.stderr)
    await upgrade_async(backend.url)
    if backend.name == "postgresql":
        conn = await asyncpg.connect(backend.raw_target)
        try:
            if await conn.fetchval("SELECT count(*) FROM member"):
                raise SystemExit(f"{backend.raw_target}: the database is not empty; use a new one")
        finally:
            await conn.close()

    print(f"[{backend.name}] timing the members import", file=sys.stderr)
    if backend.name == "sqlite":
        import_path = Path(backend.raw_target).with_name("import.db")
        import_url = f"sqlite+aiosqlite:///{import_path}"
        await upgrade_async(import_url)
        imports = await time_import(import_url, csv_path)
        _remove_sqlite(import_path)
    else:
        imports = await time_import(backend.url, csv_path)
        conn = await asyncpg.connect(backend.raw_target)
        try:  # empty the members again for the bulk load (ids restart at 1)
            await conn.execute(
                "TRUNCATE member, member_group, platform_account RESTART IDENTITY CASCADE"
            )
        finally:
            await conn.close()

    print(f"[{backend.name}] bulk loading", file=sys.stderr)
    load: LoadReport
    if backend.name == "sqlite":
        load = await asyncio.to_thread(
            load_sqlite, backend.raw_target, ds, analyze=args.sqlite_analyze
        )
    else:
        load = await load_postgresql(backend.raw_target, ds)

    print(
        f"[{backend.name}] building the leaderboard counters (rewards leaderboard rebuild)",
        file=sys.stderr,
    )
    counter_rows, rebuild_s = await build_counters(backend)

    counts = ds.counts()
    out += [
        *header,
        "",
        "### Setup",
        "",
        f"- data set (seed {ds.seed}): "
        + ", ".join(f"{table} {n:,}" for table, n in counts.items()),
        f"- bulk load (setup, not measured): {load.describe()}",
        f"- leaderboard counters (setup, not measured): `rewards leaderboard rebuild` wrote "
        f"{counter_rows:,} rows in {rebuild_s:.1f} s",
        *imports.lines(len(ds.members)),
    ]
    if backend.name == "sqlite":
        size = _mib(Path(backend.raw_target))
        analyzed = "with ANALYZE" if args.sqlite_analyze else "no ANALYZE, as the app runs none"
        out.append(f"- database file {size:,.0f} MiB, WAL mode, {analyzed}")
    else:
        settings = ", ".join(f"{k}={v}" for k, v in SERVER_SETTINGS.items())
        where = "given --pg-url server" if args.pg_url else f"throwaway server: {settings}"
        out.append(f"- {where}; VACUUM ANALYZE after the load (what autovacuum would do)")
    out.append("")

    db = Database(backend.url)
    recorder = StatementRecorder(db)
    raw = await _open_raw(backend)
    service = LeaderboardService(db, Settings(timezone=TIMEZONE), FixedClock(NOW))
    budget = Budget(args.budget, args.min_repeats, args.max_repeats)
    # The naive baseline is only a yardstick, and its year/all windows take seconds per run:
    # one run suffices for those. Baselines skip the warm-up: the service run just before
    # warmed the same rows.
    naive_budget = Budget(args.budget, 1, args.max_repeats)
    rows: list[Row] = []
    plans: list[str] = []
    notes: list[str] = []
    try:
        for board in BOARDS:
            print(f"[{backend.name}] {board.label}", file=sys.stderr)

            async def call(board: Board = board) -> list[tuple[int, int]]:
                result = await service.leaderboard(
                    board.metric, board.period, board.filters, limit=LIMIT
                )
                return [(r.member_id, r.value) for r in result.rows]

            service_sample, statements = await _timed_call(recorder, call, budget)
            raw_sample = await measure(
                lambda s=statements: raw.run(s),  # type: ignore[misc]
                budget,
                warmup=False,
            )
            naive_sample = None
            if not args.skip_naive:
                naive_sample = await measure(
                    lambda board=board: naive_leaderboard(db, board),  # type: ignore[misc]
                    naive_budget,
                    warmup=False,
                )
            expected = service_sample.result
            mismatch = []
            if [(r[0], int(r[1])) for r in raw_sample.result] != expected:
                mismatch.append("raw")
            if naive_sample is not None and naive_sample.result != expected:
                mismatch.append("naive")
            note = f"results differ: {', '.join(mismatch)}" if mismatch else ""
            rows.append(Row(board.label, service_sample, raw_sample, naive_sample, note))
            sql, params = statements[-1]
            plan = await raw.explain(sql, params, analyze=board.explain)
            for finding in _scan_notes(board, plan):
                notes.append(f"- {board.label}: {finding}")
            if board.explain:
                kind = "EXPLAIN (ANALYZE, BUFFERS)" if backend.name == "postgresql" else "EXPLAIN"
                plans += [
                    f"#### {board.label}",
                    "",
                    "```sql",
                    sql.strip(),
                    "```",
                    "",
                    f"parameters: {tuple(params or ())!r}",
                    "",
                    f"{kind}:",
                    "",
                    "```",
                    *plan,
                    "```",
                    "",
                ]

        for label, member_id in _sample_members(ds):
            print(f"[{backend.name}] ledger for {label}", file=sys.stderr)

            async def summary(member_id: int = member_id) -> Any:
                return await ledger.summary(db, member_id)

            async def history(member_id: int = member_id) -> Any:
                return await ledger.history(db, member_id)

            for name, fn in (("ledger.summary", summary), ("ledger.history (20)", history)):
                sample, statements = await _timed_call(recorder, fn, budget)
                raw_sample = await measure(
                    lambda s=statements: raw.run(s),  # type: ignore[misc]
                    budget,
                    warmup=False,
                )
                rows.append(Row(f"{name} {label}", sample, raw_sample, None))
    finally:
        await raw.close()
        await db.dispose()

    out += [
        "### Timings",
        "",
        "Milliseconds; median and nearest-rank p95 of as many runs as fit in "
        f"~{budget.seconds:g} s (service: after one warm-up, at least {budget.minimum} runs; "
        f"raw SQL: at least {budget.minimum} runs right after the service's; naive: at least "
        f"{naive_budget.minimum}). limit=10, TIMEZONE={TIMEZONE}, now={NOW.isoformat()}.",
        "",
        *table(rows),
        "",
    ]
    mismatches = [f"- {r.label}: {r.note}" for r in rows if r.note]
    if mismatches:
        out += ["**Result mismatches** (service vs baselines):", "", *mismatches, ""]
    out += ["### Query plans", "", *plans]
    out += [
        "Full scans of a big table in a windowed (not `all`) leaderboard query:",
        "",
        *(notes or ["- none"]),
        "",
    ]
    return out


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _mib(path: Path) -> float:
    return path.stat().st_size / 2**20


def _sample_members(ds: Dataset) -> list[tuple[str, int]]:
    """The member with the most ledger entries and one with a typical (median) count."""
    counts = Counter(entry[1] for entry in ds.ledger)
    ordered = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))
    busiest, busiest_n = ordered[-1]
    typical, typical_n = ordered[len(ordered) // 2]
    return [
        (f"(busiest member, {busiest_n:,} entries)", busiest),
        (f"(typical member, {typical_n:,} entries)", typical),
    ]


def table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| leaderboard | service median ms | p95 | raw SQL ms | naive ms | service/raw "
        "| naive/service |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        raw = row.raw.median if row.raw else None
        naive = row.naive.median if row.naive else None
        label = row.label + (" ⚠" if row.note else "")
        lines.append(
            f"| {label} | {fmt_ms(row.service.median)} | {fmt_ms(row.service.p95)} "
            f"| {fmt_ms(raw)} | {fmt_ms(naive)} | {fmt_ratio(row.service.median, raw)} "
            f"| {fmt_ratio(naive, row.service.median)} |"
        )
    return lines


# --- orchestration ------------------------------------------------------------------------------


async def _postgres_version(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def _sqlalchemy_url(dsn: str) -> str:
    url = make_url(dsn)
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def _libpq_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def run(args: argparse.Namespace, command: str) -> None:
    started = time.perf_counter()
    databases = [d.strip() for d in args.db.split(",") if d.strip()]
    unknown = set(databases) - {"sqlite", "postgresql"}
    if unknown:
        raise SystemExit(f"--db: unknown database(s) {', '.join(sorted(unknown))}")

    print(f"generating {args.members:,} members, {args.entries:,} entries", file=sys.stderr)
    start = time.perf_counter()
    ds = generate(args.members, args.entries, args.seed)
    generated_s = time.perf_counter() - start
    # Millions of long-lived tuples: keep the cyclic GC from rescanning them during timings.
    gc.collect()
    gc.freeze()

    work = Path(tempfile.mkdtemp(prefix="nav-rewards-bench."))
    try:
        csv_path = work / "members.csv"
        write_members_csv(ds, csv_path)
        for name in databases:
            if name == "sqlite":
                path = work / "bench.db"
                backend = Backend(
                    name, f"sqlite+aiosqlite:///{path}", str(path), sqlite3.sqlite_version
                )
                await _bench_one(backend, ds, args, csv_path, command, generated_s)
            elif args.pg_url:
                dsn = _libpq_dsn(args.pg_url)
                backend = Backend(name, _sqlalchemy_url(dsn), dsn, await _postgres_version(dsn))
                await _bench_one(backend, ds, args, csv_path, command, generated_s)
            else:
                with throwaway_postgres() as admin_dsn:
                    conn = await asyncpg.connect(admin_dsn)
                    try:
                        await conn.execute("CREATE DATABASE rewards_bench")
                    finally:
                        await conn.close()
                    dsn = str(make_url(admin_dsn).set(database="rewards_bench"))
                    backend = Backend(name, _sqlalchemy_url(dsn), dsn, await _postgres_version(dsn))
                    await _bench_one(backend, ds, args, csv_path, command, generated_s)
    finally:
        if args.keep:
            print(f"kept the work directory {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"total run time {time.perf_counter() - started:.0f} s", file=sys.stderr)


async def _bench_one(
    backend: Backend,
    ds: Dataset,
    args: argparse.Namespace,
    csv_path: Path,
    command: str,
    generated_s: float,
) -> None:
    start = time.perf_counter()
    header = [
        f"Command: `{command}`",
        "",
        "Machine:",
        "",
        *machine_lines(backend.version if backend.name == "postgresql" else None),
        f"- data set generated in {generated_s:.1f} s (shared by all databases)",
        f"- code measured: {code_versions()}",
    ]
    section = await bench_backend(backend, ds, args, csv_path, header)
    load = os.getloadavg()
    section.append(
        f"Section run time: {time.perf_counter() - start:.0f} s; load average at the end: "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    text = "\n".join(section) + "\n"
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    suffix = "-analyze" if backend.name == "sqlite" and args.sqlite_analyze else ""
    (RESULTS_DIR / f"leaderboards-{backend.name}{suffix}.md").write_text(text, encoding="utf-8")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.leaderboards", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=2_000_000, help="ledger entries")
    parser.add_argument("--db", default="sqlite,postgresql", help="sqlite,postgresql")
    parser.add_argument(
        "--pg-url",
        default="",
        help="an EMPTY PostgreSQL database to use instead of a throwaway server",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--budget", type=float, default=1.0, help="seconds of repeats per measurement"
    )
    parser.add_argument("--min-repeats", type=int, default=3)
    parser.add_argument("--max-repeats", type=int, default=30)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the work directory (SQLite files, members CSV) and print where it is",
    )
    parser.add_argument("--skip-naive", action="store_true", help="leave the naive baseline out")
    parser.add_argument(
        "--sqlite-analyze",
        action="store_true",
        help="run ANALYZE after the SQLite load (the app itself never does)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    # Echo the command line into the results, with any database password hidden.
    shown = [make_url(a).render_as_string(hide_password=True) if "://" in a else a for a in argv]
    asyncio.run(run(args, shlex.join([".venv/bin/python", "-m", "bench.leaderboards", *shown])))


if __name__ == "__main__":
    main()

"""Event hooks benchmark: CPU per kudos, with the hooks it sets off, at 100,000 members.

    .venv/bin/python -m bench.hooks [--members 100000] [--kudos 50] [--pg-url URL]

A kudos sets off ``kudos.given`` (giver) and ``kudos.received`` (receiver): the Automated Badges
listening to them and the evaluation of every `auto_evaluation` workflow for that member (the
example catalogue's Sales Mastery auto-enrols and checks three conditions). This times
`core.kudos.give` plus those hooks, one kudos after another between random pairs of members, and
reports per kudos: this process's CPU (`time.process_time`), wall time, and the SQL statements
sent (a `before_cursor_execute` counter).

The script runs against whichever `rewards` is on the path, so the same file measures the code
before the change (hooks inline in `give`, copy the file elsewhere and put the old tree first on
PYTHONPATH) and after it (hooks staged and drained by `core.hooks.drain()`, counted in the kudos).

The data: `bench.dataset` members (seeded), bulk loaded by `bench.loaders`; the catalogue is
examples/rewards.json through the catalogue loader. PostgreSQL: a throwaway server
(`bench.pgserver`) unless `--pg-url` names an EMPTY database.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event
from sqlalchemy.engine import make_url

from bench.dataset import DEFAULT_SEED, NOW, Dataset, generate
from bench.loaders import load_postgresql
from bench.pgserver import throwaway_postgres
from bench.timing import machine_lines
from rewards.catalog.loader import load_file
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.services.catalog import load_catalog
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.migrate import upgrade_async

CATALOGUE = Path(
    os.environ.get(
        "HOOKS_CATALOGUE", Path(__file__).resolve().parent.parent / "examples" / "rewards.json"
    )
)


def _sqlalchemy_url(dsn: str) -> str:
    return str(make_url(dsn).set(drivername="postgresql+asyncpg"))


def _libpq_dsn(url: str) -> str:
    return str(make_url(url).set(drivername="postgresql"))


async def prepare(url: str, dsn: str, ds: Dataset) -> list[str]:
    await upgrade_async(url)
    conn = await asyncpg.connect(dsn)
    try:
        if await conn.fetchval("SELECT count(*) FROM member"):
            raise SystemExit(f"{dsn}: the database is not empty; use a new one")
    finally:
        await conn.close()
    print(f"bulk loading {len(ds.members):,} members", file=sys.stderr)
    load = await load_postgresql(dsn, ds)
    db = Database(url)
    try:
        report = await load_catalog(db, load_file(CATALOGUE), clock=FixedClock(NOW))
    finally:
        await db.dispose()
    return [
        f"- members bulk load (setup): {load.describe()}",
        f"- catalogue examples/rewards.json: {len(report.added)} rewards",
    ]


async def measure(url: str, ds: Dataset, kudos: int, seed: int) -> dict[str, float]:
    core = Core(settings=Settings(database_url=url), db=Database(url), clock=FixedClock(NOW))
    drain = getattr(getattr(core, "hooks", None), "drain", None)  # absent before the change
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(core.db.engine.sync_engine, "before_cursor_execute", count)
    rng = random.Random(seed)
    active = [m.id for m in ds.members if m.active]
    cpu: list[float] = []
    reply_cpu: list[float] = []
    wall: list[float] = []
    counts: list[int] = []
    try:
        for i in range(kudos + 1):  # the first is a warm-up (pool, catalogue, prepared plans)
            giver, receiver = rng.sample(active, 2)
            statements = 0
            c0, w0 = time.process_time(), time.perf_counter()
            await core.kudos.give(giver, [receiver], f"Thanks for the help #{i}")
            given = time.process_time()
            if drain is not None:
                await drain()
            c1, w1 = time.process_time(), time.perf_counter()
            if i:
                cpu.append((c1 - c0) * 1000)
                reply_cpu.append((given - c0) * 1000)
                wall.append((w1 - w0) * 1000)
                counts.append(statements)
    finally:
        await core.close()
    return {
        "cpu_ms": statistics.median(cpu),
        "cpu_mean_ms": statistics.fmean(cpu),
        "give_cpu_ms": statistics.median(reply_cpu),
        "wall_ms": statistics.median(wall),
        "statements": statistics.median(counts),
        "kudos": float(kudos),
        "queued": float(drain is not None),
    }


async def run_on(url: str, dsn: str, ds: Dataset, args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        version = str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
    machine = machine_lines(version)
    setup = await prepare(url, dsn, ds)
    print(f"timing {args.kudos} kudos", file=sys.stderr)
    result = await measure(url, ds, args.kudos, args.seed)
    hooks = "queued, drained after the commit" if result["queued"] else "inline in give()"
    lines = [
        f"## Event hooks — PostgreSQL {version}, {date.today().isoformat()}",
        "",
        "Machine:",
        "",
        *machine,
        "",
        f"- {len(ds.members):,} members (seed {ds.seed}), hooks {hooks}",
        *setup,
        "",
        "| kudos timed | CPU ms / kudos with hooks (median) | of which `give()` | CPU ms (mean) "
        "| wall ms (median) | statements / kudos |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {args.kudos} | {result['cpu_ms']:.1f} | {result['give_cpu_ms']:.1f} "
        f"| {result['cpu_mean_ms']:.1f} | {result['wall_ms']:.1f} | {result['statements']:.0f} |",
    ]
    print("\n".join(lines))


async def run(args: argparse.Namespace) -> None:
    print(f"generating {args.members:,} members", file=sys.stderr)
    full = generate(args.members, 0, args.seed)
    ds = Dataset(seed=full.seed, members=full.members, rewards=[], tags=[])
    gc.collect()
    gc.freeze()
    if args.pg_url:
        dsn = _libpq_dsn(args.pg_url)
        await run_on(_sqlalchemy_url(dsn), dsn, ds, args)
        return
    with throwaway_postgres() as admin_dsn:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute("CREATE DATABASE rewards_hooks")
        finally:
            await conn.close()
        dsn = str(make_url(admin_dsn).set(database="rewards_hooks"))
        await run_on(_sqlalchemy_url(dsn), dsn, ds, args)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hooks", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--kudos", type=int, default=50, help="kudos timed (after one warm-up)")
    parser.add_argument(
        "--pg-url", default="", help="an EMPTY PostgreSQL database instead of a throwaway server"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()

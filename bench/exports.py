"""Exports at full size: does every kind stream in constant memory, and how fast?

    .venv/bin/python -m bench.exports                      # 100,000 members, 1,000,000 entries
    .venv/bin/python -m bench.exports --members 2000 --entries 20000   # quick check

A throwaway PostgreSQL server (bench/pgserver.py) is filled with the seeded data set
(bench/dataset.py, bench/loaders.py), then each export kind runs in a process of its own
(`--child`), exactly as `rewards export KIND --output FILE` does (`bots.commands.export._write`,
rows streamed into CSV), so its peak resident memory (VmHWM) is the export's alone. Each
process reports its memory before the export (interpreter, SQLAlchemy, asyncpg and the models
imported, connected) and its peak after: constant memory means the peak does not grow with the
number of rows. The ledger is also exported for its last month alone, which shows the same peak
for ~1/13 of the rows. The shop is empty in this data set, so `redemptions` exports its header only;
nominations likewise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

KINDS = ("members", "kudos", "awards", "ledger", "nominations", "redemptions", "participation")


def _rss_peak_kb() -> int:
    """This process's peak resident memory (VmHWM). Not `ru_maxrss`: that survives the exec of
    a forked child, so every child would report the benchmark parent's peak (the data set)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


async def _export(url: str, kind: str, first: str | None, out: IO[bytes]) -> dict[str, Any]:
    from sqlalchemy import text

    from bots.commands.export import _write
    from rewards.store.db import Database

    database = Database(url)
    try:
        async with database.read() as session:  # connected, like the CLI before its first row
            await session.execute(text("SELECT 1"))
        before = _rss_peak_kb()
        started = time.perf_counter()
        rows = await _write(database, kind, first, None, "csv", "UTC", out, False)
        seconds = time.perf_counter() - started
    finally:
        await database.dispose()
    return {"rows": rows, "seconds": seconds, "rss_before_kb": before}


def _child(url: str, kind: str, first: str | None, out: str) -> None:
    with open(out, "wb") as handle:
        result = asyncio.run(_export(url, kind, first, handle))
    result.update(bytes=os.path.getsize(out), rss_peak_kb=_rss_peak_kb())
    print(json.dumps(result))


def _run_child(url: str, kind: str, out: Path, first: str | None = None) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.exports", "--child", kind, "--url", url, "--out", str(out)]
    if first:
        argv += ["--from", first]
    done = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"export of {kind} failed ({done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()}, load average {load}"


async def _prepare(dsn: str, members: int, entries: int, seed: int) -> str:
    import asyncpg
    from sqlalchemy.engine import make_url

    from bench.dataset import generate
    from bench.loaders import load_postgresql
    from rewards.store.migrate import upgrade_async

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE DATABASE rewards_bench")
    finally:
        await conn.close()
    target = make_url(dsn).set(database="rewards_bench")
    url = target.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raw = target.set(drivername="postgresql").render_as_string(hide_password=False)
    print(f"generating {members:,} members and {entries:,} ledger entries", file=sys.stderr)
    ds = generate(members, entries, seed)
    await upgrade_async(url)
    print("loading PostgreSQL", file=sys.stderr)
    await load_postgresql(raw, ds)
    print("data set: " + ", ".join(f"{t} {n:,}" for t, n in ds.counts().items()), file=sys.stderr)
    return url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261118)
    parser.add_argument("--child", choices=KINDS)
    parser.add_argument("--url")
    parser.add_argument("--out")
    parser.add_argument("--from", dest="first")
    args = parser.parse_args(argv)
    if args.child:
        _child(args.url, args.child, args.first, args.out)
        return

    from bench.pgserver import throwaway_postgres

    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"nav-rewards-exports-{os.getpid()}.csv"
    lines = [
        f"Exports on PostgreSQL, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {_machine()}",
        f"data set: {args.members:,} members, {args.entries:,} ledger entries (seed {args.seed})",
        "",
        "| export | rows | MB | seconds | rows/s | RSS before (MB) | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    with throwaway_postgres() as dsn:
        url = asyncio.run(_prepare(dsn, args.members, args.entries, args.seed))
        runs = [(kind, None) for kind in KINDS] + [("ledger", "2026-10-19")]
        try:
            for kind, first in runs:
                print(f"exporting {kind}{' from ' + first if first else ''}", file=sys.stderr)
                r = _run_child(url, kind, work, first)
                rate = r["rows"] / r["seconds"] if r["seconds"] else 0
                lines.append(
                    f"| {kind}{' (last month)' if first else ''} | {r['rows']:,} | "
                    f"{r['bytes'] / 1e6:.1f} | {r['seconds']:.1f} | {rate:,.0f} | "
                    f"{r['rss_before_kb'] / 1024:.0f} | {r['rss_peak_kb'] / 1024:.0f} |"
                )
        finally:
            work.unlink(missing_ok=True)
    lines.append(f"\nload average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

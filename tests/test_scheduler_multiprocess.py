"""Two real `rewards serve` processes on one PostgreSQL database, a lottery every second, and one
process killed (SIGKILL) mid-run: every fire time is drawn exactly once with `count` winners, and
the run the dead process left behind is taken over and finished by the survivor."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from rewards.store.db import Database
from rewards.store.migrate import upgrade_async
from rewards.store.models import Award, JobRun, LotteryRun
from tests.conftest import _Backends
from tests.factories import add_member

pytestmark = pytest.mark.postgresql_only

ROOT = Path(__file__).resolve().parent.parent
REWARD_ID = 500
JOB_ID = "tick_lottery"
COUNT = 2
MEMBERS = 10
CATALOGUE = [
    {
        "reward_id": REWARD_ID,
        "reward": "Tick Lottery",
        "reward_type": "Computed Badge",
        "reward_category": "Lottery",
        "points": 1,
        "multiple": True,
        "rules": [["RandomUsers", {"count": COUNT}]],
        "job": {
            "trigger": "interval",
            "interval": {"seconds": 1},
            "id": JOB_ID,
            "misfire_grace_time": 5,
        },
    }
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(url: str, catalogue: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REWARDS_CATALOG": str(catalogue),
        "REWARDS_ENV_FILE": os.devnull,
        "REWARD_SCHEDULER": "true",
        "REWARDS_SWEEP_MINUTES": "1440",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bots.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as reply:
            return bool(json.load(reply)["status"] == "ok")
    except OSError:
        return False


async def _healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = await asyncio.to_thread(log.read_text)
            pytest.fail(f"the server on port {port} exited:\n{output}")
        if await asyncio.to_thread(_health, port):
            return
        await asyncio.sleep(0.1)
    output = await asyncio.to_thread(log.read_text)
    pytest.fail(f"the server on port {port} did not start:\n{output}")


async def _runs(db: Database) -> list[JobRun]:
    async with db.read() as session:
        query = select(JobRun).where(JobRun.job_id == JOB_ID)  # type: ignore[arg-type]
        return list((await session.scalars(query)).all())


async def _kill_mid_run(
    db: Database, victim: subprocess.Popen[bytes], within: float
) -> tuple[bool, int | None]:
    """SIGKILL `victim` as soon as it holds a running claim (or after `within` s). Returns whether
    it was caught holding one, and that claim's id if it was still running once the process was
    dead (it may have finished between the look and the kill)."""
    mark = f":{victim.pid}:"
    deadline = time.monotonic() + within
    caught: int | None = None
    while time.monotonic() < deadline and caught is None:
        async with db.read() as session:
            caught = await session.scalar(
                select(JobRun.id).where(
                    JobRun.status == "running",  # type: ignore[arg-type]
                    JobRun.claimed_by.contains(mark),  # type: ignore[attr-defined]
                )
            )
        if caught is None:
            await asyncio.sleep(0.003)
    victim.send_signal(signal.SIGKILL)
    await asyncio.to_thread(victim.wait, 5)
    if caught is None:
        return False, None
    async with db.read() as session:
        status = await session.scalar(select(JobRun.status).where(JobRun.id == caught))  # type: ignore[arg-type]
    return True, caught if status == "running" else None


async def test_two_servers_draw_each_fire_time_exactly_once_even_when_one_is_killed(
    tmp_path: Path, _backends: _Backends
) -> None:
    url = await _backends.create_pg_database("multiprocess")
    await upgrade_async(url)
    db = Database(url)
    catalogue = tmp_path / "catalogue.json"
    catalogue.write_text(json.dumps(CATALOGUE))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(MEMBERS):
            await add_member(db, f"Member {i}")
        logs = [tmp_path / "a.log", tmp_path / "b.log"]
        ports = [_free_port(), _free_port()]
        processes = [
            _serve(url, catalogue, port, log) for port, log in zip(ports, logs, strict=True)
        ]
        victim, survivor = processes
        for port, process, log in zip(ports, processes, logs, strict=True):
            await _healthy(port, process, log)
        started = datetime.now(UTC)

        await asyncio.sleep(5)
        caught, abandoned = await _kill_mid_run(db, victim, within=10)
        killed_at = datetime.now(UTC)
        # The survivor takes the abandoned run over once its heartbeat is 10 s old (checked
        # every 3 s); wait for that, then a little more of normal running.
        deadline = time.monotonic() + 16
        while time.monotonic() < deadline:
            runs = await _runs(db)
            if all(run.status != "running" for run in runs if run.fire_time < killed_at):
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(1.5)
        survivor.send_signal(signal.SIGINT)
        await asyncio.to_thread(survivor.wait, 15)
        assert survivor.returncode == 0, logs[1].read_text()

        runs = await _runs(db)
        async with db.read() as session:
            draws = list((await session.scalars(select(LotteryRun))).all())
            awards = list(
                (await session.scalars(select(Award).where(Award.reward_id == REWARD_ID))).all()  # type: ignore[arg-type]
            )
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)
        await db.dispose()

    fire_times = sorted(run.fire_time for run in runs)
    # Exactly one claim per fire time (the unique constraint), every one finished.
    assert len(fire_times) == len(set(fire_times))
    assert Counter(run.status for run in runs) == {"done": len(runs)}, [
        (run.fire_time, run.status, run.detail) for run in runs if run.status != "done"
    ]
    # No fire time missing between the first and the last, over the whole run and the kill.
    assert fire_times[0] <= started + timedelta(seconds=2)
    assert len(fire_times) >= 12
    gaps = [(a, b) for a, b in itertools.pairwise(fire_times) if b - a != timedelta(seconds=1)]
    assert not gaps, (gaps, killed_at, logs[1].read_text()[-3000:])
    # Both processes ran fire times: the victim was caught holding one.
    owners = Counter(run.claimed_by.split(":")[1] for run in runs)
    assert caught, f"the victim never claimed a run in 15 s: {owners}"
    assert str(survivor.pid) in owners, owners
    # One draw per fire time, keyed by it, with `count` distinct winners, awarded `count` times.
    expected_keys = {f"{REWARD_ID}:{JOB_ID}:{t.isoformat()}" for t in fire_times}
    assert sorted(d.draw_key for d in draws) == sorted(expected_keys)
    assert all(len(set(d.winners)) == len(d.winners) == COUNT for d in draws)
    per_draw = Counter(a.award_key.rsplit(":m", 1)[0] for a in awards)
    assert per_draw == {f"r{REWARD_ID}:k:draw:{key}": COUNT for key in expected_keys}
    for draw in draws:
        won = {a.member_id for a in awards if f"draw:{draw.draw_key}:m" in a.award_key}
        assert won == set(draw.winners)
    print(f"\n{len(runs)} fire times, runs by pid {dict(owners)}, abandoned run: {abandoned}")
    if abandoned is not None:
        # The run the victim died in was taken over and finished by the survivor, once.
        [taken] = [run for run in runs if run.id == abandoned]
        assert taken.attempts == 2 and f":{survivor.pid}:" in taken.claimed_by
    assert sum(run.attempts > 1 for run in runs) == (abandoned is not None)

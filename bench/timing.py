"""Timing helpers: adaptive repetition, robust statistics and a description of the machine.

Why adaptive: the windows range from a few thousand rows (this week) to the whole ledger, so a
fixed repeat count is either noisy for the fast queries or minutes long for the slow ones. Each
measurement runs once to warm caches (and to learn its cost), then as many times as fit in a
time budget, clamped between a minimum and a maximum. Medians resist the odd hiccup of a shared
machine; p95 is nearest-rank over the samples, so with few samples it is simply the slowest.
"""

from __future__ import annotations

import math
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from importlib import metadata
from typing import Any


@dataclass(frozen=True)
class Sample:
    """Durations of one measurement, in milliseconds, and the result of its warm-up run."""

    times_ms: tuple[float, ...]
    result: Any

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Budget:
    """How long to spend per measurement: `seconds` of repeats, within [minimum, maximum]."""

    seconds: float = 1.0
    minimum: int = 3
    maximum: int = 30

    def repeats(self, warm_seconds: float) -> int:
        if warm_seconds <= 0:
            return self.maximum
        return max(self.minimum, min(self.maximum, int(self.seconds / warm_seconds)))


async def measure(
    call: Callable[[], Awaitable[Any]],
    budget: Budget,
    around_warmup: Callable[[], AbstractContextManager[Any]] | None = None,
    *,
    warmup: bool = True,
) -> Sample:
    """Time `call` as often as `budget` allows and return the durations and its first result.

    With `warmup`, a first untimed run (inside `around_warmup()`, e.g. to record its SQL) fills
    caches and sizes the repeats. Without it, the first run is timed and counted: that is for
    baselines replaying work that was just run warm, where a second untimed run of a multi-second
    query would only make the benchmark longer.
    """
    start = time.perf_counter()
    with around_warmup() if around_warmup is not None else nullcontext():
        result = await call()
    first = time.perf_counter() - start
    times = [] if warmup else [first * 1000]
    for _ in range(budget.repeats(first) - len(times)):
        start = time.perf_counter()
        await call()
        times.append((time.perf_counter() - start) * 1000)
    return Sample(tuple(times), result)


def fmt_ms(value: float | None) -> str:
    """Milliseconds with precision that suits the magnitude; '—' for not measured."""
    if value is None:
        return "—"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def fmt_ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or denominator is None or denominator <= 0:
        return "—"
    ratio = numerator / denominator
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.0f}×"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def machine_lines(postgres_version: str | None = None) -> list[str]:
    """What the numbers were measured on, so a reader can judge and reproduce them."""
    ram = _ram_gib()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    lines = [
        f"- CPU: {os.cpu_count()} × {_cpu_model()} (nproc {len(os.sched_getaffinity(0))})",
        f"- RAM: {ram:.1f} GiB" if ram else "- RAM: ?",
        f"- OS: {platform.platform()}",
        f"- Python {sys.version.split()[0]}, SQLAlchemy {_version('sqlalchemy')}, "
        f"aiosqlite {_version('aiosqlite')}, asyncpg {_version('asyncpg')}",
        f"- SQLite {sqlite3.sqlite_version}",
    ]
    if postgres_version:
        lines.append(f"- PostgreSQL {postgres_version}")
    if load:
        lines.append(f"- load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return lines

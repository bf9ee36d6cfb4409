"""Start-up benchmark: cold start of `rewards serve` to its first healthy `/healthz`, and
`rewards --help`, each in a fresh Python process, a few times; medians.

    python -m bench.startup                 # 5 repeats of each
    python -m bench.startup --repeats 9 --importtime

Options:
  --repeats N      cold starts of each kind (default 5); the median and the slowest are printed.
  --timeout S      give up on a server that has not answered /healthz after S seconds (30).
  --root DIR       measure the code tree DIR instead of this checkout (e.g. an older commit
                   unpacked with `git archive`), for a before/after on the same machine.
  --importtime     also run `python -X importtime` on the serve and --help paths and print the
                   slowest top-level imports (where the start-up time goes).

Two kinds of serve run: the first start, on a fresh SQLite file each time (so the migrations and
the catalogue load are part of the start, as on a new machine), and the restart, on one SQLite
file a first untimed start has already migrated and loaded (what every later start, a deploy or
a crash restart, does: the schema is at the head and the catalogue unchanged). Both with
REWARDS_CATALOG=examples/rewards.json, the scheduler on (its default), no chat platform secrets,
and a free loopback port, the tree's bytecode written first (`compile_tree`); the clock runs
from `Popen` to the first 200 answer of `/healthz`, polled every 10 ms. Why wall-clock from
outside: that is what an orchestrator's readiness probe (and a developer) waits for, interpreter
start included.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.timing import machine_lines

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "examples" / "rewards.json"
# What the installed `rewards` script does (its entry point is bots.cli:main).
CLI = "import sys; from bots.cli import main; sys.argv = ['rewards', *sys.argv[1:]]; main()"


def compile_tree() -> None:
    """Write the measured tree's bytecode, as `scripts/run.sh` does (`compile_project`) and as
    installing a wheel does: under PYTHONDONTWRITEBYTECODE=1 (this machine's environment)
    nothing else writes it, and every start measured would compile ~300 modules first."""
    packages = [str(ROOT / name) for name in ("rewards", "bots", "dialogs", "cards")]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *packages],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(work: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any rewards/database/platform settings, plus `extra`."""
    prefixes = ("DATABASE_URL", "DB", "REWARDS_", "RABBITMQ_", "ENABLE_", "REWARD_", "SLACK_")
    env = {k: v for k, v in os.environ.items() if not k.startswith((*prefixes, "TELEGRAM_"))}
    env.update(
        REWARDS_ENV_FILE=str(work / "none.env"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
        **extra,
    )
    return env


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_once(work: Path, timeout: float, database: Path | None = None) -> tuple[float, float]:
    """Seconds from spawning `rewards serve` to its first 200 on /healthz, and the CPU seconds
    the server had used by then (less sensitive than wall-clock to other load on the machine).

    On a fresh SQLite file (deleted afterwards) unless `database` names one to keep and reuse:
    the restart of a server whose database is already migrated and loaded."""
    port = free_port()
    fresh = database is None
    database = database or work / f"start-{port}.db"
    env = clean_env(
        work,
        DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        REWARDS_CATALOG=str(CATALOG),
        PORT=str(port),
    )
    url = f"http://127.0.0.1:{port}/healthz"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", CLI, "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"rewards serve exited {process.returncode}: {error[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - started, proc_cpu(process.pid)
            except (urllib.error.URLError, OSError):
                pass
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"/healthz did not answer within {timeout:.0f}s")
            time.sleep(0.01)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if fresh:
            database.unlink(missing_ok=True)


def help_once(work: Path) -> tuple[float, float]:
    """Seconds for `rewards --help` to print and exit, and its CPU seconds."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", CLI, "--help"],
        cwd=ROOT,
        env=clean_env(work),
        stdout=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"rewards --help exited {process.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime


def slowest_imports(work: Path, code: str, count: int = 12) -> list[str]:
    """The top-level imports with the largest cumulative time under `python -X importtime`."""
    found = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        env=clean_env(work),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stderr
    rows: list[tuple[int, str]] = []
    for line in found.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if not name.startswith(" ") or name.startswith("  "):
            continue  # top level only: "| name", nested ones are indented further
        if cumulative.strip().isdigit():
            rows.append((int(cumulative), name.strip()))
    rows.sort(reverse=True)
    return [f"  {micro / 1000:7.1f} ms  {name}" for micro, name in rows[:count]]


def summary(label: str, runs: Sequence[tuple[float, float]]) -> str:
    ms = [wall * 1000 for wall, _ in runs]
    cpu = statistics.median(c * 1000 for _, c in runs)
    return (
        f"| {label} | {statistics.median(ms):.0f} | {min(ms):.0f} | {max(ms):.0f} "
        f"| {cpu:.0f} | {len(ms)} |"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--importtime", action="store_true")
    parser.add_argument("--root", type=Path)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.root is not None:
        global ROOT, CATALOG  # the tree every spawned process runs from
        ROOT = args.root.resolve()
        CATALOG = ROOT / "examples" / "rewards.json"
    print(f"# Start-up of {ROOT} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    print()
    for line in machine_lines():
        print(line)
    print()
    with tempfile.TemporaryDirectory(prefix="rewards-startup-") as tmp:
        work = Path(tmp)
        compile_tree()
        help_once(work)  # warm the OS file cache; not counted
        helps = [help_once(work) for _ in range(args.repeats)]
        serves = [serve_once(work, args.timeout) for _ in range(args.repeats)]
        existing = work / "existing.db"
        serve_once(work, args.timeout, existing)  # migrates and loads it; not counted
        restarts = [serve_once(work, args.timeout, existing) for _ in range(args.repeats)]
        print("| command | median ms | fastest ms | slowest ms | CPU ms (median) | runs |")
        print("|---|---:|---:|---:|---:|---:|")
        print(summary("`rewards --help`", helps))
        print(summary("`rewards serve` to the first 200 of `/healthz` (fresh SQLite)", serves))
        restart = "`rewards serve` to the first 200 of `/healthz` (restart, same SQLite)"
        print(summary(restart, restarts))
        if args.importtime:
            print()
            print("Slowest top-level imports, `rewards --help`:")
            print(
                "\n".join(
                    slowest_imports(
                        work,
                        "import bots.cli; bots.cli.cli.main(['--help'], standalone_mode=False)",
                    )
                )
            )
            print()
            print(
                "Slowest top-level imports, the `serve` path (`bots.server` with every platform):"
            )
            code = (
                "import bots.cli, bots.commands.serve, bots.server; from bots import api, notifier"
            )
            print("\n".join(slowest_imports(work, code)))


if __name__ == "__main__":
    main()

"""A throwaway PostgreSQL cluster for one benchmark run, stopped and deleted whatever happens.

Why not reuse a developer's server: its settings, load and other databases would leak into the
numbers, and a benchmark that writes millions of rows must not be pointed at anything that
matters by default. The cluster lives in a temporary directory owned by `postgres` (initdb and
postgres refuse to run as root), listens on a free 127.0.0.1 port with trust authentication, and
keeps its socket inside that directory so it never collides with a system server.

Settings: durability stays at PostgreSQL's defaults (fsync and synchronous commit on), since
the members import is a write path whose cost includes commits. Memory is sized like a small
production server rather than the 128 MB default; `work_mem` stays at its default, because
that is what most deployments run with and it decides how big aggregates are executed.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

SERVER_SETTINGS: dict[str, str] = {
    "shared_buffers": "1GB",
    "effective_cache_size": "8GB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
}


def find_bindir() -> Path:
    """The first directory holding initdb, pg_ctl and postgres (newest major version first)."""
    candidates = [os.environ.get("PG_BIN", ""), "/usr/local/bin"]
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for candidate in candidates:
        if candidate and all(
            os.access(Path(candidate) / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")
        ):
            return Path(candidate)
    raise RuntimeError("PostgreSQL server binaries not found; install postgresql or set PG_BIN")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def throwaway_postgres(settings: Mapping[str, str] | None = None) -> Iterator[str]:
    """Start a private cluster and yield its libpq URL (database `postgres`, user `postgres`).

    `settings` are added to (or override) `SERVER_SETTINGS`, e.g. `shared_preload_libraries`
    for pg_stat_statements (bench/e2e.py)."""
    bindir = find_bindir()
    as_postgres: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="nav-rewards-bench-pg."))
    data = tmp / "data"
    started = False
    try:
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(tmp, entry.pw_uid, entry.pw_gid)
            as_postgres = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [
                *as_postgres,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        chosen = {**SERVER_SETTINGS, **(settings or {})}
        options = " ".join(f"-c {k}={v}" for k, v in chosen.items())
        last_error = ""
        for _ in range(3):  # a free port can be taken between the check and the start
            port = _free_port()
            result = subprocess.run(
                [
                    *as_postgres,
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(tmp / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-c listen_addresses=127.0.0.1 -p {port} "
                    f"-c unix_socket_directories='{tmp}' {options}",
                    "start",
                ],
                capture_output=True,
                text=True,
            )
            if result.returncode == 0:
                started = True
                break
            last_error = result.stderr + result.stdout
        if not started:
            log = (tmp / "server.log").read_text() if (tmp / "server.log").exists() else ""
            raise RuntimeError(f"could not start PostgreSQL: {last_error}\n{log}")
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run(
                [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
            )
        shutil.rmtree(tmp, ignore_errors=True)

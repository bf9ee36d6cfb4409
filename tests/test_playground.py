"""Teams end to end, as a person tries it locally: `rewards serve` (fresh SQLite, the example
catalogue) behind the Microsoft 365 Agents Playground (npm `@microsoft/m365agentsplayground` in
`tools/playground`), its web UI driven in headless Debian Chromium by `tools/playground/drive.js`.

The Playground is what Teams looks like without a tenant: its own Bot Connector on loopback, a
personal chat and a group chat with mock people (Alex Wilber is "you"; Megan Bowen, Adele Vance
and others are in the group chat), real `<at>` mentions from its mention menu, and Adaptive Cards
drawn by the Teams renderer with `Action.Execute` sent as `adaptiveCard/action` invokes. The
browser can reach loopback only (every other host is aborted), so this runs offline.

What a person notices is asserted on the page: the kudos card in the group chat, the badge form
filled and confirmed, one award after a double click on "Give badge" (both presses reach the bot:
one is answered with the award, the other is told the card is out of date), and the leaderboard's
points. Screenshots of every
step are left in var/test-output/playground/, with what the driver saw (steps.jsonl) and the logs
of both servers.

Needs node and npm, Chromium (/usr/bin/chromium or $CHROMIUM) and `tools/playground/node_modules`
(`npm ci` there; this test runs it when it is missing). `scripts/test.sh` installs them
(`ensure_playground` in scripts/lib.sh) and sets REWARDS_TEST_REQUIRE_PLAYGROUND=1; with that, or
under CI=true, a missing tool fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLAYGROUND = ROOT / "tools" / "playground"
CLI = PLAYGROUND / "node_modules" / "@microsoft" / "m365agentsplayground" / "cli.js"
OUT = ROOT / "var" / "test-output" / "playground"
# The tenant of the Playground's built-in mock data (its default configuration file).
PLAYGROUND_TENANT = "00000000-0000-0000-0000-0000000000001"
START_TIMEOUT = 30.0

# The conversation, as a person has it (see tools/playground/drive.js for the step vocabulary).
STEPS: list[dict[str, Any]] = [
    {"open": "Group Chat"},
    {"say": "@[Test Bot] /kudos @[Megan Bowen] thanks for the demo #teamwork"},
    {"wait": "Alex Wilber → Megan Bowen"},
    {"shot": "1-kudos"},
    {"open": "Personal Chat"},
    {"say": "/badge"},
    {"wait": "Give a badge"},
    {"choose": "Holiday Special", "in": "Choose a badge"},
    {"fill": "@name or email", "value": "@meganb@example.com"},
    {"fill": "Why they deserve it (optional)", "value": "Great month"},
    {"shot": "2-badge-form"},
    {"click": "Next"},
    {"wait": "Give this badge?"},
    {"shot": "3-badge-confirm"},
    {"click": "Give badge", "times": 2},
    {"wait": "received Holiday Special"},
    {"shot": "4-badge-awarded"},
    {"say": "/leaderboard"},
    {"wait": "Top points this month"},
    {"shot": "5-leaderboard"},
]


def _required() -> bool:
    return (
        os.environ.get("REWARDS_TEST_REQUIRE_PLAYGROUND") == "1"
        or os.environ.get("CI", "").lower() == "true"
    )


def _tools() -> tuple[str, str]:
    """(node, chromium), or skip (fail when required) naming what is missing."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    problems = []
    if node is None or npm is None:
        problems.append("node/npm are not on PATH")
    if not os.access(chromium, os.X_OK):
        problems.append(f"Chromium not found at {chromium} (apt-get install chromium, or CHROMIUM)")
    if problems:
        reason = "Agents Playground test needs: " + "; ".join(problems)
        reason += " -- scripts/test.sh installs them (ensure_playground in scripts/lib.sh)"
        if _required():
            pytest.fail(reason + " [CI=true or REWARDS_TEST_REQUIRE_PLAYGROUND=1]")
        pytest.skip(reason)
    assert node is not None and npm is not None
    if not CLI.is_file():
        # Node is here, only the project-local packages are not: install them from the lock file.
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=PLAYGROUND,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci in {PLAYGROUND} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return node, chromium


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _spawn(
    command: list[str], cwd: Path, env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """Start a server in its own process group (so `_stop` ends it with its children), its output
    in `log`."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _wait_until(ready: Any, process: subprocess.Popen[bytes], log: Path, what: str) -> Any:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        found = ready()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"{what} did not start in {START_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}")


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as reply:
            return bool(json.load(reply)["status"] == "ok")
    except OSError:
        return False


@pytest.fixture
def out_dir() -> Path:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    return OUT


@pytest.fixture
def tools() -> tuple[str, str]:
    return _tools()


@pytest.fixture
def bot(tmp_path: Path, out_dir: Path) -> Iterator[int]:
    """`rewards serve` on a free loopback port: fresh SQLite, the example catalogue, no app id
    (the local mode: loopback clients and loopback serviceUrls only), the Playground's tenant."""
    port = _free_port()
    log = out_dir / "rewards-serve.log"
    env = {
        **os.environ,
        "REWARDS_ENV_FILE": os.devnull,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'rewards.db'}",
        "REWARDS_CATALOG": str(ROOT / "examples" / "rewards.json"),
        "REWARD_SCHEDULER": "false",
        "REWARDS_TENANT_ID": PLAYGROUND_TENANT,
    }
    command = [sys.executable, "-m", "bots.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    process = _spawn(command, ROOT, env, log)
    try:
        _wait_until(lambda: _healthy(port), process, log, "rewards serve")
        yield port
    finally:
        _stop(process)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


@pytest.fixture
def playground(tools: tuple[str, str], bot: int, tmp_path: Path, out_dir: Path) -> Iterator[str]:
    """The Playground's web UI and mock Bot Connector on a free port, talking to `bot`.

    Run from an empty directory so no `.m365agentsplayground.yml` nearby replaces its built-in
    mock people; no browser is opened (TEAMSAPPTESTER_BROWSER=none) and no telemetry is sent.
    """
    node, _ = tools
    port = _free_port()
    log = out_dir / "playground.log"
    env = {
        **os.environ,
        "TEAMSAPPTESTER_BROWSER": "none",
        "M365_AGENTS_PLAYGROUND_LOGFILE": str(out_dir / "playground-activities.log"),
    }
    command = [node, str(CLI), "--app-endpoint", f"http://127.0.0.1:{bot}/api/messages"]
    command += ["--channel-id", "msteams", "--port", str(port), "--disable-telemetry"]
    home = tmp_path / "playground"
    home.mkdir()
    process = _spawn(command, home, env, log)
    try:
        # It falls back to a random port when the one asked for is taken: read the one it says.
        listening = _wait_until(
            lambda: re.search(r"Listening on (\d+)", log.read_text()), process, log, "Playground"
        )
        yield f"http://127.0.0.1:{listening.group(1)}/"
    finally:
        _stop(process)


def _drive(node: str, chromium: str, url: str, out_dir: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [node, str(PLAYGROUND / "drive.js"), url, str(out_dir)],
        input=json.dumps(STEPS),
        capture_output=True,
        text=True,
        cwd=PLAYGROUND,
        env={**os.environ, "CHROMIUM": chromium},
        timeout=120,
    )
    (out_dir / "steps.jsonl").write_text(done.stdout)
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0:
        failure = records[-1] if records else {}
        pytest.fail(
            f"the Playground driver failed at step {failure.get('step')} "
            f"({STEPS[failure['step']] if isinstance(failure.get('step'), int) else '-'}): "
            f"{failure.get('error')}\nscreenshot: {failure.get('png')}\n{done.stderr[-2000:]}"
        )
    return records


def test_kudos_badge_and_leaderboard_in_the_agents_playground(
    tools: tuple[str, str], playground: str, out_dir: Path
) -> None:
    node, chromium = tools
    records = _drive(node, chromium, playground, out_dir)
    shots = {r["step"]["shot"]: r for r in records if "shot" in r.get("step", {})}
    summary = records[-1]
    assert summary.get("done"), summary

    # The kudos in the group chat: a real mention of Megan, her name from the roster.
    kudos = shots["1-kudos"]["cards"]
    assert len(kudos) == 1, kudos
    assert "Alex Wilber → Megan Bowen" in kudos[0]
    assert "thanks for the demo" in kudos[0] and "#teamwork" in kudos[0]
    assert "+5 points" in kudos[0]

    # The badge form, filled in, then its confirmation.
    form = shots["2-badge-form"]["cards"][-1]
    assert "Give a badge" in form and "Who gets it?" in form
    confirm = shots["3-badge-confirm"]["cards"][-1]
    for shown in ("Give this badge?", "Holiday Special", "Megan Bowen", "10", "Great month"):
        assert shown in confirm, confirm

    # "Give badge" clicked twice: both presses reach the bot with the same card; one is answered
    # with the award card, the other with "out of date" (the Playground shows the sentence of
    # whichever answer came last under the card), and the page shows one award.
    presses = [i for i in summary["invokes"] if i["title"] == "Give badge"]
    assert len(presses) == 2 and presses[0]["verb"] == presses[1]["verb"], summary["invokes"]
    received = "Megan Bowen received Holiday Special from Alex Wilber"
    answers = {p["answer"]["type"]: p["answer"]["text"] for p in presses}
    assert sorted(answers) == ["card", "message"], presses
    assert received in answers["card"]
    assert answers["message"].startswith("That card is out of date"), answers["message"]
    awarded = shots["4-badge-awarded"]
    assert sum(card.count(received) for card in awarded["cards"]) == 1, awarded["cards"]

    # The leaderboard: 5 (kudos) + 10 (one badge) for Megan, not 25.
    board = shots["5-leaderboard"]["cards"][-1]
    assert "Top points this month" in board
    assert re.search(r"Megan Bowen\s+15 pts", board), board

    # Every request to a host other than loopback was aborted in the browser.
    assert all(host not in ("127.0.0.1", "localhost") for host in summary["blocked"])
    for record in shots.values():
        assert Path(record["png"]).is_file()

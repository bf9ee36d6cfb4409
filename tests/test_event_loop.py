"""`rewards serve` runs on uvloop's event loop unless `EVENT_LOOP=asyncio` (bots/commands/serve.py).

uvloop made one server's Slack kudos about 15% cheaper in CPU (bench/e2e.py); the server must
still run on Python's own loop when asked, or where uvloop is not installed.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest
import uvloop

from bots.commands.serve import fast_event_loop
from rewards.settings import Settings

log = logging.getLogger("test")


def _run(loop: asyncio.AbstractEventLoop) -> str:
    async def kind() -> str:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    try:
        return loop.run_until_complete(kind())
    finally:
        loop.close()


def test_the_server_runs_on_uvloop_by_default() -> None:
    loop = fast_event_loop(Settings(extra={}), log)
    assert isinstance(loop, uvloop.Loop)
    assert _run(loop) == "uvloop"


def test_event_loop_asyncio_keeps_pythons_own_loop() -> None:
    assert fast_event_loop(Settings(extra={}, event_loop="asyncio"), log) is None


def test_without_uvloop_the_server_says_so_and_runs_on_asyncio(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as on a platform without a build
    with caplog.at_level(logging.INFO, logger="test"):
        assert fast_event_loop(Settings(extra={}), log) is None
    assert "uvloop is not installed" in caplog.text

"""Test-only fault injection: stop the process dead at a named point.

``REWARDS_FAULT_KILL_AT=<point>`` (test-only; never set it in production) makes the process send
itself SIGKILL the first time it reaches `checkpoint(point)`: no cleanup, no finally blocks, no
rollback beyond what the database does for an open transaction, exactly as a power cut or the OOM
killer would. The exactly-once tests of the announcements (tests/test_announce_crash.py) use it
to kill a real sweep and notifier at each step. Points:

- ``after_awards``: a rule's awards are committed, its announcement not yet recorded;
- ``after_claim``: the notifier claimed due deliveries (leases taken), nothing sent;
- ``during_send``: the notifier re-checked its lease and is about to call the platform.

Unset (always, outside these tests) a checkpoint is one dictionary look-up.
"""

from __future__ import annotations

import os
import signal

ENV = "REWARDS_FAULT_KILL_AT"
POINTS = frozenset({"after_awards", "after_claim", "during_send"})


def checkpoint(point: str) -> None:
    """Kill this process here when ``REWARDS_FAULT_KILL_AT`` names `point` (test-only)."""
    assert point in POINTS, point
    if os.environ.get(ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)

"""`HookRunner`: drains the `event_hook` queue in this process.

- `nudge()` is called after every commit that staged hooks. A started runner (the server's) wakes
  its loop, which waits `GATHER_SECONDS` so the turn's reply goes out first, then drains; and
  it starts a drain at most every `DRAIN_EVERY` seconds, so under load one drain takes the hooks
  of many turns together (a quiet server still runs a kudos' hooks 10 ms after its reply). A
  runner that was never started (a test, a CLI command, an embedding without the lifecycle)
  spawns a one-off drain task instead, so the hooks still run right after the commit.
- The started loop also polls every `POLL_SECONDS` for rows a crashed process left behind (their
  lease has run out, or they were staged more than `POLL_GRACE` ago and never claimed).
- `drain()` handles everything claimable now and returns when the queue is empty (as far as this
  process can see); an in-process lock makes a caller wait for a drain already under way, so
  `await core.hooks.drain()` is the point after which a kudos' hooks have run.
- The handler takes a claimed batch at once (`EventService.handle_many`: the catalogue read once,
  the workflows of every member the batch names evaluated together), so a burst of kudos costs
  fewer statements than the same hooks one by one. Claim, handling and deletion of a batch are
  one unit of work (`Database.transact`: one connection, one commit; the claim and the deletion
  are one statement, `queue.take`), so the rows go exactly when their effects are committed.
  When that fails, the batch is claimed again with a lease and each of its hooks is run alone:
  the one that fails is released for a retry, the others are finished (handling is idempotent,
  so nothing is done twice).
- `stop()` ends the loop, waits for spawned drains, and drains once more.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from rewards.clock import Clock
from rewards.hooks import queue
from rewards.hooks.queue import StagedHook
from rewards.store.db import Database

log = logging.getLogger(__name__)

GATHER_SECONDS = 0.01
DRAIN_EVERY = 0.2
"""Seconds between the starts of two drains of the started loop. A batch costs about the same
statements whatever its size (the catalogue read once, the workflows of all its members read
together), so at a hundred kudos a second one drain of 20 kudos' hooks costs a fraction of 20
drains of one: the benchmark measured 7.0 → 5.6 ms of server CPU per kudos and 15.5 → 12.3
statements. A fifth of a second later is still "right after the reply" for what hooks do
(workflow steps, automated badges)."""
POLL_SECONDS = 5.0
POLL_GRACE = timedelta(seconds=10)
LEASE = timedelta(seconds=60)
BATCH = 200
"""Hooks taken in one batch (one transaction). A kudos stages three (its giver's and two
receivers'), so at 300 kudos a second a drain every `DRAIN_EVERY` finds about 180: one batch,
where 50 made four, each with its own take, catalogue check and reads of the members' workflows
(bench/e2e.py: 26 batches a second before)."""
RETRY_AFTER = timedelta(seconds=30)

# Handles a claimed batch; raising means "not handled" for all of them.
Handler = Callable[[Sequence[StagedHook]], Awaitable[None]]


class HookRunner:
    def __init__(self, db: Database, clock: Clock, handler: Handler) -> None:
        self.db = db
        self.clock = clock
        self.handler = handler
        self.handled = 0
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._spawned: set[asyncio.Task[int]] = set()
        self._stopping = False
        # Counts `nudge` calls: a drain that sees none while it handled a short batch knows
        # the queue held nothing more of this process's, and skips claiming again.
        self._nudges = 0

    @property
    def running(self) -> bool:
        return self._loop_task is not None

    def nudge(self) -> None:
        """A commit staged hooks: drain soon (after the current turn has answered)."""
        self._nudges += 1
        if self._stopping:
            return
        if self._loop_task is not None:
            self._wake.set()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (synchronous caller): `drain()` or the server's poll runs them
        # A fresh context: the commit may come from inside a workflow completion, whose
        # context variables must not leak into the hooks of unrelated events.
        task = loop.create_task(self._drain_soon(), context=contextvars.Context())
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

    async def _drain_soon(self) -> int:
        await asyncio.sleep(GATHER_SECONDS)
        try:
            return await self.drain()
        except Exception:
            log.exception("event hooks: drain failed; the poll will retry")
            return 0

    async def drain(self, *, staged_before_grace: bool = False, paced: bool = False) -> int:
        """Handle every claimable row now; returns how many were handled.

        `paced` (the started loop): a batch smaller than `BATCH` ends the drain even when
        commits staged more meanwhile; the loop is woken by them and drains again
        `DRAIN_EVERY` after this drain began. Under steady load the drain otherwise never
        ended: each kudos committed during a batch sent it for another, smaller one (26 batches
        a second of about 11 kudos each in bench/e2e.py, instead of five).

        Each batch is claimed, handled and deleted in ONE transaction (`_in_one_unit`): the
        hooks' reads and writes share a connection and commit once, with the rows they consumed,
        so a crash at any point leaves the rows to be handled again and never half their work.
        Should that fail, the batch is claimed again with a lease and run hook by hook
        (`_handle`), so one failing hook is retried alone and does not hold back the rest."""
        done = 0
        async with self._lock:
            while True:
                now = self.clock.now()
                nudges = self._nudges
                staged_before = now - POLL_GRACE if staged_before_grace else None
                try:
                    size, finished = await self.db.transact(
                        functools.partial(self._in_one_unit, now, staged_before)
                    )
                except Exception:
                    log.warning(
                        "event hooks: a batch failed in one transaction; running it hook by hook",
                        exc_info=True,
                    )
                    batch = await queue.claim(
                        self.db, now=now, limit=BATCH, lease=LEASE, staged_before=staged_before
                    )
                    size = len(batch)
                    finished = [hook.id for hook in batch if await self._handle(hook)]
                    await queue.finish(self.db, finished)
                if not size:
                    return done
                done += len(finished)
                self.handled += len(finished)
                if size < BATCH and (paced or self._nudges == nudges):
                    # The claim took every claimable row, and nothing this process committed
                    # since staged more (a completion's ``badge.awarded`` would have nudged):
                    # no need for another claim to find the queue empty. Rows of other
                    # processes are the poll's.
                    return done

    async def _in_one_unit(
        self, now: datetime, staged_before: datetime | None
    ) -> tuple[int, list[int]]:
        """Take a batch (its rows claimed and deleted in one statement, `queue.take`) and run it,
        inside the caller's unit of work; returns (rows taken, ids finished). Raises when the
        batch fails (the unit then rolls back: the rows are back as they were)."""
        batch = await queue.take(self.db, now=now, limit=BATCH, staged_before=staged_before)
        if not batch:
            return 0, []
        await self.handler(batch)
        return len(batch), [hook.id for hook in batch]

    async def _handle(self, hook: StagedHook) -> bool:
        """Run one hook; True when its row can go (handled, or failed too often)."""
        try:
            await self.handler([hook])
            return True
        except Exception as problem:
            if hook.attempts >= queue.MAX_ATTEMPTS:
                log.exception(
                    "event %s for member %s failed %d times; dropped",
                    hook.name,
                    hook.member_id,
                    hook.attempts,
                )
                return True
            log.warning("event %s for member %s failed; retrying", hook.name, hook.member_id)
            await queue.release(
                self.db,
                hook.id,
                f"{type(problem).__name__}: {problem}",
                retry_at=self.clock.now() + RETRY_AFTER,
            )
            return False

    def start(self) -> None:
        """Run the wake-and-poll loop in the background (the server's lifecycle)."""
        if self._loop_task is None:
            self._stopping = False
            self._loop_task = asyncio.get_running_loop().create_task(
                self._run(), context=contextvars.Context()
            )

    async def _run(self) -> None:
        first = True
        loop = asyncio.get_running_loop()
        last_drain = -DRAIN_EVERY
        while not self._stopping:
            woken = first
            if not first:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
                    woken = True
            first = False
            self._wake.clear()
            if self._stopping:
                return
            try:
                if woken:
                    await asyncio.sleep(max(GATHER_SECONDS, last_drain + DRAIN_EVERY - loop.time()))
                    last_drain = loop.time()
                    await self.drain(paced=True)
                else:
                    await self.drain(staged_before_grace=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event hooks: drain failed; retrying at the next poll")

    async def stop(self) -> None:
        """Stop the loop, finish spawned drains, then drain what is left."""
        self._stopping = True
        task, self._loop_task = self._loop_task, None
        if task is not None:
            # Woken rather than cancelled: a drain under way finishes its rows instead of
            # leaving them leased until the next start.
            self._wake.set()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=10)
        if self._spawned:
            await asyncio.gather(*list(self._spawned), return_exceptions=True)
        try:
            await self.drain()
        except Exception:
            log.exception("event hooks: final drain failed; the rows stay for the next start")
        finally:
            self._stopping = False  # later commits (a reused database) spawn drains again

"""The threads message templates render in, so that a render never runs on the event loop.

A handful of daemon threads take jobs from one queue. They are daemons (unlike
`concurrent.futures.ThreadPoolExecutor`'s, which the interpreter joins at exit) so that a render
stuck in some C call the sandbox did not foresee can neither stop the process from exiting nor
hold the event loop: the caller stops waiting at its own timeout, and a job nobody waits for any
more is dropped before it starts.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

WORKERS = 4


class Workers:
    def __init__(self, size: int = WORKERS) -> None:
        self.size = size
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._work, name=f"template-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._jobs.put((future, job))
        return future

    def _work(self) -> None:
        while True:
            future, job = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue  # the caller gave up before it started
            try:
                result = job()
            except BaseException as problem:  # handed to the caller, never lost in the thread
                future.set_exception(problem)
            else:
                future.set_result(result)


WORKER_THREADS = Workers()


async def in_worker(job: Callable[[], T], seconds: float) -> T:
    """Run `job` in a template thread; raise `TimeoutError` if it has not finished in `seconds`
    (then a job that has not started yet never runs)."""
    future = WORKER_THREADS.submit(job)
    return await asyncio.wait_for(asyncio.wrap_future(future), seconds)

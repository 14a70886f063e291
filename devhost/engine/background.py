"""The engine's work under way: the tasks it spawned and the activities out in the runner.

Knowing both is what `wait_idle` needs (the harness, tests); spawning here also keeps a client
request's deadline from following the background work it caused.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine
from typing import Any

from ..store.base import clear_deadline, current_deadline

log = logging.getLogger("devhost.engine")


class Background:
    """Tasks the engine spawned, and a count of activities it started and has no result of."""

    def __init__(self) -> None:
        self.offline = False  # client operations only: work is stored, never run here
        self._tasks: set[asyncio.Task] = set()
        self._held = 0
        self._drained: asyncio.Future | None = None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Background work: it runs without the deadline of the request that caused it."""
        if self.offline:
            coro.close()
            return
        if current_deadline() is None:  # the engine's own work: no deadline to drop
            task = asyncio.create_task(coro)
        else:
            context = contextvars.copy_context()
            context.run(clear_deadline)
            task = asyncio.create_task(coro, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("engine task failed", exc_info=task.exception())

    def hold(self) -> None:
        """An activity started: the engine is not idle until `release`."""
        self._held += 1

    def release(self) -> None:
        """An activity's result was handed to its instance."""
        self._held -= 1
        if not self._held and self._drained is not None:
            if not self._drained.done():
                self._drained.set_result(None)
            self._drained = None

    async def wait_idle(self) -> None:
        """Until no episode, activity or delivery is under way (timers may still be pending)."""
        while self._tasks or self._held:
            if self._tasks:
                await asyncio.wait(set(self._tasks))
                continue
            self._drained = self._drained or asyncio.get_running_loop().create_future()
            await self._drained

    async def stop(self) -> None:
        """Cancel every task and wait until each has ended."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
